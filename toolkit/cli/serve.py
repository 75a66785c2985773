"""`toolkit serve`: the JSON API over a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import RunOption, RuntimeOption, load_predictor
from toolkit.limits import MAX_TEXT_LENGTH
from toolkit.runtimes import DEFAULT_RUNTIME


def serve(
    ctx: typer.Context,
    run: RunOption,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 exposes it to the network).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 5533,
    max_length: Annotated[int, typer.Option(
        min=1, help="Longest text accepted, in characters (longer ones are refused, 422)."),
    ] = MAX_TEXT_LENGTH,
    max_batch: Annotated[int, typer.Option(min=1, help="Most texts in one POST.")] = 1000,
    runtime: RuntimeOption = DEFAULT_RUNTIME,
) -> None:
    """Serve predictions as JSON (/predict/{name}, POST /predict, /labels, /health), the API
    docs at /docs and a page to try names at /."""
    from toolkit.allocator import keep_freed_memory
    from toolkit.server import listening_socket
    from toolkit.server import serve as run_server

    sock = listening_socket(host, port)  # a port in use is the one line, before the model loads
    with sock:
        predictor = load_predictor(ctx, Path(run), runtime=runtime)
        port = sock.getsockname()[1]  # the free port chosen for --port 0
        base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        typer.echo(f"Playground: {base}/   API docs: {base}/docs")
        keep_freed_memory()  # this process answers request after request
        run_server(predictor, host, port, max_length, max_batch, sock=sock)


def add_to(app: typer.Typer) -> None:
    app.command("serve")(serve)

"""`toolkit export`: a run's model as an ONNX graph (see `toolkit.export`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import RunOption, cli_plugins, registry_from
from toolkit.safe_files import shown


def export(
    ctx: typer.Context,
    run: RunOption,
    output_format: Annotated[str, typer.Option("--format", help="The format to write: onnx.")] = "onnx",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the graph (default RUN/model.onnx).")
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option(help="int8: onnxruntime's dynamic quantization; prints both sizes and test accuracies."),
    ] = None,
) -> None:
    """Export a run's model to ONNX, for `toolkit predict --runtime onnx` or any onnxruntime."""
    from toolkit.export import export_run

    registry_from(ctx)  # --plugin plugins loaded before the model is rebuilt
    result = export_run(run, output, output_format, quantize, cli_plugins(ctx))
    if result.quantized is None:
        typer.echo(f"Wrote {shown(result.path)} ({result.bytes:,} bytes, model '{shown(result.model)}').")
        return
    assert result.float_bytes is not None
    typer.echo(f"float graph: {result.float_bytes:,} bytes")
    typer.echo(f"{result.quantized} graph: {result.bytes:,} bytes ({result.bytes / result.float_bytes:.2f}x)")
    if result.accuracy is not None:
        before, after = result.accuracy.before, result.accuracy.after
        typer.echo(
            f"test accuracy ({result.accuracy.texts:,} texts): float {before:.4f}, {result.quantized} "
            f"{after:.4f} ({(after - before) * 100:+.2f} points)"
        )
    else:
        typer.echo(f"test accuracy: not measured: {result.no_accuracy}.")
    typer.echo(f"Wrote {shown(result.path)} ({result.quantized}, model '{shown(result.model)}').")


def add_to(app: typer.Typer) -> None:
    app.command("export")(export)

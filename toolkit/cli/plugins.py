"""`toolkit plugins` (what is loaded) and `toolkit plugins new` (a skeleton to start from)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import new_typer, registry_from

plugins_app = new_typer(help="Loaded plugins, and tools for writing them.")


@plugins_app.callback(invoke_without_command=True)
def plugins(ctx: typer.Context) -> None:
    """List every loaded plugin, where it came from, and what it registers."""
    if ctx.invoked_subcommand is not None:
        return
    for info in registry_from(ctx).plugins:
        origin = info.source
        if info.distribution:
            origin += f", {info.distribution} {info.version or ''}".rstrip()
        typer.echo(f"{info.name} ({origin})")
        if info.path:
            typer.echo(f"  file: {info.path}" + (f" (sha256 {info.sha256})" if info.sha256 else ""))
        if info.import_seconds is not None and not info.error:
            typer.echo(f"  {import_line(info.import_seconds, info.heavy_imports)}")
        if info.disabled:
            typer.echo("  disabled")
        elif info.error:
            typer.echo(f"  FAILED: {info.error}")
        elif info.provides:
            typer.echo(f"  provides: {', '.join(info.provides)}")
        else:
            typer.echo("  provides: only commands or nothing")


def import_line(seconds: float, heavy: list[str]) -> str:
    """How long a plugin took to import, and the heavy libraries it imported (every command
    that loads the plugin pays for them)."""
    took = f"imported in {seconds * 1000:.0f} ms" if seconds < 1 else f"imported in {seconds:.1f} s"
    if not heavy:
        return took
    return (
        f"{took}, importing {', '.join(heavy)}: every command pays for it; import it only where a model "
        "is built (docs/writing-plugins.md, \"Start-up\")"
    )


@plugins_app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The plugin's name, also its model's (e.g. charcnn).")
    ],
    directory: Annotated[
        Path, typer.Option("--directory", "-d", help="Where to create toolkit-NAME/.")
    ] = Path("."),
) -> None:
    """Write a plugin skeleton (a model and a demo dataset) to install and run at once."""
    from toolkit.scaffold import new_plugin

    target = new_plugin(name, directory, registry_from(ctx))
    typer.echo(f"Created {target}. Next:")
    typer.echo(f"  pip install -e {target}")
    typer.echo(f"  toolkit run --dataset {name}-demo --model {name}")
    typer.echo("Then edit its model.py and data.py; docs/writing-plugins.md explains each part.")


def add_to(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")

"""The `toolkit` command line: parses, calls the Python API, prints.

Each command group lives in its own module and adds itself to the app in `make_app`;
plugins add theirs through the `register_commands` hook.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from toolkit import __version__
from toolkit.errors import ToolkitError
from toolkit.registry import Registry, load_registry
from toolkit.safe_files import shown

PLUGIN_OPTION_HELP = (
    "Load a plugin from a module name or a .py file (repeatable). "
    "TOOLKIT_PLUGINS=a,b does the same from the environment."
)


class ToolkitGroup(TyperGroup):
    """Turns a ToolkitError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ToolkitError as exc:
            typer.echo(f"Error: {shown(exc)}", err=True)  # text from a file cannot drive the terminal
            raise typer.Exit(2) from None


def new_typer(**kwargs: Any) -> typer.Typer:
    """A Typer app with toolkit's settings (error handling, no rich tracebacks)."""
    kwargs.setdefault("no_args_is_help", False)
    return typer.Typer(
        cls=ToolkitGroup,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        **kwargs,
    )


def registry_from(ctx: click.Context) -> Registry:
    """The registry the root command loaded for this invocation."""
    root = ctx.find_root()
    if not isinstance(root.obj, Registry):
        root.obj = load_registry()
    return root.obj


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"toolkit {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    plugin: Annotated[
        list[str] | None, typer.Option("--plugin", help=PLUGIN_OPTION_HELP, metavar="PATH_OR_MODULE")
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Character-level text classification with plugins: datasets, encoders and models."""
    registry = load_registry(plugin or ())
    ctx.obj = registry
    for failed in registry.failures():
        typer.echo(f"Warning: plugin '{failed.name}' failed to load: {failed.error}", err=True)


def make_app(plugins: Sequence[str] = ()) -> typer.Typer:
    """Build the CLI; `plugins` (from --plugin) may add commands of their own."""
    import toolkit.cli.datasets  # noqa: F401  (adds `datasets show|download|path`)
    from toolkit.cli import listing, predict, report, run, serve

    app = new_typer(help="Character-level text classification with plugins.")
    app.callback()(_root)
    listing.add_to(app)
    run.add_to(app)
    report.add_to(app)
    predict.add_to(app)
    serve.add_to(app)
    try:
        registry = load_registry(plugins)
    except ToolkitError:
        return app  # the root callback reports it when the command runs
    registry.add_commands(app)
    return app


def _plugins_in(argv: Sequence[str]) -> list[str]:
    """The --plugin values in argv, read ahead so plugins can add commands."""
    found = []
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return found


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = make_app(_plugins_in(args))
    app(args=args, prog_name="toolkit")

"""The `toolkit` command line: parses, calls the Python API, prints.

Each command group lives in its own module and adds itself to the app in `make_app`;
plugins add theirs through the `register_commands` hook.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from toolkit import __version__
from toolkit.errors import ToolkitError
from toolkit.registry import DISABLE_ENV_VAR, DISABLE_PREFIX, Registry, load_registry
from toolkit.safe_files import shown

PLUGIN_OPTION_HELP = (
    "Load a plugin from a module name or a .py file (repeatable). "
    "TOOLKIT_PLUGINS=a,b does the same from the environment."
)
DISABLE_OPTION_HELP = (
    f"Skip the plugin NAME, as `toolkit plugins` names it, built-ins included (repeatable). "
    f"{DISABLE_ENV_VAR}=a,b does the same from the environment."
)
DEBUG_ENV_VAR = "TOOLKIT_DEBUG"


class ToolkitGroup(TyperGroup):
    """Turns a ToolkitError anywhere below into one line on stderr and exit code 2 (with the
    traceback first under --traceback or TOOLKIT_DEBUG=1)."""

    #: An error from loading plugins while the app was built, reported when a command runs.
    startup_error: ToolkitError | None = None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            if ctx.parent is None:
                if self.startup_error is not None:
                    raise self.startup_error
                ctx.obj = load_registry(cli_plugins(ctx))  # before the command name is looked up
            return super().invoke(ctx)
        except ToolkitError as exc:
            if debugging(ctx):
                traceback.print_exception(exc, file=sys.stderr)
            typer.echo(f"Error: {shown(exc)}", err=True)  # text from a file cannot drive the terminal
            raise typer.Exit(2) from None


def debugging(ctx: click.Context | None = None) -> bool:
    """True under --traceback or TOOLKIT_DEBUG=1."""
    root = ctx.find_root() if ctx is not None else None
    flag = bool(root.params.get("show_traceback")) if root is not None else False
    return flag or os.environ.get(DEBUG_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def new_typer(**kwargs: Any) -> typer.Typer:
    """A Typer app with toolkit's settings (error handling, no rich tracebacks)."""
    kwargs.setdefault("no_args_is_help", False)
    kwargs.setdefault("cls", ToolkitGroup)
    return typer.Typer(
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        **kwargs,
    )


def cli_plugins(ctx: click.Context) -> list[str]:
    """The root options --plugin and --disable as one plugin list (`no:NAME` disables)."""
    params = ctx.find_root().params
    return [*(params.get("plugin") or []), *(DISABLE_PREFIX + n for n in params.get("disable") or [])]


def registry_from(ctx: click.Context) -> Registry:
    """The registry the root command loaded for this invocation."""
    root = ctx.find_root()
    if not isinstance(root.obj, Registry):
        root.obj = load_registry(cli_plugins(root))
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
    disable: Annotated[
        list[str] | None, typer.Option("--disable", help=DISABLE_OPTION_HELP, metavar="NAME")
    ] = None,
    show_traceback: Annotated[
        bool,
        typer.Option("--traceback", help=f"Show the full traceback of an error ({DEBUG_ENV_VAR}=1 too)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Character-level text classification with plugins: datasets, encoders and models."""
    registry = registry_from(ctx)
    for warning in registry.warnings:
        typer.echo(f"Warning: {warning}", err=True)


def make_app(plugins: Sequence[str] = ()) -> typer.Typer:
    """Build the CLI; `plugins` (from --plugin, and `no:NAME` from --disable) may add commands."""
    import toolkit.cli.datasets  # noqa: F401  (adds `datasets show|download|path`)
    from toolkit.cli import listing, predict, report, run, serve, tune

    startup_error = None
    app = new_typer(help="Character-level text classification with plugins.")
    listing.add_to(app)
    run.add_to(app)
    report.add_to(app)
    predict.add_to(app)
    serve.add_to(app)
    tune.add_to(app)
    try:
        load_registry(plugins).add_commands(app)
    except ToolkitError as exc:
        startup_error = exc  # reported when a command runs, so --help still works
    root = type("ToolkitRoot", (ToolkitGroup,), {"startup_error": startup_error})
    app.callback(cls=root)(_root)
    return app


def _plugins_in(argv: Sequence[str]) -> list[str]:
    """The --plugin and --disable values in argv, read ahead so plugins can add commands."""
    found = []
    for i, arg in enumerate(argv):
        for option, prefix in (("--plugin", ""), ("--disable", DISABLE_PREFIX)):
            if arg == option and i + 1 < len(argv):
                found.append(prefix + argv[i + 1])
            elif arg.startswith(option + "="):
                found.append(prefix + arg.split("=", 1)[1])
    return found


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = make_app(_plugins_in(args))
    app(args=args, prog_name="toolkit")

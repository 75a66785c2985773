"""The `toolkit` command line: parses, calls the Python API, prints.

This module builds the root app (`make_app`, `main`) and its options. Every command module
owns its commands and sub-apps and adds them in its `add_to(app)`; the helpers they share are
in `toolkit.cli.common`. Plugins add commands through the `register_commands` hook (`new_typer`
gives a sub-app toolkit's error handling).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from toolkit import __version__
from toolkit.cli.common import DEBUG_ENV_VAR, ToolkitGroup, cli_plugins, new_typer, registry_from
from toolkit.errors import ToolkitError
from toolkit.registry import DISABLE_ENV_VAR, DISABLE_PREFIX, load_registry

#: new_typer, registry_from and cli_plugins stay importable from here for plugins' commands.
__all__ = ["cli_plugins", "main", "make_app", "new_typer", "registry_from"]

PLUGIN_OPTION_HELP = (
    "Load a plugin from a module name or a .py file (repeatable). "
    "TOOLKIT_PLUGINS=a,b does the same from the environment."
)
DISABLE_OPTION_HELP = (
    f"Skip the plugin NAME, as `toolkit plugins` names it, built-ins included (repeatable). "
    f"{DISABLE_ENV_VAR}=a,b does the same from the environment."
)


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
    from toolkit.cli import datasets, explain, export, listing, predict, report, rerun, run, runs, serve, tune
    from toolkit.cli import plugins as plugin_commands  # `plugins` is this function's argument

    startup_error = None
    app = new_typer(help="Character-level text classification with plugins.")
    for commands in (
        plugin_commands, datasets, listing, run, rerun, runs, report, predict, explain, export, serve, tune
    ):
        commands.add_to(app)
    try:
        load_registry(plugins).add_commands(app)
    except ToolkitError as exc:
        startup_error = exc  # reported once the root parses its arguments, --help included
    root = type("ToolkitRoot", (ToolkitGroup,), {"startup_error": startup_error})
    app.callback(cls=root)(_root)
    return app


def _plugins_in(argv: Sequence[str]) -> list[str]:
    """The --plugin and --disable values before the command in argv, read ahead so plugins
    can add commands (after the command they are refused, saying where they go)."""
    found = []
    options = {"--plugin": "", "--disable": DISABLE_PREFIX}
    args = iter(argv)
    for arg in args:
        option, equals, value = arg.partition("=")
        if option in options:
            value = value if equals else next(args, None)
            if value is not None:
                found.append(options[option] + value)
        elif not arg.startswith("-"):
            break  # the command: what follows is its own
    return found


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = make_app(_plugins_in(args))
    app(args=args, prog_name="toolkit")

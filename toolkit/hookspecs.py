"""The contract between toolkit and its plugins.

A plugin is a module (or any object) with functions decorated `@toolkit.hookimpl` whose
names match the hooks below. Built-in plugins use exactly these hooks; so does a package
installed with an entry point in the `toolkit` group, a module named with `--plugin`,
or a single `.py` file. docs/writing-plugins.md walks through each hook.

toolkit holds plugins to this contract strictly, as pytest does: a hook name that is not
below (with a did-you-mean) or an argument name that differs is refused when the plugin is
loaded, and so is every spec with a bad name, an empty help or a `Param` that does not fit
its function (toolkit.contracts). `toolkit.testing` checks what cannot be seen at load time.

Example::

    import toolkit

    @toolkit.hookimpl
    def register_models(register):
        register(toolkit.ModelSpec(name="my-model", help="...", factory=MyModel))
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy
import typer

from toolkit.types import DatasetSpec, EncoderSpec, ModelSpec

hookspec = pluggy.HookspecMarker("toolkit")
hookimpl = pluggy.HookimplMarker("toolkit")


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Call `register(DatasetSpec(...))` once for each dataset the plugin provides."""


@hookspec
def register_encoders(register: Callable[[EncoderSpec], None]) -> None:
    """Call `register(EncoderSpec(...))` once for each encoder the plugin provides."""


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Call `register(ModelSpec(...))` once for each model the plugin provides."""


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add commands to the `toolkit` command line, e.g. with `@cli.command()`."""

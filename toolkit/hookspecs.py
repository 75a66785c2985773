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

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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


# Lifecycle hooks: called during `toolkit run` (and `toolkit.run`), on the process that writes
# the run folder. A tracking plugin logs with them; see docs/writing-plugins.md. An exception
# in one is reported as a warning naming the plugin, and the run goes on. (The arguments are
# typed Any: toolkit.api imports this module, so it cannot import toolkit.api back.)


@hookspec
def run_started(plan: Any) -> None:
    """A run is about to load its data and train: `plan` is its `toolkit.RunPlan` (names,
    `params` by group, seed, device, output)."""


@hookspec
def epoch_ended(plan: Any, epoch: Mapping[str, Any]) -> None:
    """An epoch ended: `epoch` is its history row (epoch, examples, train_loss, train_acc,
    val_loss, val_acc, seconds, names_per_sec, lr)."""


@hookspec
def run_ended(plan: Any, run_dir: Path, result: Any) -> None:
    """The run folder `run_dir` is written: `result` is the `toolkit.RunResult` (its `report`
    holds the test metrics, `interrupted` says whether Ctrl-C cut training short)."""


@hookspec
def run_failed(plan: Any, error: BaseException) -> None:
    """The run stopped with `error` after `run_started` and wrote no run folder (a bad data
    file, SIGTERM...): a tracker closes the run it opened."""

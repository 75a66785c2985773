"""Calling the plugins' lifecycle hooks (run_started, epoch_ended, run_ended) so that a
failing plugin never loses the run: its exception becomes one warning line on stderr naming
the plugin and the hook (once per plugin and hook), and the run goes on.

Trackers are plugins too: `--track NAME` loads the module `TRACKERS[NAME]` as a plugin for
that run (it is not recorded as one of the run's plugins, since it does not change the run).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import ToolkitError, did_you_mean
from toolkit.registry import Registry
from toolkit.safe_files import shown

#: `--track NAME`: the module of the tracker plugin, and the library it needs (an optional
#: extra of toolkit's: pip install -e '.[NAME]').
TRACKERS = {"mlflow": ("toolkit.trackers.mlflow", "mlflow")}


def tracker_plugins(track: Sequence[str]) -> list[str]:
    """The plugin modules of the trackers named in `track`, after checking that each one's
    library is installed (without importing it)."""
    unknown = [name for name in track if name not in TRACKERS]
    if unknown:
        raise ToolkitError(
            f"unknown tracker '{shown(unknown[0])}'.{did_you_mean(unknown[0], TRACKERS)} "
            f"Trackers: {', '.join(TRACKERS)}."
        )
    for name in track:
        if importlib.util.find_spec(TRACKERS[name][1]) is None:
            raise ToolkitError(
                f"--track {name} needs {TRACKERS[name][1]}: pip install -e '.[{name}]' in toolkit's folder."
            )
    return [TRACKERS[name][0] for name in dict.fromkeys(track)]


@dataclass
class Lifecycle:
    """The lifecycle hooks of one run's registry; `failures` lists the warnings said."""

    registry: Registry
    failures: list[str] = field(default_factory=list)
    _failed: set[tuple[str, str]] = field(default_factory=set)

    def call(self, hook_name: str, **kwargs: Any) -> None:
        """Call every plugin's `hook_name` with the arguments it names, each on its own."""
        hook = getattr(self.registry.manager.hook, hook_name)
        for impl in hook.get_hookimpls():
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception as exc:
                self._report(impl.plugin_name, hook_name, exc)

    def _report(self, plugin: str, hook_name: str, exc: Exception) -> None:
        if (plugin, hook_name) in self._failed:
            return
        self._failed.add((plugin, hook_name))
        message = (
            f"plugin '{shown(plugin)}' failed in its {hook_name} hook "
            f"({type(exc).__name__}: {shown(exc)[:200]}); the run goes on."
        )
        self.failures.append(message)
        print(f"Warning: {message}", file=sys.stderr, flush=True)

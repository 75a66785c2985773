"""The plugin manager: finds plugins, collects what they register, answers look-ups.

Plugins come from four places, in this order: the built-ins (ordinary plugin modules that
use the same hooks as everyone else), installed distributions advertising an entry point in
the `toolkit` group, the `TOOLKIT_PLUGINS` environment variable (comma-separated), and
`--plugin PATH_OR_MODULE` (a module name or a single `.py` file).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from toolkit import hookspecs
from toolkit.errors import ToolkitError, unknown_name
from toolkit.types import DatasetSpec, EncoderSpec, ModelSpec, Spec

#: Built-in plugins, registered through the same hooks as third-party ones.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "toolkit.plugins.onehot",
    "toolkit.plugins.scratch",
    "toolkit.plugins.torch_rnn",
    "toolkit.datasets.names",
    "toolkit.datasets.folder",
    "toolkit.datasets.csv_file",
    "toolkit.datasets.first_names",
    "toolkit.datasets.words",
)

ENTRY_POINT_GROUP = "toolkit"
ENV_VAR = "TOOLKIT_PLUGINS"

_KINDS: dict[str, tuple[str, type]] = {
    "dataset": ("register_datasets", DatasetSpec),
    "encoder": ("register_encoders", EncoderSpec),
    "model": ("register_models", ModelSpec),
}


@dataclass
class PluginInfo:
    """One plugin as `toolkit plugins` shows it."""

    name: str
    source: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    provides: list[str] = field(default_factory=list)


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, extra_plugins: Sequence[str] = (), env_plugins: str | None = None) -> None:
        self.manager = pluggy.PluginManager("toolkit")
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.specs: dict[str, dict[str, Spec]] = {kind: {} for kind in _KINDS}
        self._owners: dict[tuple[str, str], str] = {}
        self._info: dict[str, PluginInfo] = {}

        version = _toolkit_version()
        for module_name in BUILTIN_PLUGINS:
            self._add(lambda m=module_name: importlib.import_module(m),
                      PluginInfo(module_name, "built-in", "toolkit", version))
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry.dist
            self._add(entry.load, PluginInfo(
                entry.name, "entry point",
                dist.name if dist else None, dist.version if dist else None,
            ))
        env_value = os.environ.get(ENV_VAR, "") if env_plugins is None else env_plugins
        for item in _split_env(env_value):
            self._add_local(item, ENV_VAR)
        for item in extra_plugins:
            self._add_local(item, "--plugin")
        self._collect()

    # -- loading -------------------------------------------------------------------------

    def _add_local(self, target: str, source: str) -> None:
        if _looks_like_path(target):
            path = Path(target).expanduser()
            if not path.is_file():
                raise ToolkitError(
                    f"plugin file '{target}' (from {source}) does not exist; "
                    "give the path of a .py file or an importable module name."
                )
            self._add(lambda: _import_file(path), PluginInfo(path.stem, source, None, None))
        else:
            self._add(lambda: importlib.import_module(target), PluginInfo(target, source))

    def _add(self, load: Callable[[], Any], info: PluginInfo) -> None:
        if info.name in self._info:
            return
        self._info[info.name] = info
        self.plugins.append(info)
        try:
            plugin = load()
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = _describe(exc)
            return
        if self.manager.is_registered(plugin):
            self.plugins.remove(info)
            return
        try:
            self.manager.register(plugin, name=info.name)
            self.manager.check_pending()
        except Exception as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            info.error = _describe(exc)

    def _collect(self) -> None:
        for kind, (hook_name, spec_type) in _KINDS.items():
            hook = getattr(self.manager.hook, hook_name)
            for impl in hook.get_hookimpls():  # in registration order
                info = self._info[impl.plugin_name]
                register = self._register_function(kind, spec_type, info)
                try:
                    impl.function(register=register)
                except ToolkitError:
                    raise
                except Exception as exc:
                    info.error = _describe(exc)

    def _register_function(self, kind: str, spec_type: type, info: PluginInfo) -> Callable:
        def register(spec: Spec) -> None:
            if not isinstance(spec, spec_type):
                raise ToolkitError(
                    f"plugin '{info.name}' passed {type(spec).__name__} to the {kind} hook; "
                    f"it expects toolkit.{spec_type.__name__}."
                )
            owner = self._owners.get((kind, spec.name))
            if owner is not None:
                raise ToolkitError(
                    f"{kind} '{spec.name}' is registered by two plugins: '{owner}' and "
                    f"'{info.name}'. Uninstall or rename one of them."
                )
            self._owners[(kind, spec.name)] = info.name
            self.specs[kind][spec.name] = spec
            info.provides.append(f"{kind} {spec.name}")

        return register

    # -- look-ups ------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Any:
        """The spec of `kind` ('dataset', 'encoder', 'model') called `name`."""
        try:
            return self.specs[kind][name]
        except KeyError:
            raise unknown_name(kind, name, self.specs[kind]) from None

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def encoder(self, name: str) -> EncoderSpec:
        return self.get("encoder", name)

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def owner(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered `kind` `name`."""
        return self._info[self._owners[(kind, name)]]

    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def add_commands(self, cli: Any) -> None:
        """Let plugins add commands to the CLI through the `register_commands` hook."""
        for impl in self.manager.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self._info[impl.plugin_name].error = _describe(exc)


_CACHE: dict[tuple[tuple[str, ...], str], Registry] = {}


def load_registry(extra_plugins: Iterable[str] = ()) -> Registry:
    """The registry for these extra plugins and the current TOOLKIT_PLUGINS (cached)."""
    key = (tuple(extra_plugins), os.environ.get(ENV_VAR, ""))
    if key not in _CACHE:
        _CACHE[key] = Registry(key[0], key[1])
    return _CACHE[key]


def _split_env(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _looks_like_path(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    module_name = f"toolkit_local_{resolved.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _toolkit_version() -> str:
    from toolkit import __version__

    return __version__

"""The plugin manager: finds plugins, collects what they register, answers look-ups.

Plugins come from four places, in this order: the built-ins (ordinary plugin modules that
use the same hooks as everyone else), installed distributions advertising an entry point in
the `toolkit` group, the `TOOLKIT_PLUGINS` environment variable (comma-separated), and
`--plugin PATH_OR_MODULE` (a module name or a single `.py` file; `plugins=[...]` in Python).

Strict, as pytest is: a plugin asked for by name (`--plugin`, `TOOLKIT_PLUGINS`) that fails
to load is an error; an installed entry point that fails is a warning, so one broken install
does not break the command line. Two plugins of the same name, a name registered twice and a
command clashing with another are refused, naming both sides. `no:NAME` in the plugin list
(`--disable NAME`, `TOOLKIT_DISABLE`) skips the plugin NAME, built-ins included.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from toolkit import hookspecs
from toolkit.contracts import spec_problem
from toolkit.errors import ToolkitError, did_you_mean, unknown_name
from toolkit.types import DatasetSpec, EncoderSpec, ModelSpec, Spec

#: Built-in plugins, registered through the same hooks as third-party ones.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "toolkit.plugins.onehot",
    "toolkit.plugins.scratch",
    "toolkit.plugins.torch_rnn",
    "toolkit.plugins.ngram",
    "toolkit.plugins.cnn",
    "toolkit.plugins.ensemble",
    "toolkit.datasets.names",
    "toolkit.datasets.folder",
    "toolkit.datasets.csv_file",
    "toolkit.datasets.first_names",
    "toolkit.datasets.words",
)

ENTRY_POINT_GROUP = "toolkit"
ENV_VAR = "TOOLKIT_PLUGINS"
DISABLE_ENV_VAR = "TOOLKIT_DISABLE"
#: In a plugin list, `no:NAME` disables the plugin NAME (pytest's `-p no:NAME`).
DISABLE_PREFIX = "no:"
BUILTIN, ENTRY_POINT = "built-in", "entry point"
TRACEBACK_HINT = "Fix the plugin or leave it out; --traceback (or TOOLKIT_DEBUG=1) shows where"
#: Libraries that take a second or more to import: a plugin importing one slows every command.
HEAVY_LIBRARIES = ("torch", "pandas", "matplotlib", "sklearn", "tensorflow", "transformers")

_KINDS: dict[str, tuple[str, type]] = {
    "dataset": ("register_datasets", DatasetSpec),
    "encoder": ("register_encoders", EncoderSpec),
    "model": ("register_models", ModelSpec),
}


@dataclass
class PluginInfo:
    """One plugin as `toolkit plugins` shows it. `path` and `sha256` are a file plugin's."""

    name: str
    source: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    provides: list[str] = field(default_factory=list)
    target: str | None = None
    path: str | None = None
    sha256: str | None = None
    disabled: bool = False
    #: Seconds its import took, and the heavy libraries it was the first to import.
    import_seconds: float | None = None
    heavy_imports: list[str] = field(default_factory=list)

    @property
    def explicit(self) -> bool:
        """Asked for by name (--plugin, TOOLKIT_PLUGINS): failing to load it is an error."""
        return self.source not in (BUILTIN, ENTRY_POINT)

    def origin(self) -> str:
        """Where it came from, e.g. `--plugin regions.py` or `entry point, toolkit-x 1.0`."""
        if self.explicit:
            return f"{self.source} {self.target}"
        if self.distribution:
            return f"{self.source}, {self.distribution} {self.version or ''}".rstrip()
        return self.source


@dataclass
class _Candidate:
    info: PluginInfo
    load: Callable[[], Any]
    identity: str  # the module or file behind it: the same one twice is loaded once


class Registry:
    """Everything the loaded plugins registered, by kind and name.

    `extra_plugins` are module names or `.py` files (like --plugin), and `no:NAME` items that
    disable a plugin; `env_plugins` and `env_disabled` stand for TOOLKIT_PLUGINS and
    TOOLKIT_DISABLE (default: read from the environment).
    """

    def __init__(
        self, extra_plugins: Sequence[str] = (), env_plugins: str | None = None,
        env_disabled: str | None = None,
    ) -> None:
        self.manager = pluggy.PluginManager("toolkit")
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.warnings: list[str] = []
        self.specs: dict[str, dict[str, Spec]] = {kind: {} for kind in _KINDS}
        self._owners: dict[tuple[str, str], str] = {}
        self._info: dict[str, PluginInfo] = {}

        disabled_env = os.environ.get(DISABLE_ENV_VAR, "") if env_disabled is None else env_disabled
        disabled = {name: DISABLE_ENV_VAR for name in _split_env(disabled_env)}
        requested = []
        for item in extra_plugins:
            if item.startswith(DISABLE_PREFIX):
                disabled[item[len(DISABLE_PREFIX):].strip()] = "--disable"
            else:
                requested.append(item)
        env_value = os.environ.get(ENV_VAR, "") if env_plugins is None else env_plugins
        candidates = [
            *_builtin_candidates(),
            *_entry_point_candidates(),
            *(_local_candidate(item, ENV_VAR) for item in _split_env(env_value)),
            *(_local_candidate(item, "--plugin") for item in requested),
        ]
        for candidate in self._choose(candidates, disabled):
            self._load(candidate)
        self._collect()

    # -- choosing and loading ------------------------------------------------------------

    def _choose(self, candidates: list[_Candidate], disabled: dict[str, str]) -> list[_Candidate]:
        """One candidate per plugin name: refuse clashes, let a local file stand in for an
        installed distribution, skip disabled plugins (and refuse disabling an unknown one)."""
        chosen: dict[str, _Candidate] = {}
        seen: set[str] = set()
        for candidate in candidates:
            info = candidate.info
            if candidate.identity in seen:
                continue  # the same module asked for twice
            seen.add(candidate.identity)
            if info.name in disabled:
                info.disabled = True
                chosen.setdefault(info.name, candidate)
                continue
            previous = chosen.get(info.name)
            if previous is None:
                chosen[info.name] = candidate
            elif previous.info.source == ENTRY_POINT and info.explicit:
                self.warnings.append(
                    f"plugin '{info.name}' from {info.origin()} stands in for the installed "
                    f"{previous.info.origin()}, which is not loaded; drop the {info.source} "
                    "to use the installed one."
                )
                chosen[info.name] = candidate
            else:
                raise ToolkitError(
                    f"two plugins are named '{info.name}': {previous.info.origin()} and "
                    f"{info.origin()}. Rename one (a plugin is named after its file, module "
                    "or entry point), or --disable one."
                )
        names = [c.info.name for c in candidates]
        for name, where in disabled.items():
            if name not in names:
                same_module = [n for n in names if n.rsplit(".", 1)[-1] == name]
                hint = f" Did you mean '{same_module[0]}'?" if same_module else did_you_mean(name, names)
                raise ToolkitError(
                    f"no plugin named '{name}' to disable (from {where}).{hint} "
                    "`toolkit plugins` lists the plugins by name."
                )
        for candidate in chosen.values():
            self.plugins.append(candidate.info)
            self._info[candidate.info.name] = candidate.info
        return [c for c in chosen.values() if not c.info.disabled]

    def _load(self, candidate: _Candidate) -> None:
        info = candidate.info
        try:
            already = {name for name in HEAVY_LIBRARIES if name in sys.modules}
            started = time.perf_counter()
            try:
                plugin = candidate.load()
            finally:
                info.import_seconds = time.perf_counter() - started
                info.heavy_imports = [n for n in HEAVY_LIBRARIES if n in sys.modules and n not in already]
            _check_hooks(plugin)
            self.manager.register(plugin, name=info.name)
        except ToolkitError as exc:
            self._fail(info, str(exc), exc)
        except Exception as exc:
            self._fail(info, _describe(exc), exc)

    def _fail(self, info: PluginInfo, cause: str, exc: BaseException) -> None:
        """A plugin asked for by name (or a built-in) failing is an error; an installed one, a
        warning, and `toolkit plugins` shows it as FAILED."""
        if info.explicit or info.source == BUILTIN:
            raise ToolkitError(
                f"plugin '{info.name}' ({info.origin()}) failed to load: {cause}. {TRACEBACK_HINT}."
            ) from exc
        info.error = cause
        info.provides.clear()
        for key in [key for key, owner in self._owners.items() if owner == info.name]:
            del self._owners[key]
            del self.specs[key[0]][key[1]]
        self.warnings.append(f"plugin '{info.name}' ({info.origin()}) failed to load: {cause}")
        plugin = self.manager.get_plugin(info.name)
        if plugin is not None:
            self.manager.unregister(plugin)

    def _collect(self) -> None:
        for kind, (hook_name, spec_type) in _KINDS.items():
            hook = getattr(self.manager.hook, hook_name)
            for impl in hook.get_hookimpls():  # in registration order
                info = self._info[impl.plugin_name]
                if info.error:
                    continue
                try:
                    returned = impl.function(register=self._register_function(kind, spec_type, info))
                    if returned is not None:
                        raise ToolkitError(_returned_problem(hook_name, returned, spec_type))
                except _Clash:
                    raise
                except ToolkitError as exc:
                    self._fail(info, str(exc), exc)
                except Exception as exc:
                    self._fail(info, f"{hook_name}() raised {_describe(exc)}", exc)

    def _register_function(self, kind: str, spec_type: type, info: PluginInfo) -> Callable:
        def register(spec: Spec) -> None:
            if not isinstance(spec, spec_type):
                raise ToolkitError(
                    f"it passed {type(spec).__name__} to the {kind} hook, which expects "
                    f"toolkit.{spec_type.__name__}"
                )
            problem = spec_problem(kind, spec)
            if problem:
                raise ToolkitError(problem)
            owner = self._owners.get((kind, spec.name))
            if owner is not None:
                raise _Clash(
                    f"{kind} '{spec.name}' is registered by two plugins: '{owner}' and "
                    f"'{info.name}'. Uninstall or rename one of them."
                    if owner != info.name else
                    f"plugin '{owner}' registers {kind} '{spec.name}' twice; register it once."
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

    def label(self, kind: str, name: str) -> str:
        """How errors name a part: `model 'x' (plugin 'y')`."""
        return f"{kind} '{name}' (plugin '{self.owner(kind, name).name}')"

    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def add_commands(self, cli: Any) -> None:
        """Let plugins add commands to the CLI through the `register_commands` hook; a name
        clashing with a built-in command or another plugin's is refused, naming both."""
        owners = {name: "toolkit (built-in)" for name in _command_names(cli)}
        for impl in self.manager.hook.register_commands.get_hookimpls():
            info = self._info[impl.plugin_name]
            if info.error:
                continue
            before = len(cli.registered_commands), len(cli.registered_groups)
            try:
                impl.function(cli=cli)
            except ToolkitError as exc:
                self._fail(info, str(exc), exc)
                continue
            except Exception as exc:
                self._fail(info, f"register_commands() raised {_describe(exc)}", exc)
                continue
            added = _command_names(cli, since=before)
            for name in added:
                if name in owners:
                    raise ToolkitError(
                        f"command '{name}' of plugin '{info.name}' clashes with the command "
                        f"'{name}' of {owners[name]}; rename the plugin's command."
                    )
                owners[name] = f"plugin '{info.name}'"


class _Clash(ToolkitError):
    """Two plugins claim one name: always an error, whichever plugin it comes from."""


_CACHE: dict[tuple[tuple[str, ...], str, str], Registry] = {}


def load_registry(extra_plugins: Iterable[str] = ()) -> Registry:
    """The registry for these extra plugins (module names, .py files, or `no:NAME` to disable
    a plugin) with the current TOOLKIT_PLUGINS and TOOLKIT_DISABLE (cached)."""
    key = (tuple(extra_plugins), os.environ.get(ENV_VAR, ""), os.environ.get(DISABLE_ENV_VAR, ""))
    if key not in _CACHE:
        _CACHE[key] = Registry(*key)
    return _CACHE[key]


def _builtin_candidates() -> Iterable[_Candidate]:
    version = _toolkit_version()
    for module_name in BUILTIN_PLUGINS:
        yield _Candidate(
            PluginInfo(module_name, BUILTIN, "toolkit", version, target=module_name),
            lambda m=module_name: importlib.import_module(m), module_name,
        )


def _entry_point_candidates() -> Iterable[_Candidate]:
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry.dist
        info = PluginInfo(entry.name, ENTRY_POINT, dist.name if dist else None,
                          dist.version if dist else None, target=entry.value)
        yield _Candidate(info, entry.load, entry.value)


def _local_candidate(target: str, source: str) -> _Candidate:
    if not _looks_like_path(target):
        info = PluginInfo(target, source, target=target)
        return _Candidate(info, lambda: _import_module(target), target)
    path = Path(target).expanduser()
    if not path.is_file():
        raise ToolkitError(
            f"plugin file '{target}' (from {source}) does not exist; "
            "give the path of a .py file or an importable module name."
        )
    info = PluginInfo(path.stem, source, target=target, path=str(path.resolve()))

    def load() -> ModuleType:
        module, info.sha256 = _import_file(path)
        return module

    return _Candidate(info, load, str(path.resolve()))


def _import_module(target: str) -> ModuleType:
    """Import the module `target`; a module that is not there at all is one line saying so
    (a module that is there but fails to import reports its own error)."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (target == exc.name or target.startswith(exc.name + ".")):
            raise  # the plugin is there; one of its own imports is missing
        raise ToolkitError(
            f"no module named '{exc.name}' on the Python path; give the path of a "
            "plugin's .py file, or the name of an installed module (pip install it, or add its "
            "folder to PYTHONPATH)"
        ) from exc


def _returned_problem(hook_name: str, returned: Any, spec_type: type) -> str:
    """What is wrong with a hook that returned something: hooks call `register` instead."""
    items = returned if isinstance(returned, (list, tuple)) else [returned]
    if items and all(isinstance(item, Spec) for item in items):
        return (
            f"its hook {hook_name}() returned {type(items[0]).__name__}(name={items[0].name!r}) instead "
            f"of registering it, so toolkit would not see it; call register(toolkit.{spec_type.__name__}"
            "(...)) inside the hook, once per spec"
        )
    return (
        f"its hook {hook_name}() returned {type(returned).__name__}; hooks return nothing, they call "
        f"register(toolkit.{spec_type.__name__}(...)) once per spec"
    )


def _check_hooks(plugin: Any) -> None:
    """Refuse a hook toolkit does not have (with a did-you-mean) or one whose arguments differ
    from the hook's, before pluggy registers the plugin."""
    hooks = {
        name: list(inspect.signature(function).parameters)
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "toolkit_spec")
    }
    for name in dir(plugin):
        function = getattr(plugin, name, None)
        if not callable(function) or not hasattr(function, "toolkit_impl"):
            continue
        if name not in hooks:
            raise ToolkitError(
                f"it defines the hook {name}(), which toolkit does not have.{did_you_mean(name, hooks)} "
                f"Hooks: {', '.join(sorted(hooks))}"
            )
        arguments = list(inspect.signature(function).parameters)
        unknown = [a for a in arguments if a not in hooks[name]]
        if unknown:
            raise ToolkitError(
                f"its hook {name}({', '.join(arguments)}) takes '{unknown[0]}', but toolkit passes "
                f"only {', '.join(hooks[name])}; write {name}({', '.join(hooks[name])})"
            )


def _command_names(cli: Any, since: tuple[int, int] = (0, 0)) -> list[str]:
    """The names of the commands and command groups added to the typer app `cli`."""
    from typer.main import get_command_name

    names = []
    for command in cli.registered_commands[since[0]:]:
        name = command.name or (get_command_name(command.callback.__name__) if command.callback else None)
        names.append(name)
    for group in cli.registered_groups[since[1]:]:
        name = group.name or group.typer_instance.info.name
        if not isinstance(name, str) and group.typer_instance.registered_callback:
            callback = group.typer_instance.registered_callback.callback
            name = get_command_name(callback.__name__) if callback else None
        names.append(name)
    return [n for n in names if isinstance(n, str)]


def _split_env(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _looks_like_path(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def _import_file(path: Path) -> tuple[ModuleType, str]:
    """Import a .py file as a module; return it and the SHA-256 of the source it ran."""
    resolved = path.resolve()
    source = resolved.read_bytes()
    sha256 = hashlib.sha256(source).hexdigest()
    module_name = f"toolkit_local_{resolved.stem}_{sha256[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name], sha256
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        exec(compile(source, str(resolved), "exec"), module.__dict__)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module, sha256


def _describe(exc: BaseException) -> str:
    """One line: the exception and, when the plugin raised it, where."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if isinstance(exc, SyntaxError):
        return text
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    if frames:
        return f"{text} ({Path(frames[-1].filename).name}, line {frames[-1].lineno})"
    return text


def _toolkit_version() -> str:
    from toolkit import __version__

    return __version__

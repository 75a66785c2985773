"""Run config files: a run written down in TOML, read by `toolkit run --config FILE` and
written into every run folder as config.toml, which runs as is.

    [run]                       # what to train; every key optional (flags beside the file win)
    dataset = "names"
    model = "gru"
    encoder = "onehot"
    seed = 0
    device = "auto"
    plugins = ["my_plugin.py"]  # as --plugin, before the command
    init = "runs/earlier"       # as --init: start from that run's model and encoder

    [model]                     # one table per parameter group: dataset, encoder, model,
    hidden_size = 64            # split, train (as --param GROUP.NAME=VALUE)
    [train]
    epochs = 4

Every table and key is checked: an unknown one, or a value of the wrong kind, is refused in
one line naming the file, the table and the key. A relative file or folder in a table (the csv
dataset's `path`) is read from the config file's own folder. Values are checked against the parameters'
declarations when the run is planned (`toolkit.plan_run`), where the plugins are known.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, did_you_mean
from toolkit.params import Section, locate, resolve
from toolkit.safe_files import read_bounded, shown

#: The file every run folder holds: `toolkit run --config RUN/config.toml` trains it again.
CONFIG_TOML = "config.toml"
RUN_TABLE = "run"
#: The parameter groups, each a table of the file (see `toolkit.api.run_sections`).
GROUPS = ("dataset", "encoder", "model", "split", "train")
#: The keys of [run] and the kind of value each takes.
RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "dataset": str, "model": str, "encoder": str, "seed": int, "device": str, "plugins": list, "init": str,
}
_KIND_NAMES = {str: "a string", int: "an integer", list: "a list of strings"}


@dataclass(frozen=True)
class RunFile:
    """A run config file read and its shape checked: `run` holds [run]'s keys, `params`
    each group's table ({group: {name: value}}), `path` where it came from."""

    path: Path | None = None
    run: dict[str, Any] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"config file '{shown(self.path)}'" if self.path is not None else "the config"

    def checked_params(
        self, sections: Sequence[Section], replaced: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The file's parameters as `group.name` keys, each checked against `sections`; a bad
        one is refused naming the file, table and key. `replaced` maps a group (dataset, encoder,
        model) to the part a flag chose instead of the file's: a key of that table that the new
        part does not have says so, and how to start from the file anyway."""
        flat: dict[str, Any] = {}
        for group, values in self.params.items():
            for name, value in values.items():
                key = f"{group}.{name}"
                try:
                    value = self._beside_the_file(key, value, sections)
                    resolve(sections, {key: value})
                except ToolkitError as exc:
                    fix = ""
                    if replaced and group in replaced:
                        fix = (f" The table is for {group} '{self.run[group]}', which --{group} "
                               f"{replaced[group]} replaces: delete the [{group}] table from a copy of the "
                               "file to start from it.")
                    raise ToolkitError(f"{self.label}, table [{group}], key '{name}': {exc}{fix}") from None
                flat[key] = value
        return flat

    def _beside_the_file(self, key: str, value: Any, sections: Sequence[Section]) -> Any:
        """A relative file or folder (a parameter declared `path=True`) read from the file's own
        folder, as a path written in a file means; other values as they are."""
        _, param = locate(key, sections)
        if not (param.path and isinstance(value, str) and value and self.path is not None):
            return value
        written = Path(value).expanduser()
        return value if written.is_absolute() else str(self.path.parent / written)


def read_run_file(path: str | Path) -> RunFile:
    """Read and check the shape of a run config file (TOML, see the module's docstring)."""
    path = Path(path)
    label = f"config file '{shown(path)}'"
    if not path.is_file():
        raise ToolkitError(f"{label} does not exist; give a TOML file such as a run folder's {CONFIG_TOML}.")
    try:
        document = tomllib.loads(read_bounded(path).decode("utf-8"))
    except UnicodeDecodeError:
        raise ToolkitError(f"{label} is not UTF-8 text; save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ToolkitError(f"{label} is not valid TOML: {exc}.") from None
    return run_file_from(document, path)


def run_file_from(document: Mapping[str, Any], path: Path | None = None) -> RunFile:
    """A `RunFile` from a parsed TOML document (or a dict in the same shape)."""
    label = RunFile(path).label
    tables = (RUN_TABLE, *GROUPS)
    run: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {}
    for table, values in document.items():
        if table in RUN_KEYS and not isinstance(values, Mapping):
            raise ToolkitError(
                f"{label}: key '{table}' goes in the [{RUN_TABLE}] table; "
                f"write it below a [{RUN_TABLE}] line."
            )
        if table not in tables:
            raise ToolkitError(
                f"{label} has an unknown table or key [{shown(table)}].{did_you_mean(table, tables)}"
                f" Tables: {', '.join(f'[{t}]' for t in tables)}."
            )
        if not isinstance(values, Mapping):
            raise ToolkitError(
                f"{label}: '{shown(table)}' must be a table ([{table}] and its keys below it), "
                f"not a single value."
            )
        if table == RUN_TABLE:
            run = {key: _run_value(label, key, value) for key, value in values.items()}
            continue
        for name, value in values.items():
            if isinstance(value, (Mapping, list)):
                raise ToolkitError(
                    f"{label}, table [{table}], key '{shown(name)}': a parameter takes a single "
                    f"value (a string, number or true/false), not {type(value).__name__} {shown(value)[:60]}."
                )
        params[table] = dict(values)
    return RunFile(path, run, params)


def _run_value(label: str, key: str, value: Any) -> Any:
    if key not in RUN_KEYS:
        raise ToolkitError(
            f"{label}, table [{RUN_TABLE}] has no key '{shown(key)}'.{did_you_mean(key, RUN_KEYS)}"
            f" Keys: {', '.join(RUN_KEYS)}."
        )
    kind = RUN_KEYS[key]
    fits = (isinstance(value, kind) and not isinstance(value, bool)
            and (kind is not list or all(isinstance(item, str) for item in value)))
    if not fits:
        raise ToolkitError(
            f"{label}, table [{RUN_TABLE}], key '{key}' must be {_KIND_NAMES[kind]}; "
            f"got {shown(repr(value))[:60]}."
        )
    return value


def run_toml(run: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]]) -> str:
    """The TOML text of a run: [run]'s keys and every group's parameters. Values that are
    None (a parameter's "unset" default) are left out: TOML has no null, and leaving them out
    means the same."""
    import tomli_w

    document: dict[str, Any] = {RUN_TABLE: {k: v for k, v in run.items() if v is not None and v != []}}
    for group in GROUPS:
        document[group] = {k: v for k, v in params.get(group, {}).items() if v is not None}
    header = (
        "# The run, written down: `toolkit run --config config.toml --output NEW` trains it again.\n"
        "# Flags given beside --config win over this file.\n"
    )
    return header + tomli_w.dumps(document)

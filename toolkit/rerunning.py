"""`toolkit.rerun(RUN)`: train a run again from what its folder recorded, and say whether
the test metrics came out the same.

Before any training the recorded plugins are checked: a file plugin must still have the
SHA-256 the run recorded. After the data is loaded (before training) its files' SHA-256
must be the recorded ones, unless `allow_data_change`. On the same machine with the same
library versions a rerun gives the same metrics and weights; the versions are compared and
a difference said.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError
from toolkit.runconfig import GROUPS, RunFile
from toolkit.safe_files import shown

if TYPE_CHECKING:
    from toolkit.api import RunResult

PARTS = ("dataset", "encoder", "model")
#: What config.json's split section holds besides the split's parameters.
_SPLIT_RECORD = ("seed", "sizes")


@dataclass(frozen=True)
class RerunResult:
    """A rerun: the new run, the original's folder, the test metrics that differ ({name:
    (original, new)}), whether the weights are the same, the data files that changed (only
    with `allow_data_change`) and the library versions that differ ({name: (then, now)})."""

    original: Path
    result: RunResult
    metric_differences: dict[str, tuple[float, float]]
    same_weights: bool
    changed_data: tuple[str, ...] = ()
    version_differences: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        """The test metrics equal the original's exactly."""
        return not self.metric_differences


def rerun(
    run: str | Path,
    output: str | Path | None = None,
    allow_data_change: bool = False,
    plugins: Sequence[str] = (),
    progress: bool | None = None,
    track: Sequence[str] = (),
) -> RerunResult:
    """Train the run folder `run` again from its recorded parameters, plugins and data into
    `output` (default runs/<time>-<dataset>-<model>), and compare the test metrics. `plugins`
    are loaded besides the recorded ones; `track` names trackers, as for `toolkit.run`."""
    from toolkit.api import library_versions, plan_run, run_plan
    from toolkit.rundir import open_run

    folder, config = open_run(run)
    check_plugin_files(folder, config)
    recorded = run_file_of(folder, config)
    try:
        plan = plan_run(config=recorded, output=output, plugins=plugins, track=track)
    except ToolkitError:
        _say_missing_plugin(folder, config, (*recorded.run.get("plugins", ()), *plugins))
        raise
    changed: list[str] = []

    def check_data(provenance: Mapping[str, Any]) -> None:
        changed.extend(changed_files(config.get("provenance", {}), provenance))
        if changed and not allow_data_change:
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise ToolkitError(
                f"data file {changed[0]}{more} differs from what run '{shown(folder)}' was trained on; "
                "pass --allow-data-change to train on the data as it is now."
            )

    result = run_plan(plan, progress, check_data)
    assert result.report is not None
    from toolkit.rundir import METRICS, read_json

    before = read_json(folder / METRICS).get("summary", {})
    after = result.report.metrics()["summary"]
    differences = {
        name: (before.get(name), value) for name, value in after.items() if before.get(name) != value
    }
    then, now = dict(config.get("versions") or {}), library_versions()
    # Which engine trained it (train.engine=auto may choose another here): runs before it, torch.
    then["train.engine"] = (config.get("training") or {}).get("engine", "torch")
    now["train.engine"] = result.engine
    versions = {name: (then[name], now[name]) for name in now if name in then and then[name] != now[name]}
    return RerunResult(folder, result, differences, _same_weights(folder, result.run_dir), tuple(changed),
                       versions)


def _say_missing_plugin(folder: Path, config: Mapping[str, Any], plugins: Sequence[str]) -> None:
    """When a recorded dataset, encoder or model is not registered here, the one line that names
    the plugin distribution the run recorded for it (as `toolkit predict` says), if it did."""
    from toolkit.predictor import recorded_spec
    from toolkit.registry import load_registry

    registry = load_registry(plugins)
    for kind in ("dataset", "encoder", "model"):
        recorded = config.get(kind)
        if isinstance(recorded, Mapping) and isinstance(recorded.get("name"), str):
            recorded_spec(registry, kind, recorded["name"], recorded, folder)


def check_plugin_files(folder: Path, config: Mapping[str, Any]) -> None:
    """Refuse when a file plugin the run used is gone or its SHA-256 differs from the recorded."""
    for part in PARTS:
        record = config.get(part) or {}
        path, digest = record.get("plugin_file"), record.get("plugin_sha256")
        if not path:
            continue
        file = Path(path)
        if not file.is_file():
            raise ToolkitError(
                f"plugin file '{shown(path)}', which run '{shown(folder)}' used for its {part}, does not "
                "exist; put it back to rerun the run."
            )
        now = hashlib.sha256(file.read_bytes()).hexdigest()
        if now != digest:
            raise ToolkitError(
                f"plugin file '{shown(path)}' differs from the one run '{shown(folder)}' used (SHA-256 "
                f"{shown(digest)[:12]}..., now {now[:12]}...); restore it to rerun the run."
            )


def run_file_of(folder: Path, config: Mapping[str, Any]) -> RunFile:
    """The run a run folder's config.json records, as a config file would give it."""
    try:
        plugins = list(config.get("plugins") or dict.fromkeys(
            config[part]["plugin_file"] for part in PARTS if config[part].get("plugin_file")
        ))
        run = {"dataset": config["dataset"]["name"], "model": config["model"]["name"],
               "encoder": config["encoder"]["name"], "seed": config["seed"], "device": config["device"],
               "plugins": plugins}
        if config.get("init"):
            run["init"] = config["init"]["run"]
        params = {part: dict(config[part]["params"]) for part in PARTS}
        params["split"] = {k: v for k, v in config["split"].items() if k not in _SPLIT_RECORD}
        params["train"] = dict(config["train"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ToolkitError(
            f"run folder '{shown(folder)}' has a malformed config.json ({shown(exc)})."
        ) from None
    return RunFile(folder / "config.json", run, {group: params[group] for group in GROUPS})


def changed_files(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The data files whose SHA-256 differs between two provenance records, each named with
    what changed ("'Arabic.txt' (changed)", "(gone)", "(new)")."""
    before, after = recorded.get("sha256") or {}, now.get("sha256") or {}
    changed = [
        f"'{shown(name)}' (changed)" for name in before if name in after and before[name] != after[name]
    ]
    changed += [f"'{shown(name)}' (gone)" for name in before if name not in after]
    changed += [f"'{shown(name)}' (new)" for name in after if name not in before]
    return changed


def _same_weights(first: Path, second: Path | None) -> bool:
    from safetensors.torch import load_file

    from toolkit.rundir import WEIGHTS

    if second is None:
        return False
    a, b = load_file(first / WEIGHTS), load_file(second / WEIGHTS)
    return set(a) == set(b) and all(a[k].shape == b[k].shape and bool((a[k] == b[k]).all()) for k in a)

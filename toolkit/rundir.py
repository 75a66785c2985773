"""The run folder: everything a run produced, in plain, safe formats.

    config.json          every parameter, plugins and versions, seed, split, data provenance
    model.safetensors    the weights (safetensors: loading it never runs code)
    encoder.json         the encoder's name, parameters and fitted state (its vocabulary)
    labels.json          the class names, in the model's output order
    metrics.json         overall and per-class metrics on the test split
    per_class.csv / .md, confusion.csv / .md, history.csv
    mistakes.csv         a few misclassified test texts per confused pair (bounded)
    loss.png, confusion.png, report.html (the plots embedded; see toolkit.rendering)

A run folder is built in a hidden sibling folder and renamed into place at the end, so a
crashed run never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.errors import ToolkitError
from toolkit.evaluation import Report, confused_examples

if TYPE_CHECKING:
    from toolkit.api import RunResult

FORMAT_VERSION = 1
CONFIG, WEIGHTS, ENCODER, LABELS, METRICS = (
    "config.json", "model.safetensors", "encoder.json", "labels.json", "metrics.json",
)
PER_CLASS, CONFUSION, HISTORY = "per_class.csv", "confusion.csv", "history.csv"
MISTAKES = "mistakes.csv"  # optional: runs written before it existed still read
LOSS_PNG, CONFUSION_PNG, REPORT_HTML = "loss.png", "confusion.png", "report.html"
REQUIRED = (CONFIG, WEIGHTS, ENCODER, LABELS, METRICS, PER_CLASS, CONFUSION, HISTORY)


def default_run_dir(dataset: str, model: str, root: str | Path = "runs") -> Path:
    """runs/<UTC time>-<dataset>-<model>, with -2, -3... when a run of the same second exists."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{dataset}-{model}"
    path, number = base, 1
    while path.exists():
        number += 1
        path = base.with_name(f"{base.name}-{number}")
    return path


def check_output(path: Path) -> None:
    """Refuse, before any training, to write over an existing non-empty folder."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ToolkitError(f"output '{path}' already exists and is not empty; choose another --output.")


def run_config(result: RunResult) -> dict[str, Any]:
    """Everything needed to understand, repeat and reload the run."""
    plan = result.plan

    def plugin(kind: str, name: str) -> dict[str, Any]:
        owner = plan.registry.owner(kind, name)
        recorded = {"name": name, "plugin": owner.name, "distribution": owner.distribution,
                    "version": owner.version, "params": plan.params[kind]}
        if owner.path:  # a file plugin has no version: its path and contents identify it
            recorded |= {"plugin_file": owner.path, "plugin_sha256": owner.sha256}
        return recorded

    from toolkit import __version__

    return {
        "format_version": FORMAT_VERSION,
        "toolkit_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": plan.seed,
        "device": result.device,
        "dataset": plugin("dataset", plan.dataset.name),
        "encoder": plugin("encoder", plan.encoder.name),
        "model": plugin("model", plan.model.name),
        "split": {**plan.params["split"], "strategy": result.split.strategy,
                  "seed": result.split.seed, "sizes": result.split.sizes()},
        "train": plan.params["train"],
        "training": {"seconds": round(result.train_seconds, 3), "stop_reason": result.stop_reason,
                     "best_epoch": result.best_epoch},
        "classes": list(result.classes),
        "provenance": dict(result.split.train.provenance),
    }


def write_run(result: RunResult, report: Report, path: Path) -> Path:
    """Write the whole run folder at `path`, atomically."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        config = run_config(result)
        weights = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
        save_file(weights, staging / WEIGHTS, metadata={"format": "toolkit", "format_version": "1"})
        encoder = {"name": result.plan.encoder.name, "params": result.plan.params["encoder"],
                   "state": result.encoder.state()}
        _write_json(staging / ENCODER, encoder)
        _write_json(staging / LABELS, list(result.classes))
        _write_json(staging / CONFIG, config)
        _write_json(staging / METRICS, report.metrics())
        report.per_class.to_csv(staging / PER_CLASS)
        report.confusion.to_csv(staging / CONFUSION)
        result.history.to_csv(staging / HISTORY, index=False)
        mistakes = confused_examples(
            result.split.test.texts, result.test_targets, result.test_probabilities, result.classes
        )
        mistakes.to_csv(staging / MISTAKES, index=False)
        from toolkit.rendering import render_report

        render_report(RunRecord(staging, config, report, result.history, mistakes))
        if path.exists():
            path.rmdir()  # check_output allowed only an empty folder
        staging.chmod(0o777 & ~_umask())  # mkdtemp made it private
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


@dataclass(frozen=True)
class RunRecord:
    """A run folder read back: its config, test report, training history and example
    mistakes (None for runs written before mistakes.csv existed)."""

    path: Path
    config: dict[str, Any]
    report: Report
    history: pd.DataFrame
    mistakes: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return self.path.name


def open_run(path: str | Path, required: Sequence[str] = REQUIRED) -> tuple[Path, dict[str, Any]]:
    """Check that `path` is a run folder with the `required` files and a config.json of this
    format version; return the folder and its config."""
    folder = Path(path)
    if not folder.is_dir():
        raise ToolkitError(f"run folder '{folder}' does not exist; give a folder made by `toolkit run`.")
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise ToolkitError(
            f"'{folder}' is not a complete toolkit run folder (missing {', '.join(missing)})."
        )
    config = read_json(folder / CONFIG)
    found = config.get("format_version") if isinstance(config, dict) else None
    if found != FORMAT_VERSION:
        raise ToolkitError(
            f"run folder '{folder}' has format version {found!r}; this toolkit reads version "
            f"{FORMAT_VERSION}."
        )
    return folder, config


#: Class names are read back as written: "1" stays a string, "NA" and "None" are not missing.
_EXACT: dict[str, Any] = {"keep_default_na": False, "na_values": [""]}


def read_run(path: str | Path) -> RunRecord:
    """Read a run folder's config, metrics and tables, checking that it is complete."""
    folder, config = open_run(path)
    metrics = read_json(folder / METRICS)
    try:
        summary = pd.DataFrame({"value": metrics["summary"]})
        summary.index.name = "metric"
        per_class = pd.read_csv(
            folder / PER_CLASS, index_col="class", dtype={"class": str, "confused_with": str}, **_EXACT
        )
        confusion = pd.read_csv(folder / CONFUSION, index_col="true", dtype={"true": str}, **_EXACT)
        confusion.columns.name = "predicted"
        history = pd.read_csv(folder / HISTORY)
        mistakes = (
            pd.read_csv(folder / MISTAKES, dtype={"true": str, "predicted": str, "text": str}, **_EXACT)[
                ["true", "predicted", "text", "probability"]
            ]
            if (folder / MISTAKES).is_file() else None
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ToolkitError(f"run folder '{folder}' has a malformed table or metrics file ({exc}).") from None
    totals = confusion.sum(axis=1).replace(0, 1)
    normalized = confusion.div(totals, axis=0)
    report = Report(summary, per_class, confusion, normalized)
    return RunRecord(folder, config, report, history, mistakes)


def compare_runs(paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs side by side: (overall metrics, per-class accuracy), a column per run."""
    records = [read_run(p) for p in paths]
    names = _unique_names([r.name for r in records])
    summary = pd.concat([r.report.summary["value"] for r in records], axis=1, keys=names)
    per_class = pd.concat([r.report.per_class["accuracy"] for r in records], axis=1, keys=names)
    header = pd.DataFrame(
        [[r.config["dataset"]["name"] for r in records], [r.config["model"]["name"] for r in records]],
        index=pd.Index(["dataset", "model"], name="metric"), columns=names,
    )
    return pd.concat([header, summary.astype(object)]), per_class


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ToolkitError(f"'{path}' is not valid JSON ({exc}); the run folder is damaged.") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sibling_tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _write_text(path: Path, text: str) -> None:
    tmp = _sibling_tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, value: Any) -> None:
    _write_text(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")

"""Every run in a folder as one pandas table (`toolkit runs`, `toolkit.runs_table`).

One row per run folder: its name, when it was made, dataset, model, encoder, every parameter
(`model.hidden_size`...), test accuracy and macro-F1, training seconds, whether it was
interrupted or stopped early, its size on disk, and the run a warm start began from (`init`).
Folders that are not complete runs are skipped and counted. Only config.json and metrics.json
are read (bounded), never the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError, did_you_mean
from toolkit.safe_files import shown

if TYPE_CHECKING:
    import pandas as pd

#: The columns before the parameters, and after them.
LEADING = ("run", "time", "dataset", "model", "encoder")
TRAILING = (
    "accuracy", "macro_f1", "micro_f1", "seconds", "interrupted", "stopped_early", "size_bytes", "init",
)
GROUPS = ("dataset", "encoder", "model", "split", "train")


@dataclass(frozen=True)
class RunsTable:
    """The runs found (`frame`, one row per run, every parameter as a `group.name` column)
    and how many folders were skipped as not being runs."""

    frame: pd.DataFrame
    skipped: int

    def shown(self) -> pd.DataFrame:
        """The table to show: the parameters that differ between the runs (not all of them),
        the time to the minute, how training ended in one column, the size in kB or MB."""
        frame = self.frame
        params = [c for c in frame.columns if c not in LEADING + TRAILING]
        varying = [c for c in params if frame[c].astype(str).nunique() > 1]
        ended = [
            "interrupted" if interrupted else "stopped early" if early else "completed"
            for interrupted, early in zip(frame["interrupted"], frame["stopped_early"], strict=True)
        ]
        # multi-label runs score micro-F1 (and no accuracy): a column only when one is listed
        micro = ["micro_f1"] if frame["micro_f1"].notna().any() else []
        # the run a warm start began from (--init), by folder name: a column only when one did
        started = ["init"] if frame["init"].astype(bool).any() else []
        return frame[[*LEADING, *started, *varying, "accuracy", "macro_f1", *micro, "seconds"]].assign(
            time=frame["time"].astype(str).str.slice(0, 16).str.replace("T", " "),
            accuracy=frame["accuracy"].round(4), macro_f1=frame["macro_f1"].round(4),
            **({"micro_f1": frame["micro_f1"].round(4)} if micro else {}),
            seconds=frame["seconds"].round(1), ended=ended, size=frame["size_bytes"].map(_size),
        )


def runs_table(
    root: str | Path = "runs",
    where: Sequence[str] = (),
    sort: str | None = None,
    descending: bool = False,
) -> RunsTable:
    """The runs in the folders inside `root`. `where` keeps the runs whose column KEY has
    VALUE (`model=gru`, `train.epochs=4`); `sort` orders by a column (default: time)."""
    import pandas as pd

    folder = Path(root)
    if not folder.is_dir():
        raise ToolkitError(f"runs folder '{shown(folder)}' does not exist; give the folder your runs are in.")
    rows, skipped = [], 0
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        row = _row(child)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(LEADING + TRAILING) if not rows else None)
    if rows:
        params = sorted(c for c in frame.columns if c not in LEADING + TRAILING)
        frame = frame[[*LEADING, *params, *TRAILING]]
    for condition in where:
        key, sep, value = condition.partition("=")
        if not sep or not key.strip():
            raise ToolkitError(f"--where expects KEY=VALUE (e.g. model=gru); got {shown(condition)!r}.")
        frame = frame[_matches(frame, key.strip(), value.strip())]
    column = sort or "time"
    _check_column(frame, column, "--sort")
    frame = frame.sort_values(column, ascending=not descending, kind="stable").reset_index(drop=True)
    return RunsTable(frame, skipped)


def _row(folder: Path) -> dict[str, Any] | None:
    from toolkit.rundir import METRICS, open_run, read_json

    try:
        _, config = open_run(folder)
        metrics = read_json(folder / METRICS)
        training = config.get("training") or {}
        summary = metrics.get("summary") or {}
        row: dict[str, Any] = {
            "run": folder.name, "time": config.get("created_at"),
            "dataset": config["dataset"]["name"], "model": config["model"]["name"],
            "encoder": config["encoder"]["name"],
        }
        for group in GROUPS:
            values = config[group]["params"] if group in ("dataset", "encoder", "model") else config[group]
            row |= {f"{group}.{key}": value for key, value in values.items()
                    if group != "split" or key not in ("seed", "sizes")}
        planned, completed = training.get("epochs_planned"), training.get("epochs_completed")
        row |= {
            "accuracy": summary.get("accuracy"), "macro_f1": summary.get("macro_f1"),
            "micro_f1": summary.get("micro_f1"), "seconds": training.get("seconds"),
            "interrupted": bool(training.get("interrupted")),
            "stopped_early": not training.get("interrupted") and planned is not None and completed is not None
            and completed < planned,
            "size_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
            "init": Path(config["init"]["run"]).name if config.get("init") else "",
        }
    except (ToolkitError, KeyError, TypeError, AttributeError, OSError):
        return None
    return row


def _check_column(frame: pd.DataFrame, column: str, option: str) -> None:
    if column not in frame.columns:
        raise ToolkitError(
            f"{option}: no column '{shown(column)}'.{did_you_mean(column, frame.columns)} "
            f"Columns: {', '.join(LEADING + TRAILING)}, and every parameter as GROUP.NAME "
            "(e.g. train.epochs)."
        )


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def _matches(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Rows whose `key` equals `value`, compared as the value's type (4 == 4.0, true == True)."""
    _check_column(frame, key, "--where")

    def equal(cell: Any) -> bool:
        if isinstance(cell, bool):
            return value.lower() in (("true", "1", "yes") if cell else ("false", "0", "no"))
        if isinstance(cell, (int, float)):
            try:
                return float(value) == float(cell)
            except ValueError:
                return False
        return str(cell) == value

    return frame[key].map(equal).astype(bool)

"""Runs side by side: their overall metrics and per-class accuracy, a column per run.

`toolkit compare` prints these tables; `toolkit.rendering.write_compare` draws them as a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from toolkit.rundir import RunRecord, read_run


def compare_runs(paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs side by side: (overall metrics, per-class accuracy), a column per run."""
    records = [read_run(p) for p in paths]
    names = unique_names([r.name for r in records])
    summary = pd.concat([r.report.summary["value"] for r in records], axis=1, keys=names)
    per_class = pd.concat([r.report.per_class["accuracy"] for r in records], axis=1, keys=names)
    header = pd.DataFrame(
        [[_plugin_name(r, "dataset") for r in records], [_plugin_name(r, "model") for r in records]],
        index=pd.Index(["dataset", "model"], name="metric"), columns=names,
    )
    return pd.concat([header, summary.astype(object)]), per_class


def unique_names(names: list[str]) -> list[str]:
    """Run names made unique for column headers: a repeated name gets " (2)", " (3)"..."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _plugin_name(record: RunRecord, kind: str) -> str:
    section = record.config.get(kind)
    name = section.get("name") if isinstance(section, dict) else None
    return name if isinstance(name, str) else "?"

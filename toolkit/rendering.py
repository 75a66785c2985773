"""A run folder as pages for people: plots, Markdown tables and a self-contained report.html,
and a page comparing several runs.

The pages are rendered by Jinja2 with autoescaping on, so nothing read from a run folder
(class names, texts, parameters) can inject markup. Images are embedded as data: URIs, so a
page opens from disk, offline, on its own.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit import explain_report
from toolkit.compare import unique_names
from toolkit.errors import ToolkitError
from toolkit.model_size import size_line
from toolkit.rundir import (
    ABSTENTION_PNG,
    CONFUSION_PNG,
    LOSS_PNG,
    RELIABILITY_PNG,
    REPORT_HTML,
    RunRecord,
    read_run,
)
from toolkit.safe_files import shown, write_atomic

if TYPE_CHECKING:
    import jinja2

#: Most-confused pairs shown in a report, and example texts shown per pair.
TOP_PAIRS = 12
EXAMPLES_PER_PAIR = 4
#: Overall metrics that are counts, shown as integers.
_INTEGER_METRICS = {"examples"}


def render_report(record: RunRecord) -> Path:
    """(Re)write the plots, the Markdown tables and report.html in the run's folder, each file
    through a fresh temporary renamed into place (a symlink planted in the folder is replaced,
    never followed); nothing is written when the folder's config cannot be rendered."""
    from toolkit.plots import plot_abstention, plot_confusion, plot_loss, plot_reliability

    folder = record.path
    report = record.report
    with unshowable_values(folder):
        terms = training_loss_terms(record.config)
        training = f"training (with {', '.join(terms)})" if terms else "training"
        pngs = {LOSS_PNG: _png(functools.partial(plot_loss, training_label=training), record.history),
                CONFUSION_PNG: _png(plot_confusion, report.confusion_normalized)}
        if "reliability" in record.evaluation:
            pngs[RELIABILITY_PNG] = _png(plot_reliability, record.evaluation["reliability"])
        if "abstention" in record.evaluation:
            pngs[ABSTENTION_PNG] = _png(plot_abstention, record.evaluation["abstention"]["curve"])
        page = report_html(record, pngs)
    for name, data in pngs.items():
        write_atomic(folder / name, data)
    write_atomic(folder / "per_class.md", _safe_frame(report.per_class).to_markdown(floatfmt=".3f"))
    write_atomic(folder / "confusion.md", _safe_frame(report.confusion).to_markdown())
    write_atomic(folder / REPORT_HTML, page)
    return folder / REPORT_HTML


#: What values of the wrong type or size in a run folder make the rendering code raise.
_UNSHOWABLE = (KeyError, TypeError, AttributeError, ValueError, OverflowError, IndexError, ZeroDivisionError)


@contextmanager
def unshowable_values(folder: Path) -> Iterator[None]:
    """Values from the run folder `folder` that a page cannot show (a section of the wrong
    type, a number like 1e400 or 10**400) are one line naming the folder, not a traceback."""
    try:
        yield
    except _UNSHOWABLE as exc:
        raise ToolkitError(
            f"run folder '{shown(folder)}' holds values its report cannot show "
            f"({shown(type(exc).__name__)}: {shown(exc)[:200]}); the run folder is damaged."
        ) from None


def _png(plot: Any, data: Any) -> bytes:
    buffer = io.BytesIO()
    plot(data, buffer)
    return buffer.getvalue()


def _safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with control characters (newlines, escapes) in its labels and text cells made
    visible, for the Markdown tables."""
    safe = frame.copy()
    safe.index = safe.index.map(lambda v: shown(v) if isinstance(v, str) else v)
    safe.columns = safe.columns.map(lambda v: shown(v) if isinstance(v, str) else v)
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(lambda v: shown(v) if isinstance(v, str) else v)
    return safe


def rerender(path: str | Path) -> Path:
    """Re-draw a run's plots and rewrite its report from the files in the folder."""
    return render_report(read_run(path))


def report_html(record: RunRecord, pngs: dict[str, bytes] | None = None) -> str:
    """The report page of one run; `pngs` are its plots (read from its folder when None)."""
    config, report = record.config, record.report
    pngs = pngs if pngs is not None else {
        name: (record.path / name).read_bytes() for name in (LOSS_PNG, CONFUSION_PNG)
    } | {
        name: (record.path / name).read_bytes() for name in (RELIABILITY_PNG, ABSTENTION_PNG)
        if (record.path / name).is_file()
    }
    status = run_status(config, record.history)
    heading = f"{config['model']['name']} on {config['dataset']['name']}"
    title = f"{record.name}: {heading}"  # the tab names the run: several reports are open at once
    if status.kind == "interrupted":  # where a user looks first, the tab and the heading
        ended = f"({status.epochs_done} of {status.epochs_planned} epochs completed)"
        heading, title = f"Interrupted: {heading} {ended}", f"Interrupted: {title} {ended}"
    return _template("report.html.j2").render(
        title=title,
        heading=heading,
        run=record.name,
        config=config,
        status=status,
        summary=_summary_rows(report.summary),
        baseline=majority_baseline(report.per_class),
        loss_note=loss_note(config),
        sizes=config["split"].get("sizes", {}),
        model_size=size_line(record.path),
        settings=settings_tables(config),
        classes=class_rows(report.per_class),
        pairs=[] if "multi_label" in config else confused_pairs(report.confusion, record.mistakes),
        multi_label=multi_label_view(record),
        any_correct="any_correct_accuracy" in report.summary.index,
        loss_png=_data_uri(pngs[LOSS_PNG]),
        confusion_png=_data_uri(pngs[CONFUSION_PNG]),
        confusion=report.confusion,
        history=_history_rows(record.history),
        history_columns=list(record.history.columns),
        explained=explain_report.load(record.path), per_class=explain_report.PER_CLASS,
        calibration=calibration_view(record.evaluation, list(report.per_class.index)),
        reliability_png=_data_uri(pngs[RELIABILITY_PNG]) if RELIABILITY_PNG in pngs else None,
        abstention_png=_data_uri(pngs[ABSTENTION_PNG]) if ABSTENTION_PNG in pngs else None,
    )


def multi_label_view(record: RunRecord) -> dict[str, Any] | None:
    """A multi-label run's decision rule and its most frequent wrong extra and missing labels,
    with example texts from its mistakes; None for a single-label run."""
    rule = record.config.get("multi_label")
    if not isinstance(rule, dict):
        return None
    errors = (record.evaluation.get("multi_label") or {}).get("label_errors") or {}
    thresholds = sorted({float(t) for t in (rule.get("thresholds") or {}).values()})
    shown_thresholds = f"{thresholds[0]:.2f}" if len(thresholds) == 1 else (
        f"{thresholds[0]:.2f} to {thresholds[-1]:.2f}, per class" if thresholds else "–")
    examples: dict[tuple[str, str], list[str]] = {}
    mistakes = record.mistakes
    if mistakes is not None and "extra" in mistakes.columns:
        for kind in ("extra", "missing"):
            for labels, text in mistakes[[kind, "text"]].itertuples(index=False):
                for label in str(labels).split("|") if isinstance(labels, str) and labels else ():
                    found = examples.setdefault((kind, label), [])
                    if len(found) < EXAMPLES_PER_PAIR:
                        found.append(str(text))
    return {
        "mode": rule.get("threshold"), "thresholds": shown_thresholds, "allow_empty": rule.get("allow_empty"),
        **{kind: [{**row, "examples": examples.get((kind, row["class"]), [])} for row in errors.get(kind, [])]
           for kind in ("extra", "missing")},
    }


def calibration_view(evaluation: dict[str, Any], classes: list[str]) -> dict[str, Any] | None:
    """metrics.json's calibration sections as the report shows them (None for a run written
    before they existed): the numbers before and after, the abstention table, the sets (and
    per class, at 0.9)."""
    if "calibration" not in evaluation:
        return None
    numbers = evaluation["calibration"]
    rows = [(label, _metric(key, numbers[f"{key}_before"]), _metric(key, numbers[f"{key}_after"]))
            for key, label in (("ece", f"ECE ({numbers['bins']} bins)"), ("brier", "Brier score"),
                               ("log_loss", "log loss"))]
    abstention = [
        {"target": _share(row["accuracy_target"]), "coverage": _share(row["coverage"]),
         "accuracy": _share(row["accuracy"]), "min_confidence": _metric("p", row["min_confidence"])}
        for row in evaluation.get("abstention", {}).get("table", [])
    ]
    conformal = evaluation.get("conformal")
    levels = [
        {"coverage": _share(level["coverage"]), "empirical": _share(level["empirical_coverage"]),
         "size": f"{float(level['mean_set_size']):.2f}",
         "sizes": ", ".join(f"{int(size)}: {int(count):,}" for size, count in level["set_sizes"].items())}
        for level in (conformal or {}).get("levels", [])
    ]
    at_90 = [level for level in (conformal or {}).get("levels", []) if level["coverage"] == 0.9]
    by_class = [
        {"name": str(name), "texts": f"{int(row['texts']):,}", "coverage": _share(row["coverage"]),
         "size": "–" if row["mean_set_size"] is None else f"{float(row['mean_set_size']):.2f}"}
        for name, row in zip(classes, at_90[0].get("by_class", []) if at_90 else [], strict=False)
    ]
    return {"method": str(numbers["method"]), "temperature": f"{float(numbers['temperature']):.3f}",
            "rows": rows, "abstention": abstention, "levels": levels, "by_class": by_class,
            "source": str((conformal or {}).get("source", "")),
            "calibration_texts": int((conformal or {}).get("calibration_texts", 0))}


def _share(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}%"


def compare_html(paths: Sequence[str | Path]) -> str:
    """A page putting runs side by side: overall metrics, settings that differ, per-class
    accuracy and F1 with a column per run, and the loss curves on one plot."""
    from toolkit.plots import plot_losses

    records = [read_run(p) for p in paths]
    views = [_compared_run(r) for r in records]  # each folder's values checked, naming the folder
    names = unique_names([r.name for r in records])
    metrics = list(dict.fromkeys(m for v in views for m in v["summary"]))
    summary = [(metric, _compared(metric, [v["summary"].get(metric) for v in views])) for metric in metrics]
    baselines = [v["baseline"] for v in views]
    summary.append(("majority-class baseline", [
        {"text": "–" if b is None else f"{b['accuracy']:.3f} ({b['class']})", "best": False, "delta": None}
        for b in baselines
    ]))
    flat = [v["settings"] for v in views]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    differing = [(k, [f.get(k, "–") for f in flat]) for k in keys if len({f.get(k, "–") for f in flat}) > 1]
    classes = list(dict.fromkeys(c for v in views for c in v["classes"]))
    per_class = []
    for name in classes:
        cells = [dict(v["classes"][name]) if name in v["classes"] else None for v in views]
        for index in _best([c["accuracy"] if c else None for c in cells], higher=True):
            cells[index]["best"] = True  # type: ignore[index]
        per_class.append((name, cells))
    with unshowable_values(Path(", ".join(str(p) for p in paths))):
        losses = plot_losses({n: r.history for n, r in zip(names, records, strict=True)})
    return _template("compare.html.j2").render(
        title=f"{len(records)} runs compared: {', '.join(names)}",
        runs=[{"name": n, "model": v["model"], "dataset": v["dataset"], "status": v["status"]}
              for n, v in zip(names, views, strict=True)],
        summary=summary, differing=differing, per_class=per_class,
        loss_png="data:image/png;base64," + base64.b64encode(losses).decode("ascii"),
    )


def _compared_run(record: RunRecord) -> dict[str, Any]:
    """What the comparison page shows of one run, every value read and converted here, so a
    value it cannot show is one line naming this run's folder."""
    with unshowable_values(record.path):
        summary = {
            str(metric): (value, _number(value), _metric(str(metric), value))
            for metric, value in record.report.summary["value"].items()
        }
        classes = {
            name: {"accuracy": _number(row["accuracy"]), "f1": _number(row["f1"]),
                   "support": int(row["support"]), "best": False}
            for name, row in record.report.per_class.iterrows()
        }
        return {
            "model": str(record.config["model"]["name"]), "dataset": str(record.config["dataset"]["name"]),
            "status": run_status(record.config, record.history), "settings": _flat_settings(record.config),
            "baseline": majority_baseline(record.report.per_class), "summary": summary, "classes": classes,
        }


#: Overall metrics where lower is better; counts (examples) are neither better nor worse.
_LOWER_IS_BETTER = {"log_loss", "ece", "set_size_90", "hamming_loss"}
#: Metrics with no better direction: a set's coverage should be near what was asked, not high.
_UNRANKED = {"set_coverage_90", "label_cardinality_true", "label_cardinality_predicted", "accuracy_ceiling"}


def _compared(metric: str, values: list[tuple[Any, float | None, str] | None]) -> list[dict[str, Any]]:
    """One metric of several runs (each its value, number and text; None where a run lacks it)
    as table cells: its text, whether it is the best value (when the runs differ), and its
    difference from the first run's."""
    numbers = [v[1] if v else None for v in values]
    texts = [v[2] if v else "–" for v in values]
    scored = metric not in _INTEGER_METRICS
    ranked = scored and metric not in _UNRANKED
    best = set(_best(numbers, higher=metric not in _LOWER_IS_BETTER)) if ranked else set()
    first = numbers[0]
    cells = []
    for index, (text, number) in enumerate(zip(texts, numbers, strict=True)):
        delta = None
        if index and scored and number is not None and first is not None and f"{number - first:+.3f}" not in (
            "+0.000", "-0.000"
        ):
            delta = f"{number - first:+.3f}"
        cells.append({"text": text, "best": index in best, "delta": delta})
    return cells


def _best(values: list[float | None], higher: bool) -> list[int]:
    """The positions of the best of `values` (None skipped); none when they are all equal."""
    known = {i: round(v, 6) for i, v in enumerate(values) if v is not None}
    if len(set(known.values())) < 2:
        return []
    top = max(known.values()) if higher else min(known.values())
    return [i for i, v in known.items() if v == top]


def write_compare(paths: Sequence[str | Path], output: str | Path) -> Path:
    """Write the comparison page of `paths` to `output` (an .html file)."""
    target = Path(output)
    write_atomic(target, compare_html(paths))
    return target


@dataclass(frozen=True)
class RunStatus:
    """How training ended, for a banner: `kind` is completed, early or interrupted;
    `best_epoch` is the epoch whose weights the run kept (None when it did not choose one)."""

    kind: str
    epochs_done: int
    epochs_planned: int
    reason: str
    best_epoch: int | None = None

    @property
    def message(self) -> str:
        if self.kind == "interrupted":
            ended = f"Interrupted after {self.epochs_done} of {self.epochs_planned} epochs"
        elif self.kind == "early":
            ended = f"Stopped early after {self.epochs_done} of {self.epochs_planned} epochs"
        else:
            ended = f"Completed {self.epochs_done} of {self.epochs_planned} epochs"
        return ended if self.best_epoch is None else f"{ended}; best: epoch {self.best_epoch}"


def run_status(config: dict[str, Any], history: pd.DataFrame) -> RunStatus:
    """Read how training ended from what the run recorded (config's training.stop_reason)."""
    training = config.get("training") or {}
    reason = str(training.get("stop_reason") or "completed")
    done = len(history)
    train = config.get("train") or {}
    planned = int(train.get("epochs") or 0)
    examples = int(train.get("examples") or 0)
    train_size = int((config.get("split") or {}).get("sizes", {}).get("train") or 0)
    if examples and train_size:
        planned = math.ceil(examples / train_size)
    recorded = training.get("epochs_planned")  # recorded by runs since issue 17
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        planned = recorded
    planned = max(planned, done)
    # Patience running out on the last epoch is no early stop (runs before issue 23 said so).
    kind = "interrupted" if training.get("interrupted") or reason.startswith("interrupted") else (
        "early" if reason.startswith("early stop") and done < planned else "completed"
    )
    best = training.get("best_epoch")
    best = best if isinstance(best, int) and not isinstance(best, bool) and 1 <= best <= done else None
    return RunStatus(kind, done, planned, reason, best)


def majority_baseline(per_class: pd.DataFrame) -> dict[str, Any] | None:
    """The accuracy of always answering the most common class of the test texts: the score
    accuracy has to beat to mean anything (52% for names, whose test texts are mostly Russian)."""
    support = pd.to_numeric(per_class["support"], errors="coerce").fillna(0)
    total = float(support.sum())
    if total <= 0:
        return None
    return {"class": str(support.idxmax()), "accuracy": float(support.max()) / total}


#: Trainer settings that make its training loss more than the plain cross-entropy that the
#: validation loss is, with how the report names them.
_TRAINING_LOSS_TERMS = {"label_smoothing": "label smoothing", "class_weights": "class weights",
                        "logit_adjust": "logit adjustment"}


def training_loss_terms(config: dict[str, Any]) -> list[str]:
    """What the run's training loss adds to plain cross-entropy ("label smoothing 0.1"...).

    The training loss is the mean of the batches' losses as trained, with these terms; the
    validation loss is plain cross-entropy, so with any of them the two are not like with like."""
    train = config.get("train") or {}
    terms = []
    for key, words in _TRAINING_LOSS_TERMS.items():
        value = train.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            terms.append(f"{words} {_value(value)}")
    return terms


def loss_note(config: dict[str, Any]) -> str | None:
    """Why the run's training and validation loss are not like with like, or None."""
    terms = training_loss_terms(config)
    if not terms:
        return None
    return (f"the training loss includes {', '.join(terms)}; the validation loss is plain "
            "cross-entropy, so compare the curves' shapes, not their heights")


def settings_tables(config: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The run's settings as small tables, one row per parameter."""
    tables = []
    for kind in ("dataset", "encoder", "model"):
        part = config.get(kind) or {}
        owner = f"{part.get('plugin', '?')} ({part.get('distribution', '?')} {part.get('version', '?')})"
        rows = [(kind, _value(part.get("name"))), ("plugin", owner)]
        rows += [(k, _value(v)) for k, v in (part.get("params") or {}).items()]
        tables.append((kind.capitalize(), rows))
    split = {k: v for k, v in (config.get("split") or {}).items() if k != "sizes"}
    tables.append(("Split", [(k, _setting("split", k, v)) for k, v in split.items()]))
    train = config.get("train") or {}
    tables.append(("Training", [(k, _setting("train", k, v)) for k, v in train.items()]))
    training = config.get("training") or {}
    run_rows = [
        ("seed", _value(config.get("seed"))), ("device", _value(config.get("device"))),
        ("training time", f"{float(training.get('seconds') or 0):,.1f} s"),
        ("best epoch", _value(training.get("best_epoch"))), ("ended", _value(training.get("stop_reason"))),
    ]
    tables.append(("Run", run_rows))
    tables.append(("Data", [(k, _provenance(v)) for k, v in (config.get("provenance") or {}).items()]))
    return tables


def _setting(group: str, name: str, value: Any) -> str:
    """A trainer or split setting; a 0 that switches something off (or to automatic) says so."""
    zero = _zero_meanings(group).get(name)
    if zero and isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return f"{_value(value)} ({zero})"
    return _value(value)


def _zero_meanings(group: str) -> dict[str, str]:
    from toolkit.splits import SPLIT_PARAMS
    from toolkit.train_config import TRAIN_PARAMS

    params = {"train": TRAIN_PARAMS, "split": SPLIT_PARAMS}[group]
    return {p.name: p.zero for p in params if p.zero}


def _provenance(value: Any) -> str:
    """A provenance entry; long mappings (checksums, counts per file) are summarised."""
    if isinstance(value, dict) and len(value) > 4:
        return f"{len(value):,} entries (see config.json)"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _value(value)


def class_rows(per_class: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per class for the chart, best F1 first (classes without an F1 last)."""
    rows = []
    for name, row in per_class.iterrows():
        rows.append({
            "name": str(name), "support": int(row["support"]), "correct": int(row["correct"]),
            "accuracy": _number(row["accuracy"]), "precision": _number(row["precision"]),
            "f1": _number(row["f1"]),
            "confused_with": None if pd.isna(row.get("confused_with")) else str(row["confused_with"]),
            "confused_count": int(row.get("confused_count") or 0),
        })
    return sorted(rows, key=lambda r: (r["f1"] is None, -(r["f1"] or 0.0), -(r["accuracy"] or 0.0),
                                       r["name"]))


def confused_pairs(confusion: pd.DataFrame, mistakes: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The most frequent (true, predicted) mistakes, with example texts where the run kept some."""
    counts = confusion.to_numpy()
    totals = counts.sum(axis=1)
    pairs = [
        (int(counts[i, j]), str(confusion.index[i]), str(confusion.columns[j]), int(totals[i]))
        for i in range(counts.shape[0]) for j in range(counts.shape[1]) if i != j and counts[i, j] > 0
    ]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    examples: dict[tuple[str, str], list[str]] = {}
    if mistakes is not None:
        for true, predicted, text in mistakes[["true", "predicted", "text"]].itertuples(index=False):
            found = examples.setdefault((str(true), str(predicted)), [])
            if len(found) < EXAMPLES_PER_PAIR:
                found.append(str(text))
    return [
        {"true": t, "predicted": p, "count": n, "share": n / total if total else 0.0,
         "examples": examples.get((t, p), [])}
        for n, t, p, total in pairs[:TOP_PAIRS]
    ]


def _summary_rows(summary: pd.DataFrame) -> list[tuple[str, str]]:
    return [(str(k).replace("_", " "), _metric(str(k), v)) for k, v in summary["value"].items()]


def _metric(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if name in _INTEGER_METRICS:
        return f"{int(round(float(value))):,}"
    return f"{float(value):.3f}"


def _history_rows(history: pd.DataFrame) -> list[list[str]]:
    def cell(column: str, value: Any) -> str:
        if pd.isna(value):
            return "–"
        if column in ("epoch", "examples"):
            return f"{int(value):,}"
        if column == "names_per_sec":
            return f"{float(value):,.0f}"
        if column == "seconds":
            return f"{float(value):,.1f}"
        if column == "lr":
            return f"{float(value):.3g}"
        return f"{float(value):.3f}"

    return [[cell(c, v) for c, v in row.items()] for _, row in history.iterrows()]


def _flat_settings(config: dict[str, Any]) -> dict[str, str]:
    flat = {"dataset": str(config["dataset"]["name"]), "model": str(config["model"]["name"]),
            "encoder": str(config.get("encoder", {}).get("name")), "seed": _value(config.get("seed"))}
    for kind in ("dataset", "encoder", "model"):
        flat.update({f"{kind}.{k}": _value(v) for k, v in (config.get(kind, {}).get("params") or {}).items()})
    split = {k: v for k, v in (config.get("split") or {}).items() if k != "sizes"}
    flat.update({f"split.{k}": _setting("split", k, v) for k, v in split.items()})
    flat.update({f"train.{k}": _setting("train", k, v) for k, v in (config.get("train") or {}).items()})
    return flat


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _value(value: Any) -> str:
    """A parameter value as a person would type it."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value if value else '"" (empty)'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool | int):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _template(name: str) -> jinja2.Template:
    from toolkit.templating import environment

    return environment().get_template(name)

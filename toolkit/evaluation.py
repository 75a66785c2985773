"""Evaluation: how good a classifier is, per class and overall, as pandas DataFrames.

The numbers come from scikit-learn's metrics. Undefined per-class values (the recall of a
class absent from the data, the precision of a class never predicted) are NaN, not 0.
Overall macro and weighted F1 average over the classes present in the truth or the
predictions (scikit-learn's default), so an absent class does not drag the average down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from toolkit.errors import ToolkitError
from toolkit.types import TextDataset

TOP_K = 3


class Classifier(Protocol):
    """Anything that gives class probabilities for texts: a run's result or a loaded run."""

    classes: tuple[str, ...]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Report:
    """`summary`: one row per overall metric. `per_class`: one row per class.
    `confusion`: counts, rows are true classes and columns predicted ones.
    `confusion_normalized`: each row divided by its total (rows of absent classes are 0)."""

    summary: pd.DataFrame
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    confusion_normalized: pd.DataFrame

    def metrics(self) -> dict[str, Any]:
        """JSON-ready overall metrics and per-class rows."""
        per_class = self.per_class.astype(object).where(self.per_class.notna(), None)
        return {
            "summary": {k: float(v) for k, v in self.summary["value"].items()},
            "per_class": per_class.to_dict(orient="index"),
        }


def evaluate_predictions(
    y_true: Sequence[int] | np.ndarray, probabilities: np.ndarray, classes: Sequence[str]
) -> Report:
    """Evaluate class probabilities (n, classes) against true class indices (n,)."""
    truth = np.asarray(y_true, dtype=np.int64)
    scores = np.asarray(probabilities, dtype=np.float64)
    names = list(classes)
    labels = list(range(len(names)))
    if scores.ndim != 2 or scores.shape != (len(truth), len(names)):
        raise ToolkitError(
            f"expected probabilities of shape ({len(truth)}, {len(names)}); got {scores.shape}."
        )
    if not len(truth):
        raise ToolkitError("nothing to evaluate: the data is empty.")
    # float32 softmax rows sum to 1 only approximately; log_loss wants them exact.
    scores = np.clip(scores, 1e-12, 1.0)
    scores /= scores.sum(axis=1, keepdims=True)
    predicted = scores.argmax(axis=1)
    k = min(TOP_K, len(names) - 1) or 1
    counts = confusion_matrix(truth, predicted, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=np.nan
    )
    errors = counts.copy()
    np.fill_diagonal(errors, 0)
    per_class = pd.DataFrame({
        "support": support,
        "correct": np.diag(counts),
        "accuracy": recall,
        "precision": precision,
        "f1": f1,
        f"top{k}_accuracy": [_top_k(truth, scores, k, labels, c) for c in labels],
        "confused_with": [names[row.argmax()] if row.any() else None for row in errors],
        "confused_count": errors.max(axis=1),
    }, index=pd.Index(names, name="class"))
    summary = pd.DataFrame({"value": {
        "accuracy": accuracy_score(truth, predicted),
        "macro_f1": f1_score(truth, predicted, average="macro", zero_division=0),
        "weighted_f1": f1_score(truth, predicted, average="weighted", zero_division=0),
        f"top{k}_accuracy": _top_k_score(truth, scores, k, labels),
        "log_loss": log_loss(truth, scores, labels=labels),
        "examples": float(len(truth)),
    }})
    summary.index.name = "metric"
    index = pd.Index(names, name="true")
    columns = pd.Index(names, name="predicted")
    confusion = pd.DataFrame(counts, index=index, columns=columns)
    totals = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    return Report(summary, per_class, confusion, pd.DataFrame(normalized, index=index, columns=columns))


def with_summary_rows(report: Report, evaluation: dict[str, Any]) -> Report:
    """`report` with the calibration numbers a summary shows (ECE after calibration, the 0.9
    prediction sets' mean size and coverage: `toolkit.calibration.summary_rows`) added to its
    overall metrics, so the report's cards and `toolkit compare` show them."""
    from toolkit.calibration import summary_rows

    extra = pd.DataFrame({"value": summary_rows(evaluation)})
    summary = pd.concat([report.summary, extra])
    summary.index.name = "metric"
    return Report(summary, report.per_class, report.confusion, report.confusion_normalized)


def _top_k(truth: np.ndarray, scores: np.ndarray, k: int, labels: list[int], target: int) -> float:
    rows = truth == target
    if not rows.any():
        return float("nan")
    return _top_k_score(truth[rows], scores[rows], k, labels)


def _top_k_score(truth: np.ndarray, scores: np.ndarray, k: int, labels: list[int]) -> float:
    # With two classes scikit-learn treats the task as binary and wants the positive class's
    # scores as one column; with more it wants them all.
    scores = scores[:, 1] if len(labels) == 2 else scores
    return float(top_k_accuracy_score(truth, scores, k=k, labels=labels))


def evaluate(classifier: Classifier, data: TextDataset) -> Report:
    """Evaluate a trained classifier (a run's result, or a loaded run) on labelled texts."""
    known = {name: i for i, name in enumerate(classifier.classes)}
    unknown = sorted(set(data.classes) - set(known))
    if unknown:
        raise ToolkitError(
            f"the data has classes the model does not know: {', '.join(unknown[:5])}; "
            "evaluate on data with the model's classes."
        )
    truth = [known[name] for name in data.labels()]
    return evaluate_predictions(truth, classifier.predict_proba(data.texts), classifier.classes)


#: Bounds on the example mistakes a run keeps: a few per confused pair, the most frequent
#: pairs first, and never more than MISTAKES_MAX rows in all.
MISTAKES_PER_PAIR = 5
MISTAKES_MAX = 2000


def confused_examples(
    texts: Sequence[str], y_true: Sequence[int] | np.ndarray, probabilities: np.ndarray,
    classes: Sequence[str], per_pair: int = MISTAKES_PER_PAIR, limit: int = MISTAKES_MAX,
) -> pd.DataFrame:
    """Example mistakes: up to `per_pair` texts for each (true, predicted) pair the model
    confused, the most confidently wrong first, the most frequent pairs first, at most `limit`
    rows. Columns: true, predicted, text, probability (of the predicted class)."""
    truth = np.asarray(y_true, dtype=np.int64)
    scores = np.asarray(probabilities, dtype=np.float64)
    predicted = scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=np.int64)
    wrong = np.flatnonzero(predicted != truth)
    frame = pd.DataFrame({
        "true": [classes[i] for i in truth[wrong]],
        "predicted": [classes[i] for i in predicted[wrong]],
        "text": [texts[i] for i in wrong],
        "probability": scores[wrong, predicted[wrong]] if len(wrong) else np.zeros(0),
    })
    if frame.empty:
        return frame
    pair_size = frame.groupby(["true", "predicted"])["text"].transform("size")
    frame = (
        frame.assign(pair_size=pair_size)
        .sort_values(["pair_size", "true", "predicted", "probability"], ascending=[False, True, True, False],
                     kind="stable")
        .groupby(["true", "predicted"], sort=False).head(per_pair)
        .drop(columns="pair_size")
    )
    return frame.head(limit).reset_index(drop=True)

"""Multi-label decisions and scores: from per-class probabilities to label sets, and how good they are.

A multi-label model gives every class its own probability (a sigmoid of its logit). A class is
predicted when its probability reaches the run's threshold; the thresholds are chosen on the
validation split, never the test split (`choose_thresholds`): `auto` one global value that
maximises validation micro-F1, `per-class` each class's own F1-best value, or a fixed number.
A text always gets at least its most probable class unless `allow_empty` (`decide`).

`evaluate_label_sets` scores the decisions as scikit-learn does (micro, macro and samples F1,
subset accuracy, Hamming loss), per class too, and `label_errors` lists the most frequent wrong
extra and missing labels. `any_correct` scores a single-label model on data whose texts may
have several right answers (the names data): its top class is right when it is any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import ToolkitError
from toolkit.train_config import THRESHOLD_MODES

#: The thresholds `choose_thresholds` tries: every 0.01 from 0.01 to 0.99.
CANDIDATES = np.round(np.arange(0.01, 1.0, 0.01), 2)
#: Separates the labels of a set where it is written as one string (CSV cells, mistakes.csv).
SET_SEPARATOR = "|"


def multi_hot(label_sets: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """A (texts, classes) 0/1 matrix with a 1 for each of every text's classes."""
    hot = np.zeros((len(label_sets), num_classes), dtype=np.int8)
    for row, labels in enumerate(label_sets):
        hot[row, list(labels)] = 1
    return hot


def decide(
    probabilities: np.ndarray, thresholds: np.ndarray | float, allow_empty: bool = False
) -> np.ndarray:
    """The predicted label sets as a 0/1 matrix: every class whose probability reaches its
    threshold, and the most probable class of a text that would otherwise get none."""
    scores = np.asarray(probabilities, dtype=np.float64)
    chosen = (scores >= np.asarray(thresholds, dtype=np.float64)).astype(np.int8)
    if not allow_empty and len(scores):
        chosen[np.arange(len(scores)), scores.argmax(axis=1)] = 1
    return chosen


def _f1_counts(truth: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = (truth & chosen).sum(axis=0)
    return tp, (chosen & (1 - truth)).sum(axis=0), (truth & (1 - chosen)).sum(axis=0)


def choose_thresholds(
    probabilities: np.ndarray, truth: np.ndarray, mode: str, allow_empty: bool = False
) -> np.ndarray:
    """One threshold per class from validation `probabilities` and their multi-hot `truth`:
    `auto` the one value (among CANDIDATES) with the best micro-F1, `per-class` each class's
    best F1 (0.5 for a class validation never shows), or the number `mode` gives. Ties go to
    the value nearest 0.5."""
    num_classes = probabilities.shape[1]
    if mode not in THRESHOLD_MODES:
        return np.full(num_classes, float(mode))
    if not len(truth):
        return np.full(num_classes, 0.5)
    truth = truth.astype(np.int8)
    order = np.argsort(np.abs(CANDIDATES - 0.5), kind="stable")  # ties: nearest 0.5 wins
    candidates = CANDIDATES[order]
    if mode == "auto":
        scores = []
        for value in candidates:
            tp, fp, fn = _f1_counts(truth, decide(probabilities, value, allow_empty))
            scores.append(2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1))
        return np.full(num_classes, float(candidates[int(np.argmax(scores))]))
    thresholds = np.full(num_classes, 0.5)
    for c in range(num_classes):
        if not truth[:, c].any():
            continue
        predicted = probabilities[:, c][None, :] >= candidates[:, None]  # (candidates, texts)
        tp = (predicted & (truth[:, c] == 1)).sum(axis=1)
        f1 = 2 * tp / np.maximum(predicted.sum(axis=1) + truth[:, c].sum(), 1)
        thresholds[c] = float(candidates[int(np.argmax(f1))])
    return thresholds


def summary_values(truth: np.ndarray, chosen: np.ndarray) -> dict[str, float]:
    """The overall scores of predicted label sets against the true ones (both multi-hot)."""
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    return {
        "micro_f1": float(f1_score(truth, chosen, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(truth, chosen, average="macro", zero_division=0)),
        "samples_f1": float(f1_score(truth, chosen, average="samples", zero_division=0)),
        "subset_accuracy": float(accuracy_score(truth, chosen)),
        "hamming_loss": float(hamming_loss(truth, chosen)),
        "label_cardinality_true": float(truth.sum(axis=1).mean()),
        "label_cardinality_predicted": float(chosen.sum(axis=1).mean()),
        "examples": float(len(truth)),
    }


def per_class_table(truth: np.ndarray, chosen: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Per class: support, correct (true positives), precision, recall (also as `accuracy`, the
    column single-label reports read), F1, and the wrong `extra` and `missing` decisions.
    Undefined values are NaN, as in the single-label report."""
    tp, fp, fn = _f1_counts(truth.astype(np.int8), chosen.astype(np.int8))
    support = truth.sum(axis=0)
    predicted = chosen.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), np.nan)
    return pd.DataFrame({
        "support": support, "correct": tp, "accuracy": recall, "precision": precision, "recall": recall,
        "f1": f1, "extra": fp, "missing": fn,
    }, index=pd.Index(list(classes), name="class"))


def co_occurrence(truth: np.ndarray, chosen: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Texts with true class r and predicted class c, for every (r, c): the multi-label
    confusion table (its diagonal holds the true positives)."""
    counts = truth.astype(np.int64).T @ chosen.astype(np.int64)
    return pd.DataFrame(counts, index=pd.Index(list(classes), name="true"),
                        columns=pd.Index(list(classes), name="predicted"))


def label_errors(
    truth: np.ndarray, chosen: np.ndarray, classes: Sequence[str], top: int = 10
) -> dict[str, Any]:
    """The classes most often predicted wrongly (`extra`) and most often missed (`missing`),
    each a list of {"class", "count"}, most first."""
    _, fp, fn = _f1_counts(truth.astype(np.int8), chosen.astype(np.int8))

    def ranked(counts: np.ndarray) -> list[dict[str, Any]]:
        order = sorted((c for c in range(len(classes)) if counts[c]), key=lambda c: (-counts[c], classes[c]))
        return [{"class": classes[c], "count": int(counts[c])} for c in order[:top]]

    return {"extra": ranked(fp), "missing": ranked(fn)}


def names_of(row: np.ndarray, classes: Sequence[str]) -> str:
    """A 0/1 row as its class names joined by SET_SEPARATOR."""
    return SET_SEPARATOR.join(classes[c] for c in np.flatnonzero(row))


def set_mistakes(texts: Sequence[str], truth: np.ndarray, chosen: np.ndarray, probabilities: np.ndarray,
                 classes: Sequence[str], limit: int) -> pd.DataFrame:
    """Test texts whose predicted set is not the true one, those with the most wrong labels
    first, at most `limit`: true, predicted, text, probability (of the top class), extra, missing."""
    wrong = np.flatnonzero((truth != chosen).any(axis=1))
    errors = (truth[wrong] != chosen[wrong]).sum(axis=1)
    wrong = wrong[np.argsort(-errors, kind="stable")][:limit]
    return pd.DataFrame({
        "true": [names_of(truth[i], classes) for i in wrong],
        "predicted": [names_of(chosen[i], classes) for i in wrong],
        "text": [texts[i] for i in wrong],
        "probability": [float(probabilities[i].max()) for i in wrong],
        "extra": [names_of(chosen[i] & (1 - truth[i]), classes) for i in wrong],
        "missing": [names_of(truth[i] & (1 - chosen[i]), classes) for i in wrong],
    }, columns=["true", "predicted", "text", "probability", "extra", "missing"])


def any_correct(
    texts: Sequence[str], targets: Sequence[int], predicted: np.ndarray, classes_of_text: dict[str, set[int]],
) -> dict[str, float]:
    """For a single-label model on data whose texts may have several right answers (a name
    under two languages is two rows): `any_correct_accuracy`, the share of test rows whose top
    class is one of their text's classes (`classes_of_text`, from all the data), and
    `accuracy_ceiling`, the best accuracy a model giving one class per text can reach on them."""
    if not len(texts):
        return {}
    hits = [int(p) in classes_of_text.get(text, set()) for text, p in zip(texts, predicted, strict=True)]
    counts: dict[str, dict[int, int]] = {}
    for text, target in zip(texts, targets, strict=True):
        per_class = counts.setdefault(text, {})
        per_class[int(target)] = per_class.get(int(target), 0) + 1
    best = sum(max(per_class.values()) for per_class in counts.values())
    return {"any_correct_accuracy": float(np.mean(hits)), "accuracy_ceiling": best / len(texts)}


def evaluate_label_sets(
    truth: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, classes: Sequence[str],
    allow_empty: bool = False,
) -> tuple[Any, np.ndarray]:
    """The `toolkit.evaluation.Report` of multi-label decisions (summary, per class, the
    true-by-predicted co-occurrence as its confusion table), and the decisions themselves."""
    from toolkit.evaluation import Report

    if probabilities.shape != truth.shape:
        raise ToolkitError(f"expected probabilities of shape {truth.shape}; got {probabilities.shape}.")
    if not len(truth):
        raise ToolkitError("nothing to evaluate: the data is empty.")
    chosen = decide(probabilities, thresholds, allow_empty)
    summary = pd.DataFrame({"value": summary_values(truth, chosen)})
    summary.index.name = "metric"
    confusion = co_occurrence(truth, chosen, classes)
    totals = confusion.sum(axis=1).replace(0, 1)
    return Report(summary, per_class_table(truth, chosen, classes), confusion,
                  confusion.div(totals, axis=0)), chosen


def threshold_record(
    mode: str, thresholds: np.ndarray, classes: Sequence[str], allow_empty: bool
) -> dict[str, Any]:
    """What a run records of its decision rule (config.json `multi_label`): the mode, one
    threshold per class, and whether a text may get no class."""
    return {"threshold": mode, "thresholds": {c: float(t) for c, t in zip(classes, thresholds, strict=True)},
            "allow_empty": allow_empty}


def label_set_cells(labels: Sequence[tuple[str, float]] | None) -> tuple[str, str]:
    """A prediction's label set as (label, probability) pairs (`Ranking.label_sets`) as two table
    cells: the labels joined by SET_SEPARATOR, and their probabilities in the same order."""
    chosen = labels or ()
    return (SET_SEPARATOR.join(label for label, _ in chosen),
            SET_SEPARATOR.join(f"{probability:.6f}" for _, probability in chosen))

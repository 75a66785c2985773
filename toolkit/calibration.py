"""Probabilities you can act on: temperature scaling, calibration error, abstention and
split conformal prediction sets (docs/calibration.md says what each number means).

Everything here works on class probabilities alone (numpy, no torch), so it is the same for
every model, ensembles and plugin models included:

- **Temperature scaling** divides the log-probabilities by one number T fitted on the
  validation split (lowest log loss) and renormalises: T > 1 softens over-confident
  probabilities, T < 1 sharpens timid ones; the most likely class never changes.
- **ECE** (expected calibration error): the texts are put in `BINS` equal-width bins by their
  top probability; ECE is the bins' average gap between that confidence and the accuracy,
  weighted by the share of texts in the bin.
- **Abstention**: answer only when the top probability is at least P.
- **Prediction sets** (split conformal, the LAC score 1 - p(true class)): from the scores of
  `n` texts the model never saw, neither to fit it nor to choose its epoch, the threshold is
  their ceil((n + 1) c)-th smallest; a text's set holds every class with 1 - p <= threshold
  (and always the most likely one). When those texts and the new ones are exchangeable, the
  set holds the true class with probability at least c.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.train_config import CALIBRATION_METHODS as METHODS

#: Equal-width confidence bins of the ECE and the reliability diagram.
BINS = 15
#: Coverages of the prediction sets measured on the test split (metrics.json `conformal`).
COVERAGES = (0.8, 0.9, 0.95)
#: Accuracies the abstention table looks for ("to be right 95% of the time...").
ACCURACY_TARGETS = (0.8, 0.9, 0.95, 0.99)
#: Temperatures searched (log-uniformly, then refined): far beyond what a trained model needs.
TEMPERATURE_RANGE = (0.05, 20.0)
#: The smallest probability whose logarithm is taken (a zero would be minus infinity).
FLOOR = 1e-12


def check_coverage(value: float | None) -> None:
    """Refuse a prediction-set coverage outside (0, 1) with one line."""
    if value is not None and not (isinstance(value, int | float) and 0 < value < 1):
        raise ToolkitError(f"coverage must be between 0 and 1 (exclusive), e.g. 0.9; got {value}.")


def check_min_confidence(value: float | None) -> None:
    """Refuse a minimum confidence outside [0, 1] with one line."""
    if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
        raise ToolkitError(f"min confidence must be between 0 and 1, e.g. 0.6; got {value}.")


def with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """`probabilities` (n, classes) with their log-probabilities divided by `temperature`."""
    scores = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0 or not scores.size:
        return scores
    logits = np.log(np.clip(scores, FLOOR, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def log_loss(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-probability of the true class (natural logarithm)."""
    scores = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(targets, dtype=np.int64)
    return float(-np.log(np.clip(scores[np.arange(len(truth)), truth], FLOOR, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """The temperature with the lowest log loss on (`probabilities`, `targets`): the
    validation split's, never the test split's."""
    from scipy.optimize import minimize_scalar

    truth = np.asarray(targets, dtype=np.int64)
    if not len(truth):
        return 1.0
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    grid = np.linspace(low, high, 41)  # the loss need not be convex in log T: start from the best
    losses = [log_loss(with_temperature(probabilities, math.exp(g)), truth) for g in grid]
    best = int(np.argmin(losses))
    bracket = (grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)])
    found = minimize_scalar(
        lambda g: log_loss(with_temperature(probabilities, math.exp(g)), truth),
        bounds=bracket, method="bounded", options={"xatol": 1e-4},
    )
    chosen = found.x if found.fun <= losses[best] else grid[best]
    return float(math.exp(chosen))


def expected_calibration_error(
    probabilities: np.ndarray, targets: Sequence[int] | np.ndarray, bins: int = BINS
) -> float:
    """ECE over `bins` equal-width bins of the top probability: the sum over bins of
    (texts in the bin / all texts) * |accuracy in the bin - mean top probability in the bin|.
    A top probability of exactly 1 falls in the last bin, one on an inner edge in the bin above."""
    table = reliability_table(probabilities, targets, bins)
    total = sum(row["count"] for row in table)
    if not total:
        return math.nan
    return float(sum(row["count"] / total * abs(row["accuracy"] - row["confidence"])
                     for row in table if row["count"]))


def reliability_table(
    probabilities: np.ndarray, targets: Sequence[int] | np.ndarray, bins: int = BINS
) -> list[dict[str, Any]]:
    """Per confidence bin: its edges, how many texts, their mean top probability and accuracy
    (NaN for an empty bin): what the reliability diagram draws."""
    scores = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(targets, dtype=np.int64)
    confidence = scores.max(axis=1) if len(scores) else np.zeros(0)
    correct = scores.argmax(axis=1) == truth if len(scores) else np.zeros(0, dtype=bool)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        rows.append({
            "low": b / bins, "high": (b + 1) / bins, "count": count,
            "confidence": float(confidence[inside].mean()) if count else math.nan,
            "accuracy": float(correct[inside].mean()) if count else math.nan,
        })
    return rows


def brier_score(probabilities: np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """Mean over texts of the squared distance between the probabilities and the one-hot truth
    (summed over classes: 0 is perfect, 2 the worst)."""
    scores = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(targets, dtype=np.int64)
    onehot = np.zeros_like(scores)
    onehot[np.arange(len(truth)), truth] = 1.0
    return float(((scores - onehot) ** 2).sum(axis=1).mean())


def conformal_scores(probabilities: np.ndarray, targets: Sequence[int] | np.ndarray) -> np.ndarray:
    """The nonconformity score of each text: 1 - the probability of its true class."""
    scores = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(targets, dtype=np.int64)
    return 1.0 - scores[np.arange(len(truth)), truth]


def conformal_threshold(scores: np.ndarray, coverage: float) -> float:
    """The ceil((n + 1) * coverage)-th smallest of `n` calibration scores; above 1 (every class
    in every set) when there are too few scores for that coverage."""
    check_coverage(coverage)
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    rank = math.ceil((len(ordered) + 1) * coverage)
    return float(ordered[rank - 1]) if rank <= len(ordered) else math.inf


def prediction_sets(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Which classes are in each text's set (n, classes): those with 1 - p <= threshold, and
    always the most likely one (never an empty set; it only adds coverage)."""
    scores = np.asarray(probabilities, dtype=np.float64)
    inside = 1.0 - scores <= threshold
    if len(scores):
        inside[np.arange(len(scores)), scores.argmax(axis=1)] = True
    return inside


@dataclass(frozen=True)
class Calibration:
    """What a run learned after training to make its probabilities usable: the temperature
    (1.0 with method "none") and the calibration texts' conformal scores, sorted (empty when
    the run had none). `source` names the split the scores came from."""

    method: str = "none"
    temperature: float = 1.0
    scores: tuple[float, ...] = field(default=(), repr=False)
    source: str = ""

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        return with_temperature(probabilities, self.temperature)

    def threshold(self, coverage: float) -> float:
        if not self.scores:
            raise ToolkitError(
                "this run holds no conformal scores (it was trained before prediction sets "
                "existed); train it again to predict sets with a coverage."
            )
        return conformal_threshold(np.asarray(self.scores), coverage)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "temperature": self.temperature, "source": self.source,
                "scores": [round(s, 8) for s in self.scores]}

    @classmethod
    def from_json(cls, value: Any, where: str) -> Calibration:
        """Read back what `to_json` wrote, checking every value (a run folder may come from
        anyone); `where` names the file in the error."""
        ok = isinstance(value, Mapping) and value.get("method") in METHODS
        temperature = value.get("temperature") if ok else None
        scores = value.get("scores") if ok else None
        ok = ok and isinstance(temperature, int | float) and not isinstance(temperature, bool)
        ok = ok and TEMPERATURE_RANGE[0] / 2 <= temperature <= TEMPERATURE_RANGE[1] * 2
        ok = ok and isinstance(scores, list) and all(
            isinstance(s, int | float) and not isinstance(s, bool) and 0 <= s <= 1 for s in scores
        )
        if not ok:
            raise ToolkitError(f"'{where}' is malformed (expected a method, a temperature and scores).")
        return cls(value["method"], float(temperature), tuple(sorted(float(s) for s in scores)),
                   str(value.get("source", "")))


def fit_calibration(
    method: str, validation: tuple[np.ndarray, np.ndarray], held_out: tuple[np.ndarray, np.ndarray] | None,
) -> Calibration:
    """Fit the temperature on the `validation` (probabilities, targets) and take the conformal
    scores, with that temperature, from `held_out` (the calibration split, which neither
    trained the model nor chose its epoch); without one, from the validation split itself."""
    if method not in METHODS:
        raise ToolkitError(f"unknown calibration '{method}'; use one of {', '.join(METHODS)}.")
    val_probabilities, val_targets = validation
    temperature = fit_temperature(val_probabilities, val_targets) if method == "temperature" else 1.0
    has_held_out = held_out is not None and len(held_out[1]) > 0
    source = "calibration" if has_held_out else "validation"
    probabilities, targets = held_out if has_held_out and held_out is not None else validation
    scores = conformal_scores(with_temperature(probabilities, temperature), targets)
    return Calibration(method, temperature, tuple(sorted(float(s) for s in scores)), source)


def evaluate_calibration(
    calibration: Calibration, raw: np.ndarray, targets: Sequence[int] | np.ndarray
) -> dict[str, Any]:
    """metrics.json's `calibration`, `reliability`, `conformal` and `abstention` sections, from
    the test split's uncalibrated probabilities `raw` and true classes."""
    truth = np.asarray(targets, dtype=np.int64)
    calibrated = calibration.apply(raw)
    result: dict[str, Any] = {
        "calibration": {
            "method": calibration.method, "temperature": calibration.temperature,
            "ece_before": expected_calibration_error(raw, truth),
            "ece_after": expected_calibration_error(calibrated, truth),
            "brier_before": brier_score(raw, truth), "brier_after": brier_score(calibrated, truth),
            "log_loss_before": log_loss(raw, truth), "log_loss_after": log_loss(calibrated, truth),
            "bins": BINS,
        },
        "reliability": {
            "before": reliability_table(raw, truth), "after": reliability_table(calibrated, truth),
        },
        "abstention": abstention(calibrated, truth),
    }
    if calibration.scores:
        result["conformal"] = {
            "source": calibration.source, "calibration_texts": len(calibration.scores),
            "levels": [conformal_level(calibration, calibrated, truth, c) for c in COVERAGES],
        }
    return result


def conformal_level(
    calibration: Calibration, probabilities: np.ndarray, truth: np.ndarray, coverage: float
) -> dict[str, Any]:
    """At one coverage: the threshold, the test split's empirical coverage, mean set size, and
    how many test texts got sets of each size (the report's histogram)."""
    threshold = calibration.threshold(coverage)
    inside = prediction_sets(probabilities, threshold)
    sizes = inside.sum(axis=1)
    return {
        "coverage": coverage, "threshold": threshold if math.isfinite(threshold) else None,
        "empirical_coverage": float(inside[np.arange(len(truth)), truth].mean()),
        "mean_set_size": float(sizes.mean()),
        "set_sizes": {str(size): int(count) for size, count in zip(*np.unique(sizes, return_counts=True),
                                                                   strict=True)},
        # per true class, in the classes' order: sets are larger, and coverage can be lower, for some
        "by_class": [_class_sets(inside, sizes, truth, c) for c in range(probabilities.shape[1])],
    }


def _class_sets(inside: np.ndarray, sizes: np.ndarray, truth: np.ndarray, target: int) -> dict[str, Any]:
    rows = truth == target
    if not rows.any():
        return {"texts": 0, "coverage": None, "mean_set_size": None}
    return {"texts": int(rows.sum()), "coverage": float(inside[rows, target].mean()),
            "mean_set_size": float(sizes[rows].mean())}


def abstention(probabilities: np.ndarray, truth: np.ndarray, points: int = 21) -> dict[str, Any]:
    """Accuracy against coverage when only texts with a top probability of at least P are
    answered: a curve (`points` coverages from 5% to 100%) and, per target accuracy, the
    largest coverage that reaches it and its P."""
    confidence = probabilities.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    correct = (probabilities.argmax(axis=1) == truth)[order]
    ranked = confidence[order]
    answered = np.arange(1, len(order) + 1)
    accuracy = np.cumsum(correct) / answered
    # Only cut between different confidences: P answers every text at least as confident.
    last_of_tie = np.append(ranked[1:] < ranked[:-1], True)
    curve = []
    for share in np.linspace(0.05, 1.0, points - 1):
        k = max(int(math.ceil(share * len(order))), 1) - 1
        k = int(np.flatnonzero(last_of_tie[k:])[0]) + k
        curve.append({"coverage": float((k + 1) / len(order)), "accuracy": float(accuracy[k]),
                      "min_confidence": float(ranked[k])})
    table = []
    for target in ACCURACY_TARGETS:
        reach = np.flatnonzero((accuracy >= target) & last_of_tie)
        if len(reach):
            k = int(reach[-1])
            table.append({"accuracy_target": target, "coverage": float((k + 1) / len(order)),
                          "accuracy": float(accuracy[k]), "min_confidence": float(ranked[k])})
        else:
            table.append({"accuracy_target": target, "coverage": 0.0, "accuracy": None,
                          "min_confidence": None})
    return {"curve": curve, "table": table}


def summary_rows(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The numbers a run's summary (and `toolkit compare`) shows: ECE after calibration and
    the mean set size and coverage of the 0.9 sets."""
    rows = {"ece": float(evaluation["calibration"]["ece_after"])}
    for level in evaluation.get("conformal", {}).get("levels", []):
        if level["coverage"] == 0.9:
            rows["set_size_90"] = level["mean_set_size"]
            rows["set_coverage_90"] = level["empirical_coverage"]
    return rows

"""The one prediction path's answer for a batch of texts, as arrays: no object per text or class;
and the `Prediction` objects (with their `Guess`es) a Python caller gets from it.

`Predictor.rank` gives a `Ranking`; everything that predicts reads it: `Predictor.predict`
(`predictions()`, the Python objects a caller gets), the server and `toolkit predict --json`
(`dicts()`), `toolkit predict --input` (`toolkit.prediction_csv`) and the batch engines
(`toolkit.batch`). The top classes are those a stable sort of each row of the probability matrix
puts first (numpy, no torch), so equal probabilities keep the class order, as they always did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The smallest probability whose logarithm is taken (0 would give -inf).
SMALLEST = 1e-300


@dataclass(frozen=True)
class Guess:
    """One candidate class for a text."""

    label: str
    probability: float

    @property
    def log_probability(self) -> float:
        return math.log(max(self.probability, SMALLEST))


@dataclass(frozen=True)
class Prediction:
    """The top classes for one text, most likely first; no guesses when nothing of the text is
    left after normalisation (an emoji under the tutorial's ASCII normalisation)."""

    text: str
    guesses: tuple[Guess, ...]
    #: Asked for a min_confidence: whether the top probability fell below it ("unknown").
    abstained: bool | None = None
    #: Asked for a coverage: the conformal prediction set, most likely first.
    set: tuple[Guess, ...] | None = None
    #: A multi-label run: the predicted label set (each class at or above its threshold), most
    #: likely first; `guesses` then hold each class's own probability.
    labels: tuple[Guess, ...] | None = None

    @property
    def label(self) -> str:
        """The top class; empty when there is none or the prediction abstained."""
        return self.guesses[0].label if self.guesses and not self.abstained else ""

    @property
    def probability(self) -> float:
        return self.guesses[0].probability if self.guesses else math.nan

    @property
    def label_set(self) -> str:
        """A multi-label run's predicted classes joined by `|` (else the top class)."""
        if self.labels is None:
            return self.label
        return "|".join(g.label for g in self.labels)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "input": self.text,
            "predictions": [
                {"label": g.label, "probability": g.probability, "log_probability": g.log_probability}
                for g in self.guesses
            ],
        }
        if self.abstained is not None:
            result["abstained"] = self.abstained
        if self.set is not None:
            result["set"] = [{"label": g.label, "probability": g.probability} for g in self.set]
        if self.labels is not None:
            result["labels"] = [{"label": g.label, "probability": g.probability} for g in self.labels]
        return result


@dataclass(frozen=True)
class Ranking:
    """The top classes of `texts`, most likely first. Rows of texts with nothing left after
    normalisation (`read` false) hold class 0 and NaN probabilities."""

    texts: Sequence[str]
    class_names: tuple[str, ...]
    #: (texts, top) class indices and their probabilities.
    classes: np.ndarray
    probabilities: np.ndarray
    #: (texts,) whether anything of the text was left to read.
    read: np.ndarray
    #: Asked for a min_confidence: (texts,) whether the text abstains (every unread one does).
    abstained: np.ndarray | None = None
    #: Asked for a coverage: (texts, classes) all classes by probability and their membership
    #: of the prediction set, and their probabilities (no member in unread rows).
    set_order: np.ndarray | None = None
    set_member: np.ndarray | None = None
    set_probabilities: np.ndarray | None = None
    #: A multi-label run: (texts, classes) all classes by probability, their membership of the
    #: predicted label set, and their probabilities (no member in unread rows).
    label_order: np.ndarray | None = None
    label_member: np.ndarray | None = None
    label_probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def answered(self) -> np.ndarray:
        """(texts,) rows with classes to show: read and not abstained."""
        return self.read if self.abstained is None else self.read & ~self.abstained

    @property
    def log_probabilities(self) -> np.ndarray:
        return np.log(np.maximum(self.probabilities, SMALLEST))

    def labels(self) -> np.ndarray:
        """(texts, top) the class names, as an object array."""
        return np.asarray(self.class_names, dtype=object)[self.classes]

    def sets(self) -> list[list[tuple[str, float]]]:
        """Each text's prediction set as (class, probability), most likely first (only with a
        coverage)."""
        assert self.set_order is not None and self.set_member is not None
        assert self.set_probabilities is not None
        return _members(self.class_names, self.set_order, self.set_probabilities, self.set_member)

    def label_sets(self) -> list[list[tuple[str, float]]]:
        """A multi-label run's predicted label set of each text as (class, probability), most
        likely first (empty for an unread text)."""
        assert self.label_order is not None and self.label_member is not None
        assert self.label_probabilities is not None
        return _members(self.class_names, self.label_order, self.label_probabilities, self.label_member)

    def predictions(self) -> list[Prediction]:
        """The `Prediction` objects `Predictor.predict` returns to a Python caller."""
        names = self.class_names
        abstained = [None] * len(self) if self.abstained is None else self.abstained.tolist()
        sets = [None] * len(self) if self.set_order is None else self.sets()
        chosen = [None] * len(self) if self.label_order is None else self.label_sets()
        rows = zip(self.texts, self.read.tolist(), self.classes.tolist(), self.probabilities.tolist(),
                   abstained, sets, chosen, strict=True)
        return [
            Prediction(
                text,
                tuple(Guess(names[j], p) for j, p in zip(top, chances, strict=True)) if read else (),
                abstains,
                None if members is None else tuple(Guess(label, p) for label, p in members),
                None if picked is None else tuple(Guess(label, p) for label, p in picked),
            )
            for text, read, top, chances, abstains, members, picked in rows
        ]

    def dicts(self) -> list[dict[str, Any]]:
        """Each text's answer as JSON holds it (`Prediction.to_dict`): the server's answer and
        `toolkit predict --json`'s lines."""
        labels = self.labels().tolist()
        probabilities = self.probabilities.tolist()
        # math.log, as Guess.log_probability: numpy's may differ in the last bit, and JSON shows it.
        logs = [[math.log(max(p, SMALLEST)) for p in row] for row in probabilities]
        abstained = None if self.abstained is None else self.abstained.tolist()
        sets = None if self.set_order is None else self.sets()
        chosen = None if self.label_order is None else self.label_sets()
        result = []
        for i, (text, read) in enumerate(zip(self.texts, self.read.tolist(), strict=True)):
            answer: dict[str, Any] = {"input": text, "predictions": [
                {"label": label, "probability": p, "log_probability": log}
                for label, p, log in zip(labels[i], probabilities[i], logs[i], strict=True)
            ] if read else []}
            if abstained is not None:
                answer["abstained"] = abstained[i]
            if sets is not None:
                answer["set"] = [{"label": label, "probability": p} for label, p in sets[i]]
            if chosen is not None:
                answer["labels"] = [{"label": label, "probability": p} for label, p in chosen[i]]
            result.append(answer)
        return result


def rank(
    texts: Sequence[str], class_names: tuple[str, ...], probabilities: np.ndarray, read: np.ndarray, top: int,
    min_confidence: float | None = None, threshold: float | None = None,
    class_thresholds: np.ndarray | None = None, allow_empty: bool = False,
) -> Ranking:
    """The `top` classes of the rows of `probabilities` (one per read text, in order), and with
    `min_confidence` who abstains, with a conformal `threshold` the prediction sets, with
    `class_thresholds` (a multi-label run) each text's label set (`toolkit.multilabel.decide`)."""
    count, top = len(texts), min(top, len(class_names))
    rows = np.flatnonzero(read)
    classes = np.zeros((count, top), dtype=np.int64)
    chosen = np.full((count, top), np.nan)
    classes[rows], chosen[rows] = _top(probabilities, top)
    abstained = None
    if min_confidence is not None:
        abstained = np.ones(count, dtype=bool)
        abstained[rows] = chosen[rows, 0] < min_confidence
    order = member = ordered = None
    if threshold is not None:
        from toolkit.calibration import prediction_sets

        order, member, ordered = _ordered_members(probabilities, prediction_sets(probabilities, threshold),
                                                  rows, count, len(class_names))
    labels = None
    if class_thresholds is not None:
        from toolkit.multilabel import decide

        labels = _ordered_members(probabilities, decide(probabilities, class_thresholds, allow_empty) > 0,
                                  rows, count, len(class_names))
    return Ranking(texts, class_names, classes, chosen, read, abstained, order, member, ordered,
                   *(labels or (None, None, None)))


def _ordered_members(
    probabilities: np.ndarray, inside: np.ndarray, rows: np.ndarray, count: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, width classes) each read row's classes by probability, their membership (`inside`,
    per read row) in that order, and their probabilities; unread rows hold no member."""
    order = np.zeros((count, width), dtype=np.int64)
    member = np.zeros((count, width), dtype=bool)
    ordered = np.zeros((count, width))
    ranks = np.argsort(-probabilities, axis=1, kind="stable")
    order[rows] = ranks
    member[rows] = np.take_along_axis(inside, ranks, axis=1)
    ordered[rows] = np.take_along_axis(probabilities, ranks, axis=1)
    return order, member, ordered


def _members(
    names: Sequence[str], order: np.ndarray, probabilities: np.ndarray, member: np.ndarray
) -> list[list[tuple[str, float]]]:
    return [[(names[j], p) for j, p, inside in zip(ranks, chances, members, strict=True) if inside]
            for ranks, chances, members in zip(order.tolist(), probabilities.tolist(), member.tolist(),
                                               strict=True)]


def _top(probabilities: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The `top` largest of each row and their columns, ties in column order: what a stable sort
    of each row, largest first, puts first."""
    count, width = probabilities.shape if probabilities.ndim == 2 else (0, 0)
    if not count:
        return np.zeros((0, top), dtype=np.int64), np.zeros((0, top))
    if 4 * top >= width:
        columns = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
        return columns, np.take_along_axis(probabilities, columns, axis=1)
    # A few of many: each the largest of what is left, whose first column argmax takes (a tie's).
    left, rows = probabilities.copy(), np.arange(count)
    columns, values = np.empty((count, top), dtype=np.int64), np.empty((count, top))
    for rank in range(top):
        columns[:, rank] = column = left.argmax(axis=1)
        values[:, rank] = left[rows, column]
        left[rows, column] = -np.inf  # probabilities are finite (checked)
    return columns, values

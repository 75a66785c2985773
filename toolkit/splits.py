"""Train/validation/test splits shared by every dataset.

- `leakage-free` (the default): duplicates within a class are collapsed, and every copy of a
  text, under whatever labels, goes to the same part, so no test or validation text is ever
  seen in training. Texts with one label are split per class (so rare classes keep their
  share); texts under several labels are assigned to a part as a unit, with the same odds.
- `stratified`: scikit-learn's `train_test_split` stratified by class, on the data as it is.
- `tutorial`: the tutorial's per-class split, 85/15 by default, on the data as it is.

Multi-label data (`TextDataset.label_sets`) is split by iterative stratification (Sechidis et
al. 2011, from the `iterative-stratification` package: `pip install -e '.[multilabel]'`), so
every label keeps its share in each part: `leakage-free` first merges every copy of a text
into one unit with all its labels, `stratified` splits the data as it is; `tutorial` splits per
first class. Any label that would be missing from training then gets one of its texts moved
there from validation (or else test), so the model learns every class.

The validation part is carved out of the training part (`val_size` of it) the same way, and
then the calibration part (`calibration_size` of what is left) by the same strategy: texts that
neither train the model nor choose its epoch, whose conformal scores make the prediction sets'
coverage guarantee hold (toolkit.calibration, docs/calibration.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.params import Config, Param, param_field, params_of
from toolkit.types import TextDataset

STRATEGIES = ("leakage-free", "stratified", "tutorial")

@dataclass(frozen=True)
class SplitConfig(Config):
    """How the data is split (`split.*`): each parameter declared once, here."""

    owner = "the split"

    strategy: str = param_field(
        "leakage-free",
        "How to split: leakage-free (duplicates collapsed, no test text seen in training), "
        "stratified (scikit-learn, per-class proportions), or tutorial (per-class 85/15).",
        choices=STRATEGIES,
    )
    test_size: float = param_field(0.15, "Fraction of the data held out for the test set.", above=0, below=1)
    val_size: float = param_field(
        0.1, "Fraction of the training part held out for validation.", above=0, below=1,
    )
    calibration_size: float = param_field(
        0.0, "Fraction of the training part (after validation) held out for conformal prediction "
        "sets: texts that neither train the model nor choose its epoch (0.1 for the guarantee).",
        min=0, below=1, zero="off: the sets are calibrated on validation (approximate coverage)",
    )


SPLIT_PARAMS: tuple[Param, ...] = params_of(SplitConfig)


@dataclass(frozen=True)
class Split:
    """A dataset cut into train, validation and test parts, and how it was cut."""

    train: TextDataset
    val: TextDataset
    test: TextDataset
    strategy: str
    seed: int
    calibration: TextDataset | None = None  # held out for conformal scores (split.calibration_size)

    def sizes(self) -> dict[str, int]:
        sizes = {"train": len(self.train), "val": len(self.val), "test": len(self.test)}
        if self.calibration is not None:
            sizes["calibration"] = len(self.calibration)
        return sizes


def split_dataset(
    data: TextDataset,
    strategy: str = SplitConfig.strategy,
    test_size: float = SplitConfig.test_size,
    val_size: float = SplitConfig.val_size,
    seed: int = 0,
    calibration_size: float = 0.0,
) -> Split:
    """Cut `data` reproducibly (same seed, same split) by `strategy` (see the module doc).
    A run carves a calibration part (`split.calibration_size`, declared in SplitConfig); a
    bare call carves none unless asked, so its train, validation and test parts are as before."""
    # checks each value against its declaration
    SplitConfig(strategy=strategy, test_size=test_size, val_size=val_size, calibration_size=calibration_size)
    train, val, test = (data.subset(sorted(indices)) for indices in _parts(data, strategy, test_size,
                                                                           val_size, seed))
    calibration = None
    if calibration_size:
        kept, _, held = _parts(train, strategy, calibration_size, 0.0, seed + 1)
        train, calibration = train.subset(sorted(kept)), train.subset(sorted(held))
    if not len(train) or not len(test):
        raise ToolkitError(
            f"the {strategy} split of {len(data)} texts left an empty train or test part; "
            "add data or change split.test_size."
        )
    return Split(train, val, test, strategy, seed, calibration)


def _parts(data: TextDataset, strategy: str, test_size: float, val_size: float, seed: int) -> Parts:
    if data.label_sets is not None and strategy != "tutorial":
        return _multi_label(data, strategy == "leakage-free", test_size, val_size, seed)
    if strategy == "leakage-free":
        return _leakage_free(data, test_size, val_size, seed)
    if strategy == "stratified":
        return _stratified(data, test_size, val_size, seed)
    return _per_class(data, range(len(data)), test_size, val_size, np.random.default_rng(seed))


Parts = tuple[list[int], list[int], list[int]]


def _cut(count: int, test_size: float, val_size: float) -> tuple[int, int]:
    """How many of `count` items go to test and to validation (train keeps at least one)."""
    n_test = min(int(round(count * test_size)), max(count - 1, 0))
    n_val = min(int(round((count - n_test) * val_size)), max(count - n_test - 1, 0))
    return n_test, n_val


def _per_class(
    data: TextDataset, indices, test_size: float, val_size: float, rng: np.random.Generator
) -> Parts:
    by_class: dict[int, list[int]] = defaultdict(list)
    for i in indices:
        by_class[data.targets[i]].append(i)
    train, val, test = [], [], []
    for target in sorted(by_class):
        members = list(rng.permutation(by_class[target]))
        n_test, n_val = _cut(len(members), test_size, val_size)
        test += members[:n_test]
        val += members[n_test:n_test + n_val]
        train += members[n_test + n_val:]
    return [int(i) for i in train], [int(i) for i in val], [int(i) for i in test]


def _leakage_free(data: TextDataset, test_size: float, val_size: float, seed: int) -> Parts:
    rng = np.random.default_rng(seed)
    first_of_pair: dict[tuple[str, int], int] = {}
    for i, pair in enumerate(zip(data.texts, data.targets, strict=True)):
        first_of_pair.setdefault(pair, i)
    labels_of_text: dict[str, list[int]] = defaultdict(list)
    for (text, _), i in first_of_pair.items():
        labels_of_text[text].append(i)
    single = [group[0] for group in labels_of_text.values() if len(group) == 1]
    train, val, test = _per_class(data, single, test_size, val_size, rng)
    shared = [group for group in labels_of_text.values() if len(group) > 1]
    draws = rng.random(len(shared))
    for group, draw in zip(shared, draws, strict=True):
        if draw < test_size:
            test += group
        elif draw < test_size + (1 - test_size) * val_size:
            val += group
        else:
            train += group
    return train, val, test


def _stratified(data: TextDataset, test_size: float, val_size: float, seed: int) -> Parts:
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(data))
    targets = np.asarray(data.targets)
    try:
        rest, test = train_test_split(
            indices, test_size=test_size, stratify=targets, random_state=seed
        )
        train, val = train_test_split(
            rest, test_size=val_size, stratify=targets[rest], random_state=seed
        ) if val_size else (rest, rest[:0])
    except ValueError as exc:
        raise ToolkitError(
            f"the stratified split failed ({exc}); use --param split.strategy=leakage-free "
            "or tutorial, which handle very small classes."
        ) from None
    return [int(i) for i in train], [int(i) for i in val], [int(i) for i in test]


def _multi_label(data: TextDataset, keep_texts_together: bool, test_size: float, val_size: float,
                 seed: int) -> Parts:
    """Iterative stratification of units (every copy of a text, with `keep_texts_together`;
    else each row), then every label present made present in training."""
    assert data.label_sets is not None
    units: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(data.texts):
        units[text if keep_texts_together else str(i)].append(i)
    groups = list(units.values())
    hot = np.zeros((len(groups), len(data.classes)), dtype=np.int8)
    for row, group in enumerate(groups):
        for i in group:
            hot[row, list(data.label_sets[i])] = 1
    rest, test = _stratified_cut(hot, np.arange(len(groups)), test_size, seed)
    train, val = _stratified_cut(hot, rest, val_size, seed)
    parts = _every_label_in_train(hot, [list(train), list(val), list(test)])
    return tuple([int(i) for unit in part for i in groups[unit]] for part in parts)  # type: ignore[return-value]


def _stratified_cut(
    hot: np.ndarray, units: np.ndarray, size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`units` cut in two, the second holding about `size` of them, by iterative stratification."""
    n_held = min(int(round(len(units) * size)), len(units) - 1)
    if n_held <= 0:
        return units, units[:0]
    try:
        from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
    except ImportError:
        raise ToolkitError(
            "splitting multi-label data needs the iterative-stratification package; "
            "pip install -e '.[multilabel]'."
        ) from None
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_held, random_state=seed)
    kept, held = next(splitter.split(np.zeros(len(units)), hot[units]))
    return units[np.sort(kept)], units[np.sort(held)]


def _every_label_in_train(hot: np.ndarray, parts: list[list[int]]) -> list[list[int]]:
    """Move, for each label the units carry but training lacks, one unit carrying it from
    validation (else test) into training."""
    train, val, test = parts
    for label in np.flatnonzero(hot.any(axis=0)):
        if hot[train, label].any():
            continue
        for source in (val, test):
            carriers = [unit for unit in source if hot[unit, label]]
            if carriers:
                source.remove(carriers[0])
                train.append(carriers[0])
                break
    return [train, val, test]

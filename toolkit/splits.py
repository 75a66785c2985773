"""Train/validation/test splits shared by every dataset."""

from __future__ import annotations

from toolkit.params import Param

SPLIT_PARAMS: tuple[Param, ...] = (
    Param(
        "strategy", str, "leakage-free",
        "How to split: leakage-free (duplicates collapsed, no test text seen in training), "
        "stratified (scikit-learn, per-class proportions), or tutorial (per-class 85/15).",
        choices=("leakage-free", "stratified", "tutorial"),
    ),
    Param("test_size", float, 0.15, "Fraction of the data held out for the test set."),
    Param("val_size", float, 0.1, "Fraction of the training part held out for validation."),
)

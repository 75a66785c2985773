"""Train/validation/test splits shared by every dataset."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.params import Param
from toolkit.types import TextDataset

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


@dataclass(frozen=True)
class Split:
    """A dataset cut into train, validation and test parts, and how it was cut."""

    train: TextDataset
    val: TextDataset
    test: TextDataset
    strategy: str
    seed: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_dataset(
    data: TextDataset,
    strategy: str = "leakage-free",
    test_size: float = 0.15,
    val_size: float = 0.1,
    seed: int = 0,
) -> Split:
    """Cut `data` reproducibly (same seed, same split) by `strategy` (see SPLIT_PARAMS)."""
    raise NotImplementedError("implemented by the names/splits issue")

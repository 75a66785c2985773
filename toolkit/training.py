"""The trainer: mini-batches, optimisers, early stopping, progress."""

from __future__ import annotations

from toolkit.params import Param

TRAIN_PARAMS: tuple[Param, ...] = (
    Param("epochs", int, 10, "Passes over the training data."),
    Param("batch_size", int, 64, "Names per mini-batch."),
    Param("lr", float, 0.005, "Learning rate."),
    Param("optimizer", str, "adam", "Optimiser.", choices=("adam", "sgd")),
)

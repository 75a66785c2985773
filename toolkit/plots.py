"""Plots for a run, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

#: The confusion plot grows with the classes up to this many inches (4,000 pixels) a side.
MAX_INCHES = 40.0


def plot_loss(
    history: pd.DataFrame, path: Path | IO[bytes], training_label: str = "training"
) -> Path | IO[bytes]:
    """Training loss, and validation loss where there is one, per epoch. `training_label`
    names the training curve, and says so when its loss is not the plain cross-entropy the
    validation loss is (label smoothing...)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(history["epoch"], history["train_loss"], marker="o", label=training_label)
    if "val_loss" in history and history["val_loss"].notna().any():
        ax.plot(history["epoch"], history["val_loss"], marker="o", label="validation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("Loss per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    return _saved(fig, path)


def plot_confusion(normalized: pd.DataFrame, path: Path | IO[bytes]) -> Path | IO[bytes]:
    """The row-normalised confusion matrix, every class labelled on both axes."""
    size = min(MAX_INCHES, max(5.0, 0.45 * len(normalized) + 2.5))
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    image = ax.imshow(normalized.to_numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = range(len(normalized))
    ax.set_xticks(ticks, labels=list(normalized.columns), rotation=90)
    ax.set_yticks(ticks, labels=list(normalized.index))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (each row sums to 1)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _saved(fig, path)


def plot_losses(histories: dict[str, pd.DataFrame]) -> bytes:
    """Several runs' loss curves on one plot (validation loss where a run has it, else
    training loss), as PNG bytes."""
    import io

    fig, ax = plt.subplots(figsize=(7.2, 4.2), dpi=100)
    for name, history in histories.items():
        has_val = "val_loss" in history and history["val_loss"].notna().any()
        column = "val_loss" if has_val else "train_loss"
        ax.plot(history["epoch"], history[column], marker="o",
                label=f"{name} ({'validation' if has_val else 'training'})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("Loss per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def plot_reliability(
    reliability: dict[str, list[dict[str, float]]], path: Path | IO[bytes]
) -> Path | IO[bytes]:
    """The reliability diagram: per confidence bin, accuracy against mean top probability,
    before and after calibration, with the diagonal a calibrated model follows."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=100)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="calibrated")
    for name, marker in (("before", "o"), ("after", "s")):
        rows = [r for r in reliability.get(name, []) if r.get("count")]
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker=marker,
                label=f"{name} calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean top probability in the bin")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title("Reliability on the test split")
    ax.grid(alpha=0.3)
    ax.legend()
    return _saved(fig, path)


def plot_abstention(curve: list[dict[str, float]], path: Path | IO[bytes]) -> Path | IO[bytes]:
    """Accuracy on the texts answered against the share answered (abstaining below a minimum
    top probability)."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=100)
    ax.plot([c["coverage"] for c in curve], [c["accuracy"] for c in curve], marker="o")
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("share of test texts answered (coverage)")
    ax.set_ylabel("accuracy on the answered texts")
    ax.set_title("Accuracy against coverage")
    ax.grid(alpha=0.3)
    return _saved(fig, path)


def _saved(fig: Figure, path: Path | IO[bytes]) -> Path | IO[bytes]:
    """Lay out `fig`, write it to `path` as PNG and free it."""
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path

"""Inference: which device to run on, and class probabilities for many texts in batches.

`predict_proba(model, encoder, texts)` is the one forward pass used everywhere a trained model
meets texts: the test split at the end of a run, `RunResult.predict_proba` and a loaded run's
`Predictor`. It sorts the texts by length, so each batch needs little padding, and returns the
rows in the order of `texts`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from toolkit.errors import ToolkitError
from toolkit.types import Encoder

#: Names per batch when predicting; large, because no gradients are kept.
PREDICT_BATCH = 1024


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to `count` inside the block, and put back after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; naming an unavailable device is a user error."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if name == "auto":
        return torch.device(next(dev for dev in ("cuda", "mps", "cpu") if available[dev]))
    if name not in available:
        raise ToolkitError(f"unknown device '{name}'; use one of auto, cpu, cuda, mps.")
    if not available[name]:
        raise ToolkitError(f"device '{name}' is not available on this machine; use --device auto or cpu.")
    return torch.device(name)


def predict_proba(
    model: nn.Module, encoder: Encoder, texts: Sequence[str], device: str | torch.device = "cpu",
    multi_label: bool = False,
) -> np.ndarray:
    """Class probabilities, shape (len(texts), classes), in the order of `texts`: a softmax
    over the classes, or with `multi_label` each class's own sigmoid probability."""
    target = device if isinstance(device, torch.device) else resolve_device(device)
    model.to(target).eval()
    indices, lengths = encoder.encode(list(texts))
    order = torch.argsort(lengths)  # batches of similar length need little padding
    probabilities = []
    with torch.inference_mode():
        for start in range(0, len(texts), PREDICT_BATCH):
            rows = order[start:start + PREDICT_BATCH]
            batch_lengths = lengths[rows]
            x = indices[rows, : int(batch_lengths.max())]
            logits = model(x.to(target), batch_lengths.to(target))
            if multi_label:
                probabilities.append(torch.sigmoid(logits.double()).cpu())
            else:
                probabilities.append(torch.softmax(logits.double(), dim=1).cpu())  # sums to 1 exactly
    if not probabilities:
        return np.zeros((0, 0))
    result = torch.empty(len(texts), probabilities[0].shape[1], dtype=torch.float64)
    result[order] = torch.cat(probabilities)
    return result.numpy()

"""Model inputs computed once per dataset, for models whose first stage reads only the text.

A model may offer two optional methods beside `forward(indices, lengths)`:

- `precompute(indices, lengths)` returns a tuple of tensors with one row per text, each row's
  values left-aligned and followed by `toolkit.PAD` (0) only: what `forward` would derive
  from the texts before any learned weight is used (`ngram`: the hashed n-gram ids);
- `forward_precomputed(*tensors)` returns the same logits as `forward` for those rows.

The trainer then computes them once for the training and validation texts, instead of once
per batch in every epoch, and cuts each batch from them (trimmed to its longest row). A split
is precomputed only while it fits in PRECOMPUTE_BYTES and a quarter of the available memory;
otherwise, and with several ranks (DistributedDataParallel wraps `forward` alone), the
trainer calls `forward`.
"""

from __future__ import annotations

import torch
from torch import nn

from toolkit.limits import available_memory
from toolkit.types import PAD

#: Most bytes the precomputed inputs of one split may take; a larger split is read per batch.
PRECOMPUTE_BYTES = 1 << 30
#: Texts hashed at a time, of about the same length (sorted by it).
CHUNK = 4096


def offers_precompute(model: nn.Module) -> bool:
    """Whether `model` has both `precompute` and `forward_precomputed`."""
    methods = (getattr(model, "precompute", None), getattr(model, "forward_precomputed", None))
    return all(callable(method) for method in methods)


class Precomputed:
    """A split's precomputed inputs; `take(rows)` cuts a batch of them."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        self.tensors = tensors
        self.widths = [(tensor != PAD).sum(1) for tensor in tensors]  # filled length of every row

    def take(self, rows: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
        batch = []
        for tensor, widths in zip(self.tensors, self.widths, strict=True):
            width = int(widths[rows].max()) if len(rows) else 0
            batch.append(tensor[rows, :width].to(device))
        return tuple(batch)


def precompute(
    model: nn.Module, indices: torch.Tensor, lengths: torch.Tensor, budget: int | None = None
) -> Precomputed | None:
    """`model.precompute` over a whole encoded split, a chunk of texts at a time (on the
    model's device, kept on the CPU), or None when the result would exceed `budget` bytes
    (by default PRECOMPUTE_BYTES or a quarter of the available memory, the smaller)."""
    if budget is None:
        free = available_memory()
        budget = PRECOMPUTE_BYTES if free is None else min(PRECOMPUTE_BYTES, free // 4)
    device = next(model.parameters()).device
    chunks: list[tuple[torch.Tensor, tuple[torch.Tensor, ...]]] = []
    widest: list[int] = []
    # Chunks of texts of about the same length: a chunk is padded to its longest text, and the
    # hashing costs what the padding costs (ui-programs, 36 characters median and 160 at most: 4x).
    order = torch.argsort(lengths, stable=True)
    with torch.no_grad():
        for start in range(0, len(indices), CHUNK):
            texts = order[start:start + CHUNK]
            part_lengths = lengths[texts]
            width = int(part_lengths.max()) if len(part_lengths) else 0
            part = indices[texts, :width].long().to(device)
            chunk = tuple(t.cpu() for t in model.precompute(part, part_lengths.to(device)))
            widest = [max(a, t.shape[1]) for a, t in zip(widest or [0] * len(chunk), chunk, strict=True)]
            rows = start + len(part)
            if sum(rows * w * t.element_size() for w, t in zip(widest, chunk, strict=True)) > budget:
                return None
            chunks.append((texts, chunk))
    if not chunks:
        return None
    tensors = []
    for column, width in enumerate(widest):
        whole = chunks[0][1][column].new_full((len(indices), width), PAD)
        for texts, chunk in chunks:
            whole[texts, :chunk[column].shape[1]] = chunk[column]
        tensors.append(whole)
    return Precomputed(tensors)

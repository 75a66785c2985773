"""An exponential moving average of a model's weights over the ends of its epochs (Polyak
averaging), which the trainer validates and keeps instead of the weights themselves.

Training goes on from the model's own weights; only validation, the kept best epoch and the
result read the average. Each epoch's end moves the average towards the weights by
max(share, 1 / epoch): epoch 1's weights start it, and with share 0.5 each older epoch counts
half as much as the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EpochAverage:
    """The moving average of `model`'s parameters (not its buffers) at the ends of epochs."""

    def __init__(self, model: nn.Module, share: float) -> None:
        self.params = list(model.parameters())
        self.share = share
        self.epochs = 0
        self.average: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self) -> None:
        """Take the model's weights at the end of an epoch into the average."""
        self.epochs += 1
        if not self.average:
            self.average = [param.detach().clone() for param in self.params]
            return
        share = max(self.share, 1 / self.epochs)
        for average, param in zip(self.average, self.params, strict=True):
            average.lerp_(param.detach(), share)

    @torch.no_grad()
    def apply(self) -> None:
        """Give the model the averaged weights."""
        for param, average in zip(self.params, self.average, strict=True):
            param.copy_(average)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the model holds the averaged weights; after it, its own again."""
        own = [param.detach().clone() for param in self.params]
        self.apply()
        try:
            yield
        finally:
            with torch.no_grad():
                for param, weights in zip(self.params, own, strict=True):
                    param.copy_(weights)

"""`cnn`: a character CNN with several kernel widths and max-pooling over time.

Characters are embedded; one convolution per kernel width slides over the name, with
`width - 1` zeros of padding on both sides so that even a one-letter name yields a
window of every width; ReLU, then the maximum of each filter over the name's windows (the
windows that reach only into batch padding are masked out, so the output does not depend
on how long the other names of the batch are); dropout; a Linear layer to the classes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

import toolkit
from toolkit.plugins.cnn import CNNConfig, check_sizes


class CharCNN(nn.Module):
    """Embedding -> Conv1d per kernel width -> ReLU -> masked max over time -> dropout -> Linear."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        config: CNNConfig | None = None,
    ) -> None:
        super().__init__()
        config = config or CNNConfig()
        check_sizes(vocab_size, num_classes)
        widths, width, filters = config.widths(), config.embedding_dim, config.filters
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=toolkit.PAD)
        self.convs = nn.ModuleList(nn.Conv1d(width, filters, w, padding=w - 1) for w in widths)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(filters * len(widths), num_classes)

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(indices).transpose(1, 2)  # (batch, embedding, time)
        pooled = []
        for conv in self.convs:
            out = F.relu(conv(x))  # (batch, filters, time + width - 1)
            windows = lengths + conv.kernel_size[0] - 1  # the later ones see only batch padding
            real = torch.arange(out.shape[2], device=out.device) < windows.unsqueeze(1)
            pooled.append(out.masked_fill(~real.unsqueeze(1), float("-inf")).max(dim=2).values)
        return self.classifier(self.dropout(torch.cat(pooled, dim=1)))

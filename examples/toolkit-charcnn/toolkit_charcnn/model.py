"""`charcnn`: a character CNN. Convolutions of several widths slide over the character
embeddings, each filter keeps its strongest response anywhere in the text (max over time),
and a Linear layer reads the pooled features.

A filter of width w sees w characters at a time, so it detects an n-gram like "-ov" or
"sch" wherever it occurs. Every convolution pads w - 1 positions on both sides, so even a
one-character text gives each filter a response; responses that lie wholly in a batch's
padding are masked out, so a text's prediction does not depend on the others in its batch.

Only this module imports torch: toolkit imports it when it builds a model (`build_charcnn`
in `__init__.py`), never merely to list or check the plugin.
"""

from __future__ import annotations

import torch
from torch import nn

import toolkit
from toolkit_charcnn.config import CharCNNConfig


class CharCNN(nn.Module):
    """Embedding -> Conv1d of each width -> ReLU -> masked max over time -> dropout -> Linear."""

    def __init__(self, vocab_size: int, num_classes: int, **params: object) -> None:
        super().__init__()
        config = CharCNNConfig(**params)  # checks every value against its declaration
        self.widths = config.parsed_widths()
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=toolkit.PAD)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.channels, width, padding=width - 1)
            for width in self.widths
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.channels * len(self.widths), num_classes)

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        characters = self.embedding(indices).transpose(1, 2)  # (batch, embedding_dim, time)
        lengths = lengths.to(indices.device)
        pooled = []
        for width, convolution in zip(self.widths, self.convolutions, strict=True):
            responses = torch.relu(convolution(characters))  # (batch, channels, time + width - 1)
            # Output j reads characters j-width+1 .. j: it touches the text while j < length + width - 1.
            positions = torch.arange(responses.shape[2], device=indices.device)
            touches_text = positions.unsqueeze(0) < (lengths + width - 1).unsqueeze(1)
            # After the ReLU every response is >= 0, so a masked 0 never wins the max wrongly.
            responses = responses.masked_fill(~touches_text.unsqueeze(1), 0.0)
            pooled.append(responses.max(dim=2).values)
        return self.classifier(self.dropout(torch.cat(pooled, dim=1)))

"""`charcnn`: a character CNN. Convolutions of several widths slide over the character
embeddings, each filter keeps its strongest response anywhere in the text (max over time),
and a Linear layer reads the pooled features.

A filter of width w sees w characters at a time, so it detects an n-gram like "-ov" or
"sch" wherever it occurs. Every convolution pads w - 1 positions on both sides, so even a
one-character text gives each filter a response; responses that lie wholly in a batch's
padding are masked out, so a text's prediction does not depend on the others in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import toolkit


@dataclass(frozen=True)
class CharCNNConfig(toolkit.Config):
    """charcnn's parameters, each declared once: type, default, help, range, how to tune it."""

    owner = "model 'charcnn'"
    embedding_dim: int = toolkit.param_field(
        48, "Size of each character's learned embedding.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(32, 48, 64),
    )
    channels: int = toolkit.param_field(
        128, "Filters per convolution width.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(64, 128, 256),
    )
    widths: str = toolkit.param_field("2,3,4,5", "Convolution widths in characters, comma-separated.")
    dropout: float = toolkit.param_field(
        0.3, "Dropout on the pooled features.", min=0, below=1, search=toolkit.Space.range(0.0, 0.5),
    )

    def parsed_widths(self) -> tuple[int, ...]:
        """'2,3,4' -> (2, 3, 4); () for anything else."""
        try:
            parsed = tuple(int(part) for part in self.widths.split(","))
        except ValueError:
            return ()
        return parsed if parsed and min(parsed) >= 1 else ()

    def check(self) -> str | None:
        """A rule across or inside parameters that a range cannot say; toolkit checks it
        before reading any data."""
        if not self.parsed_widths():
            return f"needs widths as comma-separated positive integers such as 2,3,4; got {self.widths!r}"
        return None


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


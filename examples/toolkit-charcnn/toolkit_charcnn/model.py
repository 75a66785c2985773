"""`charcnn`: a character CNN. Convolutions of several widths slide over the character
embeddings, each filter keeps its strongest response anywhere in the text (max over time),
and a Linear layer reads the pooled features.

A filter of width w sees w characters at a time, so it detects an n-gram like "-ov" or
"sch" wherever it occurs. Every convolution pads w - 1 positions on both sides, so even a
one-character text gives each filter a response; responses that lie wholly in a batch's
padding are masked out, so a text's prediction does not depend on the others in its batch.
"""

from __future__ import annotations

import torch
from torch import nn

import toolkit


def parse_widths(widths: str) -> tuple[int, ...]:
    """'2,3,4' -> (2, 3, 4); one clear error for anything else."""
    try:
        parsed = tuple(int(part) for part in widths.split(","))
    except ValueError:
        parsed = ()
    if not parsed or min(parsed) < 1:
        raise toolkit.ToolkitError(
            f"model 'charcnn' parameter 'widths' must be comma-separated positive integers "
            f"such as 2,3,4; got {widths!r}."
        )
    return parsed


class CharCNN(nn.Module):
    """Embedding -> Conv1d of each width -> ReLU -> masked max over time -> dropout -> Linear."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 48,
        channels: int = 128,
        widths: str = "2,3,4,5",
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if embedding_dim < 1 or channels < 1:
            raise toolkit.ToolkitError("model 'charcnn' needs embedding_dim >= 1 and channels >= 1.")
        if not 0.0 <= dropout < 1.0:
            raise toolkit.ToolkitError(f"model 'charcnn' needs 0 <= dropout < 1; got {dropout}.")
        self.widths = parse_widths(widths)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=toolkit.PAD)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(embedding_dim, channels, width, padding=width - 1) for width in self.widths
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels * len(self.widths), num_classes)

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


PARAMS = (
    toolkit.Param("embedding_dim", int, 48, "Size of each character's learned embedding."),
    toolkit.Param("channels", int, 128, "Filters per convolution width."),
    toolkit.Param("widths", str, "2,3,4,5", "Convolution widths in characters, comma-separated."),
    toolkit.Param("dropout", float, 0.3, "Dropout on the pooled features."),
)

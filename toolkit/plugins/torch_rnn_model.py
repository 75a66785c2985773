"""`gru`, `lstm` and `rnn`: PyTorch's recurrent layers over learned character embeddings.

Characters are embedded, the padded batch is packed (so padding never reaches the layers),
and the classifier reads the final hidden state of the top layer (both directions when
bidirectional), optionally together with the max over all positions' outputs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import toolkit
from toolkit.plugins.torch_rnn import TorchRNNConfig

LAYERS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class TorchRNN(nn.Module):
    """Embedding -> packed torch GRU/LSTM/RNN -> dropout -> Linear."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        cell: str = "gru",
        config: TorchRNNConfig | None = None,
    ) -> None:
        super().__init__()
        config = config or TorchRNNConfig()
        _check(cell, vocab_size, num_classes)
        self.pooling = config.pooling
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=toolkit.PAD)
        self.rnn = LAYERS[cell](
            config.embedding_dim, config.hidden_size, num_layers=config.num_layers, batch_first=True,
            bidirectional=config.bidirectional, dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        directions = 2 if config.bidirectional else 1
        features = config.hidden_size * directions * (2 if config.pooling == "last+max" else 1)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.embedding(indices), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, state = self.rnn(packed)
        hidden = state[0] if isinstance(state, tuple) else state  # the LSTM adds a cell state
        directions = 2 if self.rnn.bidirectional else 1
        features = torch.cat(list(hidden[-directions:]), dim=1)  # top layer, every direction
        if self.pooling == "last+max":
            padded, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=float("-inf"))
            features = torch.cat((features, padded.max(dim=1).values), dim=1)
        return self.classifier(self.dropout(features))


def _check(cell: str, vocab_size: int, num_classes: int) -> None:
    if cell not in LAYERS:
        raise toolkit.ToolkitError(f"unknown recurrent cell '{cell}'; use one of {', '.join(LAYERS)}.")
    if vocab_size < 2 or num_classes < 2:
        raise toolkit.ToolkitError(
            f"model '{cell}' needs a vocabulary and at least two classes; "
            f"got vocab_size={vocab_size}, num_classes={num_classes}."
        )

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

LAYERS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class TorchRNN(nn.Module):
    """Embedding -> packed torch GRU/LSTM/RNN -> dropout -> Linear."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        cell: str = "gru",
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        pooling: str = "last",
    ) -> None:
        super().__init__()
        _check(cell, vocab_size, num_classes, embedding_dim, hidden_size, num_layers, dropout)
        self.pooling = pooling
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=toolkit.PAD)
        self.rnn = LAYERS[cell](
            embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )
        directions = 2 if bidirectional else 1
        features = hidden_size * directions * (2 if pooling == "last+max" else 1)
        self.dropout = nn.Dropout(dropout)
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


def _check(
    cell: str, vocab_size: int, num_classes: int, embedding_dim: int, hidden_size: int,
    num_layers: int, dropout: float,
) -> None:
    for name, value, high in (("embedding_dim", embedding_dim, toolkit.MAX_MODEL_WIDTH),
                              ("hidden_size", hidden_size, toolkit.MAX_MODEL_WIDTH),
                              ("num_layers", num_layers, toolkit.MAX_MODEL_LAYERS)):
        if not 1 <= value <= high:
            raise toolkit.ToolkitError(f"model '{cell}' needs 1 <= {name} <= {high}; got {value}.")
    if not 0.0 <= dropout < 1.0:
        raise toolkit.ToolkitError(f"model '{cell}' needs 0 <= dropout < 1; got {dropout}.")
    if vocab_size < 2 or num_classes < 2:
        raise toolkit.ToolkitError(
            f"model '{cell}' needs a vocabulary and at least two classes; "
            f"got vocab_size={vocab_size}, num_classes={num_classes}."
        )

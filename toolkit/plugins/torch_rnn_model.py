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
from toolkit.plugins.torch_rnn import TorchRNNConfig, check_sizes

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
        check_sizes(cell, vocab_size, num_classes)
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

    def onnx_form(self) -> nn.Module:
        """The model as `toolkit export` traces it: the same scores without packed sequences,
        which torch.onnx cannot export."""
        return TorchRNNGraph(self)


class TorchRNNGraph(nn.Module):
    """`TorchRNN`'s forward on the padded batch: every layer and direction is a one-layer,
    one-way recurrent layer holding the trained weights, and the backward direction reads each
    text reversed within its own length, so no padding reaches a state the classifier reads."""

    def __init__(self, model: TorchRNN) -> None:
        super().__init__()
        self.model = model
        rnn = model.rnn
        self.directions = 2 if rnn.bidirectional else 1
        options = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
        self.layers = nn.ModuleList()
        for layer in range(rnn.num_layers):
            for suffix in ("", "_reverse")[: self.directions]:
                size = rnn.input_size if layer == 0 else rnn.hidden_size * self.directions
                one = type(rnn)(size, rnn.hidden_size, batch_first=True, bias=rnn.bias, **options)
                one.load_state_dict({
                    f"{name}_l0": getattr(rnn, f"{name}_l{layer}{suffix}")
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[: 4 if rnn.bias else 2]
                })
                self.layers.append(one)

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.model.embedding(indices)
        positions = torch.arange(indices.shape[1], device=indices.device).unsqueeze(0)
        real = positions < lengths.unsqueeze(1)
        # Position t of a text reversed within its length; padding stays where it is.
        flipped = torch.where(real, lengths.unsqueeze(1) - 1 - positions, positions).unsqueeze(2)
        for layer in range(0, len(self.layers), self.directions):
            forward_out, _ = self.layers[layer](x)
            outputs = forward_out
            if self.directions == 2:
                backward_flipped, _ = self.layers[layer + 1](x.gather(1, flipped.expand(-1, -1, x.shape[2])))
                backward_out = backward_flipped.gather(1, flipped.expand(-1, -1, backward_flipped.shape[2]))
                outputs = torch.cat((forward_out, backward_out), dim=2)
            x = outputs
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, forward_out.shape[2])
        features = forward_out.gather(1, last).squeeze(1)  # the forward direction's final state
        if self.directions == 2:  # the backward one's: after reading the whole text, at position 0
            features = torch.cat((features, backward_out[:, 0]), dim=1)
        if self.model.pooling == "last+max":
            highest = x.masked_fill(~real.unsqueeze(2), float("-inf")).max(dim=1).values
            features = torch.cat((features, highest), dim=1)
        return self.model.classifier(self.model.dropout(features))

"""`scratch-rnn` and `scratch-gru`: recurrent cells written out by hand, step by step.

`scratch-rnn` is the cell of PyTorch's "Classifying Names with a Character-Level RNN"
tutorial: at every character, `i2h` and `i2o` (two Linear layers) read the one-hot character
concatenated with the previous hidden state. The tutorial feeds one name at a time; here a
whole mini-batch walks through the same loop together. Names in a batch have different
lengths, so a mask stops the hidden state of a finished name from changing on its padding.
The prediction is the output at each name's last real character.

`scratch-gru` is a gated recurrent unit built the same way from three Linear layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from toolkit.plugins.scratch import ScratchGRUConfig, ScratchRNNConfig, check_sizes

#: The `nonlinearity` choices of scratch-rnn.
NONLINEARITIES = {"none": nn.Identity, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class ScratchRNN(nn.Module):
    """The tutorial's RNN cell, batched: i2h and i2o on concat(one-hot character, hidden)."""

    def __init__(
        self, vocab_size: int, num_classes: int, config: ScratchRNNConfig | None = None
    ) -> None:
        super().__init__()
        config = config or ScratchRNNConfig()
        check_sizes("scratch-rnn", vocab_size, num_classes)
        hidden_size = config.hidden_size
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(vocab_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(vocab_size + hidden_size, num_classes)
        self.activation = NONLINEARITIES[config.nonlinearity]()

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, steps = indices.shape
        characters = F.one_hot(indices, self.vocab_size).float()  # (batch, steps, vocab)
        hidden = characters.new_zeros(batch, self.hidden_size)
        last_combined = characters.new_zeros(batch, self.vocab_size + self.hidden_size)
        for t in range(steps):
            combined = torch.cat((characters[:, t], hidden), dim=1)
            still_reading = (t < lengths).unsqueeze(1)  # False on padding
            hidden = torch.where(still_reading, self.activation(self.i2h(combined)), hidden)
            last_combined = torch.where(still_reading, combined, last_combined)
        # The tutorial computes i2o at every step but only keeps the last one; computing it
        # once, on the input of each name's last real step, gives the same logits.
        return self.i2o(last_combined)

    def onnx_form(self) -> nn.Module:
        """The model as `toolkit export` traces it: scripted, so the graph keeps the loop over
        the characters (a trace would unroll it for the width of one batch)."""
        return torch.jit.script(self)


class ScratchGRU(nn.Module):
    """A gated recurrent unit from Linear layers: update gate, reset gate, candidate state."""

    def __init__(self, vocab_size: int, num_classes: int, config: ScratchGRUConfig | None = None) -> None:
        super().__init__()
        config = config or ScratchGRUConfig()
        check_sizes("scratch-gru", vocab_size, num_classes)
        hidden_size = config.hidden_size
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.update_gate = nn.Linear(vocab_size + hidden_size, hidden_size)
        self.reset_gate = nn.Linear(vocab_size + hidden_size, hidden_size)
        self.candidate = nn.Linear(vocab_size + hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, num_classes)

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, steps = indices.shape
        characters = F.one_hot(indices, self.vocab_size).float()
        hidden = characters.new_zeros(batch, self.hidden_size)
        for t in range(steps):
            x = characters[:, t]
            combined = torch.cat((x, hidden), dim=1)
            update = torch.sigmoid(self.update_gate(combined))  # how much of the state to renew
            reset = torch.sigmoid(self.reset_gate(combined))  # how much old state the candidate sees
            candidate = torch.tanh(self.candidate(torch.cat((x, reset * hidden), dim=1)))
            new_hidden = (1 - update) * hidden + update * candidate
            hidden = torch.where((t < lengths).unsqueeze(1), new_hidden, hidden)
        return self.h2o(hidden)

    def onnx_form(self) -> nn.Module:
        """The model as `toolkit export` traces it: scripted, so the graph keeps the loop over
        the characters (a trace would unroll it for the width of one batch)."""
        return torch.jit.script(self)

"""`scratch-rnn`'s and `scratch-gru`'s forward pass on numpy arrays, without torch (`predict
--runtime numpy`, and `auto`'s choice for them).

The same cells as `scratch_model.py`, computed without what is not the model's arithmetic:

- a one-hot character times a Linear layer's weights is one column of them: each layer's
  character columns (with its bias added) are a table, read by the character's index, and only
  the hidden state is multiplied;
- the texts are sorted longest first, so the texts still reading at step t are the first rows:
  each step computes those rows only, instead of every row and a mask (what packed sequences do);
- `scratch-rnn`'s i2o reads the input of each text's last step: the hidden state before it, and
  the last character's column; the hidden state after the last step is never computed;
- `scratch-gru`'s state after a text's first two characters depends on those two only: `load`
  computes it once for every pair (and every single character), by the same steps, so each
  text starts at its third step with a table row (unless the tables would exceed
  `prefix_bytes`).

The logits equal the torch model's within float32 rounding (the sums run in another order: a
table row plus the hidden state's product, where torch multiplies the one-hot too), which
the plugin test kit's `check_model` checks.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

import toolkit


def _sigmoid(values: np.ndarray, out: np.ndarray) -> None:
    """The logistic sigmoid of `values` (float32) into `out`."""
    with np.errstate(over="ignore"):  # exp(100) is inf in float32, and 1 / (1 + inf) the 0 it should be
        np.negative(values, out=out)
        np.exp(out, out=out)
    out += np.float32(1)
    np.reciprocal(out, out=out)


def _tanh(values: np.ndarray, out: np.ndarray) -> None:
    np.tanh(values, out=out)


def _identity(values: np.ndarray, out: np.ndarray) -> None:
    out[...] = values


#: `scratch-rnn`'s nonlinearities, each writing f(values) into `out`.
NONLINEARITIES = {"none": _identity, "tanh": _tanh, "sigmoid": _sigmoid}


def _input_table(weight: np.ndarray, bias: np.ndarray, vocab_size: int) -> np.ndarray:
    """(vocab, out) what a Linear layer on concat(one-hot character, hidden) adds for each
    character, its bias included."""
    return np.ascontiguousarray(weight[:, :vocab_size].T + bias, dtype=np.float32)


def _hidden_matrix(weights: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """(hidden, out) the hidden state's columns of one or more Linear layers, side by side."""
    return np.ascontiguousarray(np.concatenate([w[:, vocab_size:] for w in weights]).T, dtype=np.float32)


class ScratchRNNArrays(toolkit.LongestFirst):
    """`ScratchRNN` on numpy arrays: hidden = f(i2h(concat(character, hidden))) at every step but
    the last, and the logits i2o(concat(last character, hidden))."""

    def __init__(self, vocab_size: int, num_classes: int, hidden_size: int, nonlinearity: str) -> None:
        super().__init__(vocab_size, num_classes, hidden_size)
        width = vocab_size + hidden_size
        self.shapes = {"i2h.weight": (hidden_size, width), "i2h.bias": (hidden_size,),
                       "i2o.weight": (num_classes, width), "i2o.bias": (num_classes,)}
        self.activation = NONLINEARITIES[nonlinearity]

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        vocab = self.vocab_size
        self.i2h_characters = _input_table(weights["i2h.weight"], weights["i2h.bias"], vocab)
        self.i2h_hidden = _hidden_matrix([weights["i2h.weight"]], vocab)
        self.i2o_characters = _input_table(weights["i2o.weight"], weights["i2o.bias"], vocab)
        self.i2o_hidden = _hidden_matrix([weights["i2o.weight"]], vocab)
        self.i2o_bias = np.asarray(weights["i2o.bias"], dtype=np.float32)

    def chunk_logits(self, steps: np.ndarray, reading: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        shape = (len(lengths), self.hidden_size)
        hidden, product = self.buffer("hidden", shape, fill=0), self.buffer("product", shape)
        for t in range(len(steps) - 1):
            count = int(reading[t + 1])  # the texts with a step after this one
            if not count:
                break
            state, new = hidden[:count], product[:count]
            np.take(self.i2h_characters, steps[t, :count], axis=0, out=new, mode="clip")
            self.add_product(state, self.i2h_hidden, new)
            self.activation(new, state)
        # Each text's hidden state is now the one before its last step; a text of no characters
        # (none reach here from an encoder) keeps the zero state and reads no character, as in torch.
        logits = hidden @ self.i2o_hidden
        last = (steps[np.maximum(lengths - 1, 0), np.arange(len(lengths))] if len(steps)
                else np.zeros(len(lengths), dtype=np.int64))
        logits += np.where((lengths > 0)[:, None], self.i2o_characters[last], self.i2o_bias)
        return logits


class ScratchGRUArrays(toolkit.LongestFirst):
    """`ScratchGRU` on numpy arrays: the update and reset gates in one product of the hidden
    state, the candidate in another, each plus its character's table row."""

    def __init__(self, vocab_size: int, num_classes: int, hidden_size: int) -> None:
        super().__init__(vocab_size, num_classes, hidden_size)
        width = vocab_size + hidden_size
        self.shapes = {f"{gate}.{kind}": (hidden_size, width) if kind == "weight" else (hidden_size,)
                       for gate in ("update_gate", "reset_gate", "candidate") for kind in ("weight", "bias")}
        self.shapes |= {"h2o.weight": (num_classes, hidden_size), "h2o.bias": (num_classes,)}
        #: The states after the first two characters (`_prefix_tables`), made by `load`.
        self.prefix: tuple[np.ndarray, np.ndarray] | None = None

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        vocab, gates = self.vocab_size, ("update_gate", "reset_gate")
        # Halved (exactly: a power of two), as the gates are computed as sigmoid(x) = (1 + tanh(x / 2)) / 2.
        half = np.float32(0.5)
        self.gate_characters = half * np.concatenate(
            [_input_table(weights[f"{gate}.weight"], weights[f"{gate}.bias"], vocab) for gate in gates],
            axis=1)
        self.gate_hidden = half * _hidden_matrix([weights[f"{gate}.weight"] for gate in gates], vocab)
        candidate_weight, candidate_bias = weights["candidate.weight"], weights["candidate.bias"]
        self.candidate_characters = _input_table(candidate_weight, candidate_bias, vocab)
        self.candidate_hidden = _hidden_matrix([candidate_weight], vocab)
        self.h2o_weight = np.ascontiguousarray(np.asarray(weights["h2o.weight"], dtype=np.float32).T)
        self.h2o_bias = np.asarray(weights["h2o.bias"], dtype=np.float32)
        self.prefix = self._prefix_tables()

    def chunk_logits(self, steps: np.ndarray, reading: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        hidden = self.buffer("hidden", (len(lengths), self.hidden_size), fill=0)
        start = 0
        if self.prefix is not None and len(steps):  # the states after the first two characters
            singles, pairs = self.prefix
            start, ones = min(len(steps), 2), int(reading[0])
            twos = int(reading[1]) if start == 2 else 0
            np.take(singles, steps[0, twos:ones], axis=0, out=hidden[twos:ones], mode="clip")
            np.take(pairs, steps[0, :twos] * self.vocab_size + steps[1, :twos], axis=0, out=hidden[:twos],
                    mode="clip")
        self._read(steps, reading, hidden, start)
        logits = hidden @ self.h2o_weight
        logits += self.h2o_bias
        return logits

    def _prefix_tables(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, hidden) the states after one character (row: that character) and after two (row:
        first * vocabulary + second), computed by the same steps as the texts'; None when they
        would exceed `prefix_bytes` (`toolkit.LongestFirst.prefix_pairs`)."""
        vocab, size = self.vocab_size, self.hidden_size
        enumerated = self.prefix_pairs(size * 4)
        if enumerated is None:
            return None
        first, second = enumerated
        singles = np.zeros((vocab, size), dtype=np.float32)
        self._read(np.arange(vocab)[None, :], np.array([vocab]), singles)
        pairs = np.zeros((vocab * vocab, size), dtype=np.float32)
        chunk = self.chunk_size()
        for start in range(0, vocab * vocab, chunk):
            part = slice(start, start + chunk)
            count = len(first[part])
            self._read(np.stack([first[part], second[part]]), np.array([count, count]), pairs[part])
        return singles, pairs

    def _read(self, steps: np.ndarray, reading: np.ndarray, hidden: np.ndarray, start: int = 0) -> None:
        """The steps from `start` on, each updating the states in `hidden` of the texts still reading."""
        size = self.hidden_size
        gates = self.buffer("gates", (len(hidden), 2 * size))
        candidate, seen = (self.buffer(key, hidden.shape) for key in ("candidate", "seen"))
        for t in range(start, len(steps)):
            count = int(reading[t])
            state, both, new = hidden[:count], gates[:count], candidate[:count]
            characters = steps[t, :count]
            np.take(self.gate_characters, characters, axis=0, out=both, mode="clip")
            self.add_product(state, self.gate_hidden, both)
            np.tanh(both, out=both)  # the sigmoid of twice these: both gates, in three passes
            both *= np.float32(0.5)
            both += np.float32(0.5)
            update, reset = both[:, :size], both[:, size:]
            # What of the old state the candidate sees, contiguous for the product.
            np.multiply(reset, state, out=seen[:count])
            np.take(self.candidate_characters, characters, axis=0, out=new, mode="clip")
            self.add_product(seen[:count], self.candidate_hidden, new)
            np.tanh(new, out=new)
            # (1 - update) * hidden + update * candidate, in three passes
            new -= state
            new *= update
            state += new

"""`gru`, `lstm` and `rnn`'s forward pass on numpy arrays, without torch (`predict --runtime
numpy`, and `auto`'s choice for them): torch's cells, every layer and direction, "last" and
"last+max" pooling.

Computed as `scratch_numpy.py` computes its cells, without what is not the model's arithmetic:

- the first layer's input is an embedding row, so its product with the input weights (plus the
  biases that are plain sums) is a table with a row per character, per direction: each step
  reads a row and multiplies only the hidden state, its product added into the row by BLAS
  (a later layer's input products, of the layer below's outputs, are one matrix product for
  the whole chunk);
- each gate is an array of its own (a product per gate and direction), so the elementwise
  arithmetic runs on contiguous arrays, in chunks whose step arrays stay in the CPU's cache;
- the texts are sorted longest first, so the texts still reading at step t are the first rows:
  a step computes those rows only. The backward direction reads each text reversed within its
  own length: its step s reads position length - 1 - s, so the texts reading at step s are the
  same first rows, and both directions advance together; a row's state stops changing after its
  last step, so the final states are what is left when the chunk's longest text ends; the
  first step's hidden products, of the zero state, are not computed;
- the sigmoid gates are computed as (1 + tanh(x / 2)) / 2 with their weights halved (exactly:
  a power of two), in place;
- the first layer's state after a direction's first two characters depends on those two
  characters only: `load` computes it once for every pair (and for every single character, the
  state of a text of one), by the same steps, so each text starts at its third step with a
  table row. Every text reads at least two steps fewer: a fifth of a name's products and more
  of its elementwise arithmetic. A vocabulary whose tables would exceed `prefix_bytes` skips
  them.

The logits equal the torch model's within float32 rounding (the sums run in another order),
which the plugin test kit's `check_model` checks.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

import toolkit

#: Gates per cell, each `hidden_size` wide, in torch's order.
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
#: The sigmoid gates, first in the order the arrays keep them (torch's LSTM order is i, f, g, o;
#: here i, f, o, g, so one slice holds the sigmoids), and the tanh ones after them.
SIGMOID_GATES = {"rnn": 0, "gru": 2, "lstm": 3}
HALF = np.float32(0.5)
#: What a chunk's step arrays (every gate and direction) may fill: wider ones left the CPU's
#: cache, and the elementwise arithmetic measured slower (the default GRU's and LSTM's gates:
#: half of `CHUNK`).
STEP_BYTES = 2 << 20


def _gate_order(cell: str, size: int) -> np.ndarray:
    """The rows of a torch weight in this module's gate order."""
    rows = np.arange(GATES[cell] * size)
    if cell == "lstm":  # i, f, g, o -> i, f, o, g
        return np.concatenate([rows[:2 * size], rows[3 * size:], rows[2 * size:3 * size]])
    return rows


class TorchRNNArrays(toolkit.LongestFirst):
    """`TorchRNN` (torch_rnn_model.py) in eval mode on numpy arrays."""

    def __init__(
        self, cell: str, vocab_size: int, num_classes: int, embedding_dim: int, hidden_size: int,
        num_layers: int, bidirectional: bool, pooling: str,
    ) -> None:
        super().__init__(vocab_size, num_classes, hidden_size)
        self.cell, self.num_layers, self.pooling = cell, num_layers, pooling
        self.directions = 2 if bidirectional else 1
        width = GATES[cell] * hidden_size
        self.shapes = {"embedding.weight": (vocab_size, embedding_dim)}
        for layer in range(num_layers):
            inputs = embedding_dim if layer == 0 else hidden_size * self.directions
            for suffix in self._suffixes():
                self.shapes |= {
                    f"rnn.weight_ih_l{layer}{suffix}": (width, inputs),
                    f"rnn.weight_hh_l{layer}{suffix}": (width, hidden_size),
                    f"rnn.bias_ih_l{layer}{suffix}": (width,),
                    f"rnn.bias_hh_l{layer}{suffix}": (width,),
                }
        features = hidden_size * self.directions * (2 if pooling == "last+max" else 1)
        self.shapes |= {"classifier.weight": (num_classes, features), "classifier.bias": (num_classes,)}
        #: The first layer's two-character state tables (`_prefix_tables`), made by `load`.
        self.prefix: tuple[list[np.ndarray], list[np.ndarray]] | None = None

    def chunk_size(self) -> int:
        """`CHUNK` texts, or fewer when their step arrays would be wider than `STEP_BYTES`."""
        per_text = GATES[self.cell] * self.directions * self.hidden_size * 4
        fitting = 1 << max(STEP_BYTES // per_text, 1).bit_length() - 1  # a power of two
        return min(super().chunk_size(), fitting)

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[: self.directions]

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        size, cell, gates = self.hidden_size, self.cell, GATES[self.cell]
        order = _gate_order(cell, size)
        # The sigmoid gates' rows halved: sigmoid(x) = (1 + tanh(x / 2)) / 2.
        scale = np.ones(gates * size, dtype=np.float32)
        scale[: SIGMOID_GATES[cell] * size] = HALF

        def by_gate(name: str) -> np.ndarray:
            """(gates, directions, inputs, hidden) a weight, or (gates, directions, 1, hidden) a
            bias, in this module's gate order: each gate's array is its own, contiguous, so the
            steps' arithmetic on a gate runs on contiguous arrays."""
            parts = []
            for suffix in self._suffixes():
                value = np.asarray(weights[f"rnn.{name}{suffix}"], dtype=np.float32)[order]
                value = value * (scale if value.ndim == 1 else scale[:, None])
                parts.append(value.reshape(gates, size, -1).transpose(0, 2, 1))
            return np.ascontiguousarray(np.stack(parts, axis=1))

        #: Per layer: the input and hidden weights, transposed, by gate and direction.
        self.input_weights: list[np.ndarray] = []  # (gates, directions, inputs, hidden)
        self.hidden_weights: list[np.ndarray] = []  # (gates, directions, hidden, hidden)
        self.input_biases: list[np.ndarray] = []  # (gates, directions, 1, hidden): both biases but GRU's b_hn
        self.candidate_biases: list[np.ndarray] = []  # GRU: (directions, 1, hidden) b_hn, inside r * (...)
        for layer in range(self.num_layers):
            bias_ih, bias_hh = by_gate(f"bias_ih_l{layer}"), by_gate(f"bias_hh_l{layer}")
            biases = bias_ih + bias_hh
            if cell == "gru":  # b_hn is multiplied by the reset gate: added to the hidden product
                biases[2] = bias_ih[2]
            self.input_biases.append(biases)
            self.candidate_biases.append(bias_hh[-1])
            self.input_weights.append(by_gate(f"weight_ih_l{layer}"))
            self.hidden_weights.append(by_gate(f"weight_hh_l{layer}"))
        # The first layer's input products: a row per character, per gate and direction, each
        # gate's rows stacked so one index (character + direction * vocabulary) reads both
        # directions' rows.
        embedding = np.asarray(weights["embedding.weight"], dtype=np.float32)
        self.table = np.ascontiguousarray(
            (embedding @ self.input_weights[0] + self.input_biases[0]).reshape(gates, -1, size))
        self.classifier_weight = np.ascontiguousarray(np.asarray(weights["classifier.weight"], np.float32).T)
        self.classifier_bias = np.asarray(weights["classifier.bias"], dtype=np.float32)
        self.prefix = None  # the tables are computed by the steps themselves, from no table
        self.prefix = self._prefix_tables()

    def chunk_logits(self, steps: np.ndarray, reading: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        table_rows, backward = self._table_rows(steps, lengths)
        top = self.num_layers - 1
        outputs = None
        for layer in range(self.num_layers):
            if layer == 0:
                inputs = None
            else:  # the layer below's outputs at each position, read forward and backward
                below = [outputs[0]] if self.directions == 1 else [
                    np.concatenate([outputs[0], _reversed(outputs[1], backward)], axis=2),
                    np.concatenate([_reversed(outputs[0], backward), outputs[1]], axis=2)]
                # (gates, directions, steps, texts, hidden)
                inputs = np.matmul(np.stack(below)[None], self.input_weights[layer][:, :, None])
                inputs += self.input_biases[layer][:, :, None]
            hidden, _, outputs, highest = self._layer(
                layer, steps.shape, reading, table_rows if layer == 0 else None, inputs,
                keep_outputs=layer < top, keep_max=layer == top and self.pooling == "last+max")
        features = [hidden[d] for d in range(self.directions)]
        if highest is not None:
            features += [highest[d] for d in range(self.directions)]
        joined = self.buffer("features", (len(hidden[0]), len(features) * self.hidden_size))
        logits = np.concatenate(features, axis=1, out=joined) @ self.classifier_weight
        logits += self.classifier_bias
        return logits

    def _table_rows(self, steps: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(directions, steps, texts) the first layer's table row each direction reads at each step
        (its character, plus the direction's offset), and (steps, texts) the position a text read
        backward reads at each step."""
        positions = np.arange(len(steps))[:, None]
        # Row s of a text read backward: its position length - 1 - s; padding stays where it is.
        backward = np.where(positions < lengths[None, :], lengths[None, :] - 1 - positions, positions)
        characters = [steps, np.take_along_axis(steps, backward, axis=0)][: self.directions]
        return np.stack(characters) + self._offsets()[:, None, None], backward

    def _offsets(self) -> np.ndarray:
        """Each direction's first row in the first layer's table: its characters' rows follow."""
        return np.arange(self.directions) * self.vocab_size

    def _prefix_tables(self) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        """The first layer's states, and (LSTM) cells, (directions, rows, hidden) after a direction
        has read one character (row: that character) and two (row: first * vocabulary + second),
        computed by the same steps as the texts'; None when they would exceed `prefix_bytes`
        (`toolkit.LongestFirst.prefix_pairs`)."""
        vocab, states = self.vocab_size, 2 if self.cell == "lstm" else 1
        enumerated = self.prefix_pairs(self.directions * self.hidden_size * 4 * states)
        if enumerated is None:
            return None
        first, second = enumerated
        singles = self._final_states(np.arange(vocab)[None, :])
        # Read backward, the text (a, b) is read b then a: its states are at row b * vocabulary + a.
        pairs = self._final_states(np.stack([first, second]))
        if self.directions == 2:
            for kept in pairs:
                kept[1] = kept[1][second * vocab + first]
        return singles, pairs

    def _final_states(self, steps: np.ndarray) -> list[np.ndarray]:
        """The first layer's final states (and LSTM cells) of texts of one length, chunk by chunk."""
        chunk, count = self.chunk_size(), steps.shape[1]
        parts = []
        for start in range(0, count, chunk):
            part = np.ascontiguousarray(steps[:, start:start + chunk])
            reading = np.full(len(part), part.shape[1])
            lengths = np.full(part.shape[1], len(part))
            table_rows, _ = self._table_rows(part, lengths)
            hidden, cells, _, _ = self._layer(0, part.shape, reading, table_rows, None, False, False)
            # Copies: the next chunk's layer reuses the same buffers.
            parts.append([hidden.copy()] if cells is None else [hidden.copy(), cells.copy()])
        return [np.concatenate(kept, axis=1) for kept in zip(*parts, strict=True)]

    def _layer(
        self, layer: int, shape: tuple[int, int], reading: np.ndarray, table_rows: np.ndarray | None,
        inputs: np.ndarray | None, keep_outputs: bool, keep_max: bool,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """One layer, every direction at once: the final hidden states (directions, texts, hidden),
        the LSTM's final cells (else None), the outputs at each direction's steps (directions,
        steps, texts, hidden) when kept, and the max over each text's steps when kept. The input
        of step t is a table row (first layer) or `inputs[:, :, t]`; the first layer starts from
        the two-character tables once `load` has made them."""
        longest, count = shape
        size, cell, directions = self.hidden_size, self.cell, self.directions
        states = (directions, count, size)
        hidden = self.buffer(("hidden", layer), states, fill=0)
        candidate_product = self.buffer(("candidate", layer), states) if cell == "gru" else None
        cells = self.buffer(("cells", layer), states, fill=0) if cell == "lstm" else None
        outputs = np.zeros((directions, longest, count, size), dtype=np.float32) if keep_outputs else None
        highest = self.buffer(("highest", layer), states, fill=-np.inf) if keep_max else None
        gathered = self.buffer("gathered", (GATES[cell], directions, count, size)) if inputs is None else None
        weights, candidate_bias = self.hidden_weights[layer], self.candidate_biases[layer]
        # The gates whose hidden product is added to the input's: the GRU's candidate multiplies its own.
        summed = 2 if cell == "gru" else GATES[cell]
        start = 0
        if table_rows is not None and self.prefix is not None:
            start = self._start_from_prefix(table_rows, reading, hidden, cells, outputs, highest)
        for t in range(start, longest):
            n = int(reading[t])
            state = hidden[:, :n]
            # (gates, directions, n, hidden): the step's input products, table rows gathered into
            # `gathered` or a part of `inputs` read only at this step, so the hidden state's
            # products are added into it. (mode="clip": the indices are the encoder's, each in the
            # table; "raise" would gather through a copy.)
            if inputs is None:
                new = gathered[:, :, :n]
                for gate in range(len(new)):
                    for d in range(directions):
                        np.take(self.table[gate], table_rows[d, t, :n], axis=0, out=new[gate, d], mode="clip")
            else:
                new = inputs[:, :, t, :n]
            if t > 0:  # the state starts at zero: so do its products
                for gate in range(summed):
                    for d in range(directions):
                        self.add_product(hidden[d, :n], weights[gate, d], new[gate, d])
            if cell == "rnn":
                np.tanh(new[0], out=state)
            elif cell == "gru":
                both = new[:2]
                _halved_sigmoid(both)
                reset, update, candidate = new
                held = candidate_product[:, :n]
                if t > 0:
                    for d in range(directions):
                        np.matmul(hidden[d, :n], weights[2, d], out=candidate_product[d, :n])
                    held += candidate_bias
                else:
                    held[...] = candidate_bias
                held *= reset
                candidate += held
                np.tanh(candidate, out=candidate)
                # (1 - update) * candidate + update * hidden, in three passes
                state -= candidate
                state *= update
                state += candidate
            else:
                np.tanh(new, out=new)
                _halved_sigmoid(new[:3], tanh_done=True)
                into, forget, out, candidate = new
                memory = cells[:, :n]
                memory *= forget
                into *= candidate
                memory += into
                np.tanh(memory, out=candidate)
                np.multiply(out, candidate, out=state)
            if outputs is not None:
                outputs[:, t, :n] = state
            if highest is not None:
                np.maximum(highest[:, :n], state, out=highest[:, :n])
        return hidden, cells, outputs, highest

    def _start_from_prefix(
        self, table_rows: np.ndarray, reading: np.ndarray, hidden: np.ndarray, cells: np.ndarray | None,
        outputs: np.ndarray | None, highest: np.ndarray | None,
    ) -> int:
        """The first layer's states after each text's first two steps (one, for a text of one
        character), read from the tables `load` made, into `hidden`, `cells`, `outputs` and
        `highest`: the step the loop goes on from."""
        singles, pairs = self.prefix
        steps = min(len(reading), 2)
        if not steps:
            return 0
        ones, twos = int(reading[0]), int(reading[1]) if steps == 2 else 0
        read = table_rows[:, :steps] - self._offsets()[:, None, None]  # (directions, steps, texts)
        pair_rows = read[:, 0, :twos] * self.vocab_size + read[:, 1, :twos] if twos else None
        kept = [hidden] if cells is None else [hidden, cells]
        for d in range(self.directions):
            for into, single, pair in zip(kept, singles, pairs, strict=True):
                np.take(single[d], read[d, 0, twos:ones], axis=0, out=into[d, twos:ones], mode="clip")
                if twos:
                    np.take(pair[d], pair_rows[d], axis=0, out=into[d, :twos], mode="clip")
            if outputs is None and highest is None:
                continue
            after_one = singles[0][d][read[d, 0, :ones]]
            if outputs is not None:
                outputs[d, 0, :ones] = after_one
                if twos:
                    outputs[d, 1, :twos] = hidden[d, :twos]
            if highest is not None:
                highest[d, :ones] = after_one
                np.maximum(highest[d, :twos], hidden[d, :twos], out=highest[d, :twos])
        return steps


def _halved_sigmoid(values: np.ndarray, tanh_done: bool = False) -> None:
    """sigmoid(2x) of `values` in place, as (1 + tanh(x)) / 2 (`tanh_done`: already tanh(x))."""
    if not tanh_done:
        np.tanh(values, out=values)
    values *= HALF
    values += HALF


def _reversed(outputs: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(steps, texts, hidden) outputs with each text's steps reversed within its own length."""
    return np.take_along_axis(outputs, backward[:, :, None], axis=0)

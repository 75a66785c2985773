"""`cnn`'s forward pass on numpy arrays, without torch (`predict --runtime numpy`, and `auto`'s
choice for it).

The same arithmetic as `CharCNN` (cnn_model.py), without what is not the model's:

- an embedding followed by a convolution is a table lookup: offset j of a width-w kernel adds
  E @ W[:, :, j].T (vocab x filters) read at the character under it, so a window is its bias
  plus w table rows, and no product remains before the classifier (the embedding's PAD row and
  the convolution's padding are zeros: they add nothing and are skipped);
- the filters of all widths are side by side, widest first, and a window is indexed by its last
  position: the character k positions before that end adds a row of the table of offset
  `w - 1 - k` to the filters of every width above k, the first columns, in one gather per k;
- the texts are sorted by length and computed a chunk of one length at a time: no window of a
  chunk reaches into another text's padding, so none is masked; a chunk's values are laid out
  position by position, so a gather writes them whole, into buffers reused chunk after chunk;
- ReLU after the max over the windows (the same value: ReLU never lowers the order), on the
  pooled filters only.

The logits equal the torch model's within float32 rounding (the sums run in another order),
which the plugin test kit's `check_model` checks.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

import toolkit

#: Most window values (texts x windows x filters) computed at once: large enough that each
#: gather is one big numpy operation, small enough to stay in the CPU's cache (1 MiB).
CHUNK_VALUES = 1 << 18


class CNNArrays:
    """`CharCNN` (embedding, a Conv1d per kernel width, ReLU, max over the windows, Linear) on
    numpy arrays."""

    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int, filters: int,
                 widths: Sequence[int]) -> None:
        self.vocab_size, self.num_classes, self.filters = vocab_size, num_classes, filters
        self.widths = list(widths)
        #: The widths' convolutions widest first (stable): the filters of the widths above k are
        #: then the first columns.
        self.order = sorted(range(len(self.widths)), key=lambda i: -self.widths[i])
        self.sorted_widths = [self.widths[i] for i in self.order]
        self.shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (vocab_size, embedding_dim)}
        for i, width in enumerate(self.widths):
            self.shapes |= {f"convs.{i}.weight": (filters, embedding_dim, width),
                            f"convs.{i}.bias": (filters,)}
        self.shapes |= {"classifier.weight": (num_classes, filters * len(self.widths)),
                        "classifier.bias": (num_classes,)}

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        embedding = np.array(weights["embedding.weight"], dtype=np.float64)
        embedding[toolkit.PAD] = 0  # what padding_idx keeps it: a padding position adds nothing
        widest, filters = self.sorted_widths[0], self.filters
        #: tables[k]: (vocab, the filters of the widths above k) what a character k positions
        #: before a window's end adds to it.
        self.tables = []
        for k in range(widest):
            above = [i for i in self.order if self.widths[i] > k]
            columns = [embedding @ np.asarray(weights[f"convs.{i}.weight"], dtype=np.float64)[
                :, :, self.widths[i] - 1 - k].T for i in above]
            self.tables.append(np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.float32))
        self.conv_bias = np.concatenate(
            [np.asarray(weights[f"convs.{i}.bias"], dtype=np.float32) for i in self.order])
        # The first table with the biases in: a window's last character sets it, the others add.
        self.first = self.tables[0] + self.conv_bias
        classifier = np.asarray(weights["classifier.weight"], dtype=np.float32)
        blocks = [classifier[:, i * filters:(i + 1) * filters] for i in self.order]
        self.classifier = np.ascontiguousarray(np.concatenate(blocks, axis=1).T)  # (features, classes)
        self.classifier_bias = np.asarray(weights["classifier.bias"], dtype=np.float32)

    def logits(self, indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(texts, classes) float32 logits of padded character indices, as `CharCNN.forward`."""
        indices, lengths = np.asarray(indices), np.asarray(lengths, dtype=np.int64)
        features = len(self.conv_bias)
        pooled = np.empty((len(lengths), features), dtype=np.float32)
        order = np.argsort(lengths, kind="stable")
        sorted_lengths = lengths[order]
        changes = (np.flatnonzero(np.diff(sorted_lengths)) + 1).tolist()
        bounds = [0, *changes, len(order)] if len(order) else []  # texts of one length: [first, end)
        widest = self.sorted_widths[0]
        longest = int(sorted_lengths[-1]) if len(order) else 0
        # Two buffers for every chunk: the windows' values, and a table's rows gathered.
        size = max(CHUNK_VALUES, (longest + widest - 1) * features)
        scratch = np.empty((2, size), dtype=np.float32)
        for first, end in itertools.pairwise(bounds):
            length = int(sorted_lengths[first])
            step = max(1, CHUNK_VALUES // ((length + widest - 1) * features))
            for start in range(first, end, step):
                rows = order[start:min(start + step, end)]
                characters = np.ascontiguousarray(indices[rows, :length].T, dtype=np.intp)
                pooled[rows] = self.pooled(characters, scratch)
        with np.errstate(invalid="ignore"):  # -inf features (see `pooled`) give NaN, as in torch
            logits = pooled @ self.classifier
            logits += self.classifier_bias
        return logits

    def pooled(self, characters: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """(texts, features) each filter's ReLU'd maximum over the windows of texts of one
        length, `characters` (length, texts), computed in `scratch` (two flat buffers)."""
        length, texts = characters.shape
        features = len(self.conv_bias)
        if not length:  # no encoder gives one: each width's windows read only padding, their bias
            pooled = np.tile(np.maximum(self.conv_bias, 0), (texts, 1))
            # but width 1 has no window, and torch's max over none is -inf (the widest are first)
            pooled[:, features - self.filters * self.sorted_widths.count(1):] = -np.inf
            return pooled
        # values[p]: the windows ending at position p (the widths too narrow to reach back from a
        # position past the text's end have no window there; their columns are not read there).
        positions = length + self.sorted_widths[0] - 1
        values = scratch[0, :positions * texts * features].reshape(positions, texts, features)
        # mode="clip" (the indices are the vocabulary's): with "raise", numpy gathers into a copy first
        np.take(self.first, characters, axis=0, out=values[:length], mode="clip")
        values[length:] = self.conv_bias
        for k, table in enumerate(self.tables[1:], start=1):
            columns = table.shape[1]
            rows = scratch[1, :length * texts * columns].reshape(length, texts, columns)
            np.take(table, characters, axis=0, out=rows, mode="clip")
            values[k:k + length, :, :columns] += rows
        # The max over each width's windows: over the positions where every width ends one, then
        # position by position, where the widths with a window ending there are the first ones.
        shared = length + self.sorted_widths[-1] - 1
        pooled = values[:shared].max(axis=0)
        for end in range(shared, positions):
            columns = self.filters * sum(length + width - 1 > end for width in self.sorted_widths)
            np.maximum(pooled[:, :columns], values[end, :, :columns], out=pooled[:, :columns])
        np.maximum(pooled, 0, out=pooled)
        return pooled

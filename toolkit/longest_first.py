"""`LongestFirst`: the walk a recurrent model's numpy forward pass shares (the built-in
`scratch-rnn`, `scratch-gru`, `rnn`, `gru` and `lstm` use it): texts sorted longest first and
computed in chunks, so the texts still reading at a step are a prefix of the chunk."""

from __future__ import annotations

import threading
from collections.abc import Hashable

import numpy as np
from scipy.linalg.blas import sgemm

#: Texts computed together: large enough that each step is a few big matrix products, small
#: enough that a step's arrays stay in the CPU's cache.
CHUNK = 1024


class LongestFirst:
    """A recurrent model's numpy forward pass (`toolkit.ArrayModel`) walking its texts longest
    first, in chunks: a subclass computes `chunk_logits` of a chunk whose texts still reading at
    step t are its first `reading[t]` rows, so a step computes those rows only, with no mask.
    It declares `shapes` (the torch model's weights it reads) and `load`s them."""

    shapes: dict[str, tuple[int, ...]]
    #: The most a model's tables of the states after a text's first one and two characters may
    #: take (`prefix_pairs`; a vocabulary of 57 characters and the default `gru`: 3.3 MB).
    prefix_bytes: int = 64 << 20

    def __init__(self, vocab_size: int, num_classes: int, hidden_size: int) -> None:
        self.vocab_size, self.num_classes, self.hidden_size = vocab_size, num_classes, hidden_size
        self._buffers = threading.local()

    def logits(self, indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(texts, classes) float32 logits of padded character indices, as the torch model's forward."""
        indices, lengths = np.asarray(indices, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        result = np.empty((len(lengths), self.num_classes), dtype=np.float32)
        order = np.argsort(-lengths, kind="stable")  # longest first: the texts still reading are a prefix
        chunk = self.chunk_size()
        for start in range(0, len(order), chunk):
            rows = order[start:start + chunk]
            chunk_lengths = lengths[rows]
            longest = int(chunk_lengths[0]) if len(rows) else 0
            # Column t of `steps`: the characters at step t; row t of `reading`: how many texts have one.
            steps = np.ascontiguousarray(indices[rows, :longest].T)
            reading = np.count_nonzero(chunk_lengths[None, :] > np.arange(longest)[:, None], axis=1)
            result[rows] = self.chunk_logits(steps, reading, chunk_lengths)
        return result

    def chunk_size(self) -> int:
        """Texts computed together: `CHUNK`."""
        return CHUNK

    def prefix_pairs(self, bytes_per_row: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Every pair of characters, as the (first, second) characters of the rows of a table of
        the states after two characters (row: first * vocabulary + second); None when that table
        and the one of the states after one character, `bytes_per_row` a row, would exceed
        `prefix_bytes`. The state after a text's first two characters depends on them alone, so
        a model that keeps these tables starts each text at its third step with a table row."""
        vocab = self.vocab_size
        if vocab * (vocab + 1) * bytes_per_row > self.prefix_bytes:
            return None
        return np.divmod(np.arange(vocab * vocab), vocab)

    def chunk_logits(self, steps: np.ndarray, reading: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def add_product(state: np.ndarray, weight: np.ndarray, into: np.ndarray) -> None:
        """`into += state @ weight` (float32) in one BLAS call when the arrays are C-ordered (their
        transposes are the Fortran-ordered ones BLAS reads, so `into` is written where it is;
        another would be copied): numpy's matmul has no accumulating form, and the separate sum
        measured a tenth of the plain RNN's step. A step gathers its characters' table rows into
        `into` and adds the hidden state's product to them."""
        if into.flags.c_contiguous and state.flags.c_contiguous and weight.flags.c_contiguous:
            sgemm(1.0, weight.T, state.T, beta=1.0, c=into.T, overwrite_c=True)
        else:
            into += state @ weight

    def buffer(
        self, key: Hashable, shape: tuple[int, ...], fill: float | None = None, dtype: type = np.float32,
    ) -> np.ndarray:
        """An array of `shape`, set to `fill` or else holding what its last use left: the same
        memory for `key` on every chunk and call in this thread, grown when a larger one is asked
        for. A chunk's arrays allocated afresh went back to the operating system between chunks,
        and faulting their pages in again took a tenth of `rnn`'s prediction time."""
        arrays: dict[Hashable, np.ndarray] = self._buffers.__dict__.setdefault("arrays", {})
        size = int(np.prod(shape))
        kept = arrays.get(key)
        if kept is None or kept.size < size or kept.dtype != dtype:
            kept = arrays[key] = np.empty(size, dtype=dtype)
        array = kept[:size].reshape(shape)
        if fill is not None:
            array.fill(fill)
        return array

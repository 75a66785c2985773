"""A linear `ngram`'s forward pass on numpy arrays, without torch (`predict --runtime numpy`,
and `auto`'s choice for such a run).

The same bucket ids as `NgramModel` (its hashes, `ngram_model.py`, in numpy int64, without
padding: the character n-grams of the texts of each length at once, the words of all texts laid
end to end) and the same logits bit for bit: the pooled rows
are a sparse (texts, buckets) matrix of pooling weights times the table. scipy's product adds a
text's weighted rows in float32 one after another, in the model's order of its n-grams (the
character n-grams by length then position, then the word n-grams likewise), which is what the
EmbeddingBag does; a sum in another order or precision would differ in the last bits, and a
probability printed to six decimals would then change now and then.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np

from toolkit.plugins.ngram_hash import HASH_BASE, HASH_MODULUS, WORD_SALT, checked_word_tables

#: The weights' names, as the torch model's state_dict has them.
TABLE, BIAS = "bag.weight", "bias"


@cache
def _powers(count: int) -> np.ndarray:
    """HASH_BASE^k mod HASH_MODULUS for k < count (int64)."""
    values = [1]
    for _ in range(count - 1):
        values.append(values[-1] * HASH_BASE % HASH_MODULUS)
    return np.asarray(values, dtype=np.int64)


class Segments:
    """Items laid end to end, `counts[t]` of them for text t: each item's text and offset in it."""

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = counts
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self.text = np.repeat(np.arange(len(counts)), counts)
        self.offset = np.arange(int(self.ends[-1]) if len(counts) else 0) - self.starts[self.text]
        #: How many items from each one to the end of its text, itself included.
        self.left = counts[self.text] - self.offset


class NgramArrays:
    """`NgramModel` with `dim=0` (the rows are the class scores) as numpy arrays."""

    def __init__(self, vocab_size: int, num_classes: int, buckets: int, min_n: int, max_n: int,
                 pooling: str, symbols: Sequence[str] | None = None, word_order: int = 0) -> None:
        self.vocab_size, self.buckets = vocab_size, buckets
        self.min_n, self.max_n, self.pooling, self.word_order = min_n, max_n, pooling, word_order
        #: The weights read, by name and shape (checked against the file before `load`).
        self.shapes: dict[str, tuple[int, ...]] = {TABLE: (buckets, num_classes), BIAS: (num_classes,)}
        if word_order:
            word, solo, fold = checked_word_tables(symbols, vocab_size)
            self.word_char, self.solo_char = np.asarray(word, dtype=bool), np.asarray(solo, dtype=bool)
            self.folded = np.asarray(fold, dtype=np.int64)

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        self.table = np.ascontiguousarray(weights[TABLE], dtype=np.float32)
        self.bias = np.asarray(weights[BIAS], dtype=np.float32)

    def logits(self, indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(texts, classes) float32 logits of padded character indices, as `NgramModel.forward`."""
        from scipy.sparse import csr_matrix

        indices, lengths = np.asarray(indices, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        if not len(lengths):
            return np.zeros((0, len(self.bias)), dtype=np.float32)
        order = np.argsort(lengths, kind="stable")  # texts of one length side by side (`char_ids`)
        data, ids, indptr = self.pooling_matrix(indices[order], lengths[order])
        pooled = csr_matrix((data, ids, indptr), shape=(len(lengths), self.buckets)) @ self.table
        if self.pooling == "mean":  # the bag's mean: the sum divided by the count (not times 1 / count)
            pooled /= np.maximum(np.diff(indptr), 1).astype(np.float32)[:, None]
        result = np.empty_like(pooled)
        result[order] = pooled + self.bias
        return result

    def pooling_matrix(
        self, indices: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(data, indices, indptr) of the CSR matrix of each text's n-gram rows and their pooling
        weights (`weights`), each row's entries in the order the model sums them: its character
        n-grams', then its word n-grams'."""
        groups = [self.char_ids(indices, lengths)]
        if self.word_order:
            groups.append(self.word_ids(indices[np.arange(indices.shape[1]) < lengths[:, None]], lengths))
        ids, indptr = _side_by_side(groups)
        return self.weights(np.stack([count for _, count in groups], axis=1)), ids, indptr

    def weights(self, counts: np.ndarray) -> np.ndarray:
        """Each entry's weight in float32 from each text's count in each group: `sqrt` pooling's as
        `NgramModel.pooling_weights` computes it (1 over the square root of its group's count); 1
        for `mean`, divided after the sum."""
        if self.pooling == "mean":
            return np.ones(int(counts.sum()), dtype=np.float32)
        each = np.float32(1) / np.sqrt(np.maximum(counts, 1).astype(np.float32))
        return np.repeat(each.ravel(), counts.ravel())

    def char_ids(self, indices: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The character n-gram ids of the boundary-marked texts, text by text, each text's by n
        and then position; and how many each text has. Texts of one length (sorted by length, all
        of them) have their n-grams computed at once, as a rectangle.

        The model's code of a window w_0..w_(n-1) is (n B^n + sum w_k B^(n-1-k)) mod M, computed
        with one modulo or a modulo per character (the same residue); here from the window one
        shorter, a modulo per n: code_n = (B code_(n-1) + B^n + w_(n-1)) mod M, every value below
        2^52."""
        counts = sum(np.maximum(lengths + 3 - n, 0) for n in range(self.min_n, self.max_n + 1))
        if not len(lengths):
            return np.zeros(0, dtype=np.int32), counts
        powers = _powers(self.max_n + 1)
        bounds = [0, *(np.flatnonzero(np.diff(lengths)) + 1).tolist(), len(lengths)]
        pieces = []
        for first, end in itertools.pairwise(bounds):
            length = int(lengths[first])
            marked = np.empty((end - first, length + 2), dtype=np.int64)
            marked[:, 0], marked[:, -1] = self.vocab_size, self.vocab_size + 1
            marked[:, 1:-1] = indices[first:end, :length]
            block = np.empty((end - first, int(counts[first])), dtype=np.int32)
            code, column = np.zeros_like(marked), 0
            for n in range(1, min(self.max_n, length + 2) + 1):
                width = length + 3 - n
                code = code[:, :width] * np.int64(HASH_BASE)
                code += marked[:, n - 1:n - 1 + width]
                code += powers[n]
                code %= HASH_MODULUS
                if n >= self.min_n:
                    block[:, column:column + width] = code
                    column += width
            block %= np.int32(self.buckets - 1)
            block += 1
            pieces.append(block.ravel())
        return np.concatenate(pieces), counts

    def word_ids(self, chars: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The word 1..word_order-gram ids of the texts (their characters `chars` end to end), as
        `char_ids` gives the character n-grams'."""
        spans = Segments(lengths)
        in_word, solo = self.word_char[chars], self.solo_char[chars]
        first = spans.offset == 0
        previous_in_word = np.concatenate([[False], in_word[:-1]]) & ~first
        previous_solo = np.concatenate([[False], solo[:-1]]) & ~first
        starts = in_word & (~previous_in_word | solo | previous_solo)
        # Each character's word (counted over all texts) and its offset from the word's start.
        number = np.cumsum(starts) - 1
        inside = np.flatnonzero(in_word)
        offsets = spans.offset[inside] - spans.offset[starts][number[inside]]
        powers = _powers(int(lengths.max(initial=1)))
        terms = (self.folded[chars[inside]] + 1) * powers[offsets] % HASH_MODULUS
        firsts = np.flatnonzero(starts[inside])
        hashes = np.add.reduceat(terms, firsts) % HASH_MODULUS if len(firsts) else terms[:0]
        words = Segments(np.bincount(spans.text[starts], minlength=len(lengths)))
        pieces, before = [], np.zeros(len(lengths), dtype=np.int64)
        for n in range(1, self.word_order + 1):
            width = len(hashes) - n + 1
            if width <= 0:
                break
            code = np.full(width, WORD_SALT + n, dtype=np.int64)
            for k in range(n):
                code = (code * HASH_BASE + hashes[k:k + width]) % HASH_MODULUS
            filled = words.left[:width] >= n
            texts = words.text[:width][filled]
            pieces.append((texts, before[texts] + words.offset[:width][filled],
                           _bucket(code[filled], self.buckets)))
            before += np.maximum(words.counts - n + 1, 0)
        starts = np.cumsum(before) - before
        ids = np.empty(int(before.sum()), dtype=np.int32)
        for texts, offsets, values in pieces:
            ids[starts[texts] + offsets] = values
        return ids, before


def _side_by_side(groups: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, indptr) of rows made of each group's row in turn; a group is its ids, row by row,
    and each row's count."""
    counts = sum(count for _, count in groups)
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    if len(groups) == 1:
        return groups[0][0], indptr
    ids = np.empty(int(indptr[-1]), dtype=np.int32)
    before = indptr[:-1].copy()
    for values, count in groups:
        entries = Segments(count)
        ids[before[entries.text] + entries.offset] = values
        before += count
    return ids, indptr


def _bucket(codes: np.ndarray, buckets: int) -> np.ndarray:
    """The table row of each hash code (below HASH_MODULUS), as `NgramModel`: 1 + code mod
    (buckets - 1), in int32 (MAX_BUCKETS < 2^31), whose modulo is faster than int64's."""
    rows = codes.astype(np.int32)
    rows %= np.int32(buckets - 1)
    rows += 1
    return rows

"""`ngram`: a linear model over hashed character n-grams (fastText's idea, on characters).

Each text is read as `<` + its characters + `>`, so n-grams at the start and end of a word
differ from the same letters inside it. Every n-gram of `min_n` to `max_n` characters is
hashed into one of `buckets` rows of an `nn.EmbeddingBag`; the text's features are the sum
of its character n-grams' rows over the square root of their count, plus the same for its
word n-grams (`pooling=sqrt`: each group's weights have an L2 norm of 1, as the rows of
TF-IDF character and word features side by side do, so words count as much as characters
and a longer text scores more surely), or the mean of all (`pooling=mean`).
With `dim=0` the rows are the class scores themselves (a linear
model, like TF-IDF + logistic regression); otherwise a Linear layer (after an optional
hidden layer) reads them. The n-grams are hashed inside the model from the character
indices every built-in model reads, so the model shares the `onehot` encoder with the
others and can sit in an ensemble beside them.

With `word_ngrams` on, the words of the text and their 2..N-word sequences are hashed into the
same table (fastText's `wordNgrams`), lower-cased. What a word is, read from the encoder's
`symbols` (which character each index is):
- a run of letters, digits, marks, `_`, apostrophes and the symbols `+ # &` ("C++", "C#",
  "AT&T", "don't" and "3D" are one word each; unknown characters count as letters);
- everything else separates words: white space and the other punctuation ("state-of-the-art"
  is four words, "3.5" two, "e-mail" two);
- a Chinese or Japanese character (CJK ideographs, kana) is a word by itself, as these
  languages write no spaces.
Padding is never part of a word. The hashes are plain integer arithmetic, so the same text
gets the same ids in every process and on every machine.

The table is large (2^18 rows by default) but a batch touches a few thousand rows, so the
embedding is sparse: the trainer gives it Adam's sparse update, which changes only those rows.
The n-gram ids of a text never change, so the model offers them to the trainer to compute
once per run (`precompute`, `forward_precomputed`; docs/writing-plugins.md) instead of per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

import toolkit
from toolkit.plugins.ngram import NgramConfig
from toolkit.plugins.ngram_hash import (  # noqa: F401  (JOINERS, SOLO_RANGES, is_solo: imported from here)
    HASH_BASE,
    HASH_MODULUS,
    JOINERS,
    ONE_MODULO_VOCABULARY,
    SOLO_RANGES,
    WORD_SALT,
    checked_word_tables,
    is_solo,
    word_tables,
)

#: Longest text there is (train.max_length's upper bound): an exported graph holds the powers of
#: the hash base for every offset inside a word of it.
LONGEST_TEXT = 10_000
#: One table of powers per device, grown to the widest batch seen (at most train.max_length).
_POWER_TABLES: dict[torch.device, torch.Tensor] = {}


def _powers(count: int, device: torch.device) -> torch.Tensor:
    """HASH_BASE^k mod HASH_MODULUS for k < count."""
    table = _POWER_TABLES.get(device)
    if table is None or len(table) < count:
        values = [1]
        for _ in range(count - 1):
            values.append(values[-1] * HASH_BASE % HASH_MODULUS)
        table = _POWER_TABLES[device] = torch.tensor(values, dtype=torch.long, device=device)
    return table[:count]


class NgramModel(nn.Module):
    """Mean of hashed character n-gram embeddings (boundary markers added) -> class scores."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        config: NgramConfig | None = None,
        symbols: Sequence[str] | None = None,
        word_order: int = 0,
    ) -> None:
        super().__init__()
        config = config or NgramConfig()
        if vocab_size < 2 or num_classes < 2:
            raise toolkit.ToolkitError(
                f"model 'ngram' needs a vocabulary and two classes; got vocab_size={vocab_size}, "
                f"classes={num_classes}."
            )
        buckets, dim, hidden, dropout = config.buckets, config.dim, config.hidden, config.dropout
        self.vocab_size, self.buckets = vocab_size, buckets
        self.min_n, self.max_n = config.min_n, config.max_n
        width = dim or num_classes
        self.pooling = config.pooling
        self.bag = nn.EmbeddingBag(
            buckets, width, mode="mean" if self.pooling == "mean" else "sum", sparse=True,
            padding_idx=toolkit.PAD,
        )
        nn.init.zeros_(self.bag.weight) if dim == 0 else nn.init.uniform_(self.bag.weight, -1 / dim, 1 / dim)
        layers: list[nn.Module] = []
        if dim:
            layers.append(nn.Dropout(dropout))
            if hidden:
                layers += [nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout)]
            layers.append(nn.Linear(hidden or dim, num_classes))
            self.bias = None
        else:
            self.bias = nn.Parameter(torch.zeros(num_classes))
        self.head = nn.Sequential(*layers)
        self.word_order = word_order
        if word_order:
            word, solo, fold = checked_word_tables(symbols, vocab_size)
            # Derived from the encoder's alphabet, which the run saves: not saved with the weights.
            self.register_buffer("word_char", torch.tensor(word), persistent=False)
            self.register_buffer("solo_char", torch.tensor(solo), persistent=False)
            self.register_buffer("folded", torch.tensor(fold, dtype=torch.long), persistent=False)

    def ngram_ids(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, n-gram slots) bucket ids, the character n-grams' and then the word n-grams';
        the padding index, `toolkit.PAD`, stands for "no n-gram" in a slot the text does not fill."""
        return torch.cat(self._id_groups(indices, lengths), dim=1)

    def _id_groups(self, indices: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        groups = [self.char_ids(indices, lengths)]
        if self.word_order:
            groups.append(self.word_ids(indices, lengths))
        return groups

    def char_ids(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, character n-gram slots) bucket ids of the boundary-marked text; PAD in the
        slots a text does not fill."""
        batch, steps = indices.shape
        start, end = self.vocab_size, self.vocab_size + 1  # boundary markers, after the alphabet
        marked = indices.new_zeros(batch, steps + 2)
        marked[:, 1:steps + 1] = indices
        marked[:, 0] = start
        marked.scatter_(1, (lengths + 1).unsqueeze(1), end)
        marked_lengths = (lengths + 2).unsqueeze(1)
        ids = []
        powers = _powers(self.max_n + 1, indices.device)
        # Every n, even one longer than the batch's texts (its windows are empty): a traced graph
        # must not depend on the width of the batch it was traced with.
        for n in range(self.min_n, self.max_n + 1):
            # The windows' k-th characters, as slices (an exported graph has no unfold).
            windows = [marked[:, k:k - n + 1 if k < n - 1 else None] for k in range(n)]
            if self.vocab_size + 2 <= ONE_MODULO_VOCABULARY:
                # (((n * B + w0) * B + w1) ... ) mod M in one modulo: n * B^n plus each w_k * B^(n-1-k),
                # the powers reduced mod M, is below 9 * 2^24 * 2^31 < 2^63.
                code = torch.full_like(windows[0], n * int(powers[n]))
                for k, window in enumerate(windows):
                    code = code + window * int(powers[n - 1 - k])
                code = code % HASH_MODULUS
            else:
                code = torch.full_like(windows[0], n)
                for window in windows:
                    code = (code * HASH_BASE + window) % HASH_MODULUS
            inside = torch.arange(code.shape[1], device=indices.device) + n <= marked_lengths
            ids.append(torch.where(inside, code % (self.buckets - 1) + 1, toolkit.PAD))
        return torch.cat(ids, dim=1)

    def word_ids(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, word n-gram slots) bucket ids of the text's word 1..word_order-grams; PAD in
        the slots a text does not fill."""
        batch, steps = indices.shape
        device = indices.device
        positions = torch.arange(steps, device=device)
        inside = positions < lengths.unsqueeze(1)
        in_word = self.word_char[indices] & inside
        solo = self.solo_char[indices] & inside
        before = torch.zeros_like(in_word[:, :1])
        starts = in_word & ~torch.cat([before, in_word[:, :-1]], 1)
        starts = starts | (in_word & (solo | torch.cat([before, solo[:, :-1]], 1)))
        number = starts.long().cumsum(1) - 1  # which word of its text each character is in
        count = starts.long().sum(1)
        tracing = torch.jit.is_tracing()  # exporting: no shape may depend on the values
        words = steps if tracing else max(int(count.max()), 1) if batch else 1
        # A word's hash is sum over its characters of (folded index + 1) * BASE^offset, mod the prime.
        # Each character's offset from its word's start, gathered from the starts (ONNX has no cummax).
        starts_at = torch.zeros(batch, words + 1, dtype=torch.long, device=device).scatter_(
            1, torch.where(starts, number, words), positions.expand(batch, steps)
        )
        offsets = (positions - starts_at.gather(1, number.clamp(min=0))).clamp(min=0)
        # An exported graph keeps the table as a constant: one for the longest text there is.
        power = _powers(LONGEST_TEXT if tracing else steps, device)[offsets]
        terms = (self.folded[indices] + 1) * power % HASH_MODULUS
        slots = torch.where(in_word, number, words)  # characters outside words go to a spare slot
        sums = torch.zeros(batch, words + 1, dtype=torch.long, device=device)
        hashes = sums.scatter_add_(1, slots, torch.where(in_word, terms, 0))[:, :words] % HASH_MODULUS
        ids = []
        for n in range(1, (self.word_order if tracing else min(self.word_order, words)) + 1):
            spans = [hashes[:, k:k - n + 1 if k < n - 1 else None] for k in range(n)]
            code = torch.full_like(spans[0], WORD_SALT + n)
            for span in spans:
                code = (code * HASH_BASE + span) % HASH_MODULUS
            filled = torch.arange(code.shape[1], device=device) + n <= count.unsqueeze(1)
            ids.append(torch.where(filled, code % (self.buckets - 1) + 1, toolkit.PAD))
        return torch.cat(ids, dim=1)

    def pooling_weights(self, groups: list[torch.Tensor]) -> torch.Tensor:
        """(batch, n-gram slots) weight of each n-gram's row in the text's features: 0 for PAD;
        `mean`: 1 over the text's n-grams; `sqrt`: character and word n-grams each weighted to an
        L2 norm of 1, side by side."""
        if self.pooling == "mean":
            groups = [torch.cat(groups, dim=1)]
        weights = []
        for ids in groups:
            real = (ids != toolkit.PAD).to(self.bag.weight.dtype)
            count = real.sum(1, keepdim=True).clamp(min=1)
            weights.append(real / (count if self.pooling == "mean" else count.sqrt()))
        return torch.cat(weights, dim=1)

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores from the pooled (batch, width) features."""
        if self.bias is not None:
            return features + self.bias
        return self.head(features)

    def precompute(self, indices: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each group's bucket ids (characters', then words'), the real ones of a text moved to the
        front in their order and PAD after them, as int32 (fewer bytes; ids < MAX_BUCKETS)."""
        return tuple(_left_aligned(ids).int() for ids in self._id_groups(indices, lengths))

    def forward_precomputed(self, *groups: torch.Tensor) -> torch.Tensor:
        """The logits for `precompute`'s ids: the same as `forward` for those texts."""
        return self._scores(list(groups))

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._scores(self._id_groups(indices, lengths))

    def row_bag(self) -> toolkit.RowBag:
        """The bag's table, its ids and weights for `precompute`'s tensors, and the rest of the
        model (`scores`): what the trainer's compiled step reads (`train.engine`)."""
        return toolkit.RowBag(
            table=self.bag.weight, bags=self._weighted_ids, head=self.scores, bias=self.bias,
        )

    def _weighted_ids(self, *groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [group.long() for group in groups]
        return torch.cat(ids, dim=1), self.pooling_weights(ids)

    def _scores(self, groups: list[torch.Tensor]) -> torch.Tensor:
        if self.pooling == "mean":
            features = self.bag(torch.cat(groups, dim=1))
        else:
            features = self.bag(torch.cat(groups, dim=1), per_sample_weights=self.pooling_weights(groups))
        return self.scores(features)

    def onnx_form(self) -> nn.Module:
        """The model as `toolkit export` traces it: the same scores, pooled by a gather and a
        weighted sum (ONNX has no EmbeddingBag; a Gather of the table is what int8 quantizes)."""
        return NgramGraph(self)


class NgramGraph(nn.Module):
    """`NgramModel`'s forward for an ONNX graph: the hashing inside it, a plain gather of the rows."""

    def __init__(self, model: NgramModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        groups = self.model._id_groups(indices, lengths)
        rows = self.model.bag.weight[torch.cat(groups, dim=1)]  # (batch, n-gram slots, width)
        features = (rows * self.model.pooling_weights(groups).unsqueeze(2)).sum(1)
        return self.model.scores(features)


def _left_aligned(ids: torch.Tensor) -> torch.Tensor:
    """`ids` with each row's non-PAD values first, in their order, trimmed to the fullest row.
    The bag skips PAD, so it sums the same rows in the same order."""
    order = torch.sort((ids == toolkit.PAD).to(torch.uint8), dim=1, stable=True).indices
    width = int((ids != toolkit.PAD).sum(1).max()) if len(ids) else 0
    return ids.gather(1, order)[:, :width]

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
embedding is sparse: the trainer gives it SparseAdam, which updates only those rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

import toolkit
from toolkit.plugins.ngram import NgramConfig

#: Polynomial rolling hash modulo the Mersenne prime 2^31 - 1: every intermediate value
#: stays below 2^62, so the int64 arithmetic never overflows and the hash is the same on
#: every machine (Python's hash() is salted per process).
HASH_MODULUS = 2**31 - 1
HASH_BASE = 1_000_003
#: Up to this many symbols (boundary markers included), a character n-gram is hashed with one modulo.
ONE_MODULO_VOCABULARY = 2**24
#: Added to a word n-gram's length before hashing, so a word n-gram's code never starts like a
#: character n-gram's (whose codes start from their length, 1 to 8).
WORD_SALT = 1_000
#: Characters that join letters into one word ("C++", "C#", "AT&T", "don't").
JOINERS = frozenset("_'’+#&")
#: Code point ranges whose characters are each a word: CJK ideographs, Hiragana and Katakana.
SOLO_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FFFF))


def is_solo(char: str) -> bool:
    """Whether `char` is a word by itself (a CJK ideograph or kana)."""
    point = ord(char)
    return any(low <= point <= high for low, high in SOLO_RANGES)


def word_tables(symbols: Sequence[str]) -> tuple[list[bool], list[bool], list[int]]:
    """For each index: is it part of a word, is it a word by itself, and the index of its lower
    case (itself when the lower case is not in the alphabet). An index with no symbol ("", an
    unknown character) counts as a letter; padding never does."""
    index = {char: i for i, char in enumerate(symbols) if char}
    word = [i != toolkit.PAD and (char == "" or char.isalnum() or char in JOINERS or is_solo(char))
            for i, char in enumerate(symbols)]
    solo = [char != "" and is_solo(char) for char in symbols]
    fold = [index.get(char.lower(), i) if char else i for i, char in enumerate(symbols)]
    return word, solo, fold


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
            if symbols is None or len(symbols) != vocab_size:
                raise toolkit.ToolkitError(
                    f"model 'ngram' reads words from the encoder's symbols, one per index; got "
                    f"{'none' if symbols is None else len(symbols)} for vocab_size={vocab_size}."
                )
            word, solo, fold = word_tables(symbols)
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
        for n in range(self.min_n, min(self.max_n, steps + 2) + 1):
            windows = marked.unfold(1, n, 1)  # (batch, positions, n)
            if self.vocab_size + 2 <= ONE_MODULO_VOCABULARY:
                # (((n * B + w0) * B + w1) ... ) mod M in one modulo: n * B^n plus each w_k * B^(n-1-k),
                # the powers reduced mod M, is below 9 * 2^24 * 2^31 < 2^63.
                code = (windows * powers[:n].flip(0)).sum(2).add_(n * int(powers[n])) % HASH_MODULUS
            else:
                code = torch.full(windows.shape[:2], n, dtype=torch.long, device=indices.device)
                for k in range(n):
                    code = (code * HASH_BASE + windows[..., k]) % HASH_MODULUS
            inside = torch.arange(windows.shape[1], device=indices.device) + n <= marked_lengths
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
        starts |= in_word & (solo | torch.cat([before, solo[:, :-1]], 1))
        number = starts.cumsum(1) - 1  # which word of its text each character is in
        count = starts.sum(1)
        words = max(int(count.max()), 1) if batch else 1
        # A word's hash is sum over its characters of (folded index + 1) * BASE^offset, mod the prime.
        first = torch.where(starts, positions, 0).cummax(1).values
        terms = (self.folded[indices] + 1) * _powers(steps, device)[positions - first] % HASH_MODULUS
        slots = torch.where(in_word, number, words)  # characters outside words go to a spare slot
        sums = torch.zeros(batch, words + 1, dtype=torch.long, device=device)
        hashes = sums.scatter_add_(1, slots, torch.where(in_word, terms, 0))[:, :words] % HASH_MODULUS
        ids = []
        for n in range(1, min(self.word_order, words) + 1):
            spans = words - n + 1
            code = torch.full((batch, spans), WORD_SALT + n, dtype=torch.long, device=device)
            for k in range(n):
                code = (code * HASH_BASE + hashes[:, k:k + spans]) % HASH_MODULUS
            filled = torch.arange(spans, device=device) + n <= count.unsqueeze(1)
            ids.append(torch.where(filled, code % (self.buckets - 1) + 1, toolkit.PAD))
        return torch.cat(ids, dim=1)

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        groups = self._id_groups(indices, lengths)
        if self.pooling == "mean":
            features = self.bag(torch.cat(groups, dim=1))
        else:  # character and word n-grams each weighted to an L2 norm of 1, side by side
            weights = []
            for ids in groups:
                real = (ids != toolkit.PAD).to(self.bag.weight.dtype)
                weights.append(real / real.sum(1, keepdim=True).clamp(min=1).sqrt())
            features = self.bag(torch.cat(groups, dim=1), per_sample_weights=torch.cat(weights, dim=1))
        if self.bias is not None:
            return features + self.bias
        return self.head(features)

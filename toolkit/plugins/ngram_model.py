"""`ngram`: a linear model over hashed character n-grams (fastText's idea, on characters).

Each text is read as `<` + its characters + `>`, so n-grams at the start and end of a word
differ from the same letters inside it. Every n-gram of `min_n` to `max_n` characters is
hashed into one of `buckets` rows of an `nn.EmbeddingBag`; the text's features are the mean
of its n-grams' rows. With `dim=0` the rows are the class scores themselves (a linear
model, like TF-IDF + logistic regression); otherwise a Linear layer (after an optional
hidden layer) reads them. The n-grams are hashed inside the model from the character
indices every built-in model reads, so the model shares the `onehot` encoder with the
others and can sit in an ensemble beside them.

The table is large (2^18 rows by default) but a batch touches a few thousand rows, so the
embedding is sparse: the trainer gives it SparseAdam, which updates only those rows.
"""

from __future__ import annotations

import torch
from torch import nn

import toolkit
from toolkit.plugins.ngram import NgramConfig

#: Polynomial rolling hash modulo the Mersenne prime 2^31 - 1: every intermediate value
#: stays below 2^62, so the int64 arithmetic never overflows and the hash is the same on
#: every machine (Python's hash() is salted per process).
HASH_MODULUS = 2**31 - 1
HASH_BASE = 1_000_003


class NgramModel(nn.Module):
    """Mean of hashed character n-gram embeddings (boundary markers added) -> class scores."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        config: NgramConfig | None = None,
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
        self.bag = nn.EmbeddingBag(buckets, width, mode="mean", sparse=True, padding_idx=toolkit.PAD)
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

    def ngram_ids(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, n-gram slots) bucket ids; the padding index, `toolkit.PAD`, stands for "no
        n-gram" in a slot the text does not fill."""
        batch, steps = indices.shape
        start, end = self.vocab_size, self.vocab_size + 1  # boundary markers, after the alphabet
        marked = indices.new_zeros(batch, steps + 2)
        marked[:, 1:steps + 1] = indices
        marked[:, 0] = start
        marked.scatter_(1, (lengths + 1).unsqueeze(1), end)
        marked_lengths = (lengths + 2).unsqueeze(1)
        ids = []
        for n in range(self.min_n, min(self.max_n, steps + 2) + 1):
            windows = marked.unfold(1, n, 1)  # (batch, positions, n)
            code = torch.full(windows.shape[:2], n, dtype=torch.long, device=indices.device)
            for k in range(n):
                code = (code * HASH_BASE + windows[..., k]) % HASH_MODULUS
            inside = torch.arange(windows.shape[1], device=indices.device) + n <= marked_lengths
            ids.append(torch.where(inside, code % (self.buckets - 1) + 1, toolkit.PAD))
        return torch.cat(ids, dim=1)

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features = self.bag(self.ngram_ids(indices, lengths))
        if self.bias is not None:
            return features + self.bias
        return self.head(features)

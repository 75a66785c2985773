"""The `onehot` character encoder: each character becomes an index into an alphabet.

Index 0 is padding and index 1 the out-of-vocabulary bucket (shown as `_`), so an unseen
character neither crashes nor silently disappears. Models get padded index batches with
lengths; a model that wants one-hot vectors applies `torch.nn.functional.one_hot`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

import torch

import toolkit

TUTORIAL_ALPHABET = string.ascii_letters + " .,;'"
PAD, OOV = 0, 1
OOV_SYMBOL = "_"


class OneHotEncoder:
    """Characters to indices over a fixed alphabet, or one learned from the training texts."""

    produces = toolkit.CHAR_INDICES

    def __init__(self, alphabet: str = TUTORIAL_ALPHABET) -> None:
        self.learn = alphabet == "auto"
        self.alphabet = "" if self.learn else _unique(alphabet)
        self._index = self._build_index()

    def _build_index(self) -> dict[str, int]:
        return {char: i + 2 for i, char in enumerate(self.alphabet)}

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 2

    def fit(self, texts: Sequence[str]) -> None:
        """Learn the alphabet from `texts` when the alphabet is 'auto'; otherwise keep it."""
        if self.learn:
            self.alphabet = "".join(sorted({char for text in texts for char in text}))
            self._index = self._build_index()

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([max(len(t), 1) for t in texts], dtype=torch.long)
        indices = torch.full((len(texts), int(lengths.max()) if len(texts) else 0), PAD)
        for row, text in enumerate(texts):
            codes = [self._index.get(char, OOV) for char in text] or [OOV]
            indices[row, : len(codes)] = torch.tensor(codes)
        return indices, lengths

    def decode(self, indices: Sequence[int]) -> str:
        """The text for a row of indices (padding dropped, unknown characters as `_`)."""
        symbols = {i: char for char, i in self._index.items()} | {OOV: OOV_SYMBOL}
        return "".join(symbols[int(i)] for i in indices if int(i) != PAD)

    def state(self) -> dict[str, Any]:
        return {"alphabet": self.alphabet, "pad": PAD, "oov": OOV, "oov_symbol": OOV_SYMBOL}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.learn = False
        self.alphabet = str(state["alphabet"])
        self._index = self._build_index()


def _unique(alphabet: str) -> str:
    return "".join(dict.fromkeys(alphabet))


@toolkit.hookimpl
def register_encoders(register) -> None:
    register(
        toolkit.EncoderSpec(
            name="onehot",
            help="Characters as indices into an alphabet (one-hot for models that want it).",
            factory=OneHotEncoder,
            params=(
                toolkit.Param(
                    "alphabet", str, TUTORIAL_ALPHABET,
                    "Characters to keep; others go to the '_' bucket. "
                    "'auto' learns the alphabet from the training texts.",
                ),
            ),
        )
    )

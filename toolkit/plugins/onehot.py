"""The `onehot` character encoder: each character becomes an index into an alphabet.

Index 0 is padding and index 1 the out-of-vocabulary bucket (shown as `_`), so an unseen
character neither crashes nor silently disappears. Models get padded index batches with
lengths; a model that wants one-hot vectors applies `torch.nn.functional.one_hot` with
`vocab_size` classes. The alphabet is the encoder's whole state, saved with the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import toolkit

if TYPE_CHECKING:  # torch loads when texts are encoded, so the command line starts fast
    import torch

OOV = 1
OOV_SYMBOL = "_"
LEARN = "auto"


class OneHotEncoder:
    """Characters to indices over a fixed alphabet, or one learned from the training texts."""

    produces = toolkit.CHAR_INDICES

    def __init__(self, alphabet: str = toolkit.TUTORIAL_ALPHABET) -> None:
        if not alphabet:
            raise toolkit.ToolkitError(
                "encoder 'onehot' got an empty alphabet; give the characters to keep "
                f"or '{LEARN}' to learn them from the training texts."
            )
        self.learn = alphabet == LEARN
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
        """Padded indices (batch, longest) and lengths; an empty text is one unknown character,
        so every sequence has at least one step."""
        import torch

        rows = [[self._index.get(char, OOV) for char in text] or [OOV] for text in texts]
        lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
        longest = int(lengths.max()) if rows else 0
        indices = torch.full((len(rows), longest), toolkit.PAD, dtype=torch.long)
        filled = torch.arange(longest) < lengths.unsqueeze(1)
        indices[filled] = torch.tensor([code for row in rows for code in row], dtype=torch.long)
        return indices, lengths

    def decode(self, indices: Sequence[int]) -> str:
        """The text for a row of indices (padding dropped, unknown characters as `_`)."""
        symbols = {i: char for char, i in self._index.items()} | {OOV: OOV_SYMBOL}
        return "".join(symbols.get(int(i), OOV_SYMBOL) for i in indices if int(i) != toolkit.PAD)

    def state(self) -> dict[str, Any]:
        if self.learn and not self.alphabet:
            raise toolkit.ToolkitError(
                "encoder 'onehot' has not learned its alphabet yet; call fit(texts) before state()."
            )
        return {"alphabet": self.alphabet, "pad": toolkit.PAD, "oov": OOV, "oov_symbol": OOV_SYMBOL}

    def load_state(self, state: Mapping[str, Any]) -> None:
        alphabet = state.get("alphabet") if isinstance(state, Mapping) else None
        if not isinstance(alphabet, str) or not alphabet:
            raise toolkit.ToolkitError(
                "the saved onehot encoder state has no alphabet; the file is damaged or "
                "was written by a different encoder."
            )
        if (state.get("pad", toolkit.PAD), state.get("oov", OOV)) != (toolkit.PAD, OOV):
            raise toolkit.ToolkitError(
                f"the saved onehot encoder uses padding/unknown indices "
                f"{state.get('pad')}/{state.get('oov')}, but this version uses {toolkit.PAD}/{OOV}."
            )
        self.learn = False
        self.alphabet = _unique(alphabet)
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
                    "alphabet", str, toolkit.TUTORIAL_ALPHABET,
                    "Characters to keep; others go to the '_' bucket. "
                    f"'{LEARN}' learns the alphabet from the training texts.",
                ),
            ),
        )
    )

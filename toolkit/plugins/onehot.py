"""The `onehot` character encoder: each character becomes an index into an alphabet.

Index 0 is padding and index 1 the out-of-vocabulary bucket (shown as `_`), so an unseen
character neither crashes nor silently disappears. Models get padded index batches with
lengths; a model that wants one-hot vectors applies `torch.nn.functional.one_hot` with
`vocab_size` classes. `symbols` says which character each index stands for (models that read
words find word boundaries with it), and `words_per_text` is the median number of
whitespace-separated words in the training texts (models decide data-dependent defaults with
it). The alphabet and that median are the encoder's whole state, saved with the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import toolkit

if TYPE_CHECKING:  # torch loads when texts are encoded, so the command line starts fast
    import numpy as np
    import torch

OOV = 1
OOV_SYMBOL = "_"
#: Largest median words per text a saved state may claim (texts are bounded by their length).
MAX_WORDS_PER_TEXT = 1_000_000
LEARN = "auto"
ALPHABET = toolkit.Param(
    "alphabet", str, LEARN,
    f"Characters to keep; others go to the '_' bucket. '{LEARN}' learns the alphabet from the "
    "training texts (every character seen there); the tutorial's is "
    f"{toolkit.TUTORIAL_ALPHABET!r}.",
)


class OneHotEncoder:
    """Characters to indices over a fixed alphabet, or one learned from the training texts."""

    produces = toolkit.CHAR_INDICES

    def __init__(self, alphabet: str = ALPHABET.default) -> None:
        if not alphabet:
            raise toolkit.ToolkitError(
                "encoder 'onehot' got an empty alphabet; give the characters to keep "
                f"or '{LEARN}' to learn them from the training texts."
            )
        self.learn = alphabet == LEARN
        self.alphabet = "" if self.learn else _unique(alphabet)
        #: Median words per training text; None until fitted (and in runs saved before it existed).
        self.words_per_text: float | None = None
        self._index = self._build_index()

    def _build_index(self) -> dict[str, int]:
        import numpy as np

        index = {char: i + 2 for i, char in enumerate(self.alphabet)}
        # The same map as a table by code point, for one vectorised look-up (OOV beyond its end).
        self._table = np.full(max(map(ord, index), default=0) + 2, OOV, dtype=np.int64)
        self._table[[ord(char) for char in index]] = list(index.values())
        return index

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 2

    @property
    def symbols(self) -> tuple[str, ...]:
        """The character each index stands for; "" for padding and the unknown bucket."""
        return ("", "", *self.alphabet)

    def fit(self, texts: Sequence[str]) -> None:
        """Learn the alphabet from `texts` when the alphabet is 'auto', and the median number of
        words per text."""
        import numpy as np

        self.words_per_text = float(np.median([len(text.split()) for text in texts])) if texts else 0.0
        if self.learn:
            self.alphabet = "".join(sorted({char for text in texts for char in text}))
            self._index = self._build_index()

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded indices (batch, longest) and lengths; an empty text is one unknown character,
        so every sequence has at least one step."""
        import torch

        indices, lengths = self.encode_arrays(texts)
        return torch.from_numpy(indices), torch.from_numpy(lengths)

    def encode_arrays(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`encode`'s indices and lengths as int64 numpy arrays, without torch."""
        import numpy as np

        # Vectorised over all characters at once: no Python object per character or per text.
        texts = list(texts)
        empty = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) == 0
        texts = [text or OOV_SYMBOL for text in texts]  # a placeholder, set to OOV below
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        longest = int(lengths.max()) if len(texts) else 0
        joined = "".join(texts).encode("utf-32-le", errors="surrogatepass")
        points = np.frombuffer(joined, dtype=np.uint32)
        codes = self._table[np.minimum(points, len(self._table) - 1)]
        codes[(np.cumsum(lengths) - lengths)[empty]] = OOV
        indices = np.full((len(texts), longest), toolkit.PAD, dtype=np.int64)
        indices[np.arange(longest) < lengths[:, None]] = codes  # row-major: text by text
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
        state = {"alphabet": self.alphabet, "pad": toolkit.PAD, "oov": OOV, "oov_symbol": OOV_SYMBOL}
        if self.words_per_text is not None:
            state["words_per_text"] = self.words_per_text
        return state

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
        words = state.get("words_per_text")
        if words is not None and (isinstance(words, bool) or not isinstance(words, int | float)
                                  or not 0 <= words <= MAX_WORDS_PER_TEXT):
            raise toolkit.ToolkitError(
                f"the saved onehot encoder state has words_per_text={words!r}; it must be a number "
                f"from 0 to {MAX_WORDS_PER_TEXT}. The file is damaged."
            )
        self.learn = False
        self.alphabet = _unique(alphabet)
        self.words_per_text = None if words is None else float(words)
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
            params=(ALPHABET,),
        )
    )

"""`ngram`: a linear model over hashed character n-grams (fastText's idea, on characters).

The model is in `ngram_model.py`; this module registers it and imports that one (and
torch) only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import toolkit

#: Longest n-gram, in characters.
MAX_N = 8
#: Most rows of the hashed n-gram table.
MAX_BUCKETS = 2**24
POOLING = ("sqrt", "mean")
#: `word_ngrams` values: word 1..N-grams, "0" off, "auto" decided from the training texts.
AUTO = "auto"
WORD_NGRAMS = (AUTO, "0", "1", "2", "3")
#: What `word_ngrams=auto` becomes when the training texts have a median of two or more words.
AUTO_WORD_NGRAMS = 2


@dataclass(frozen=True)
class NgramConfig(toolkit.Config):
    """`ngram`'s parameters."""

    owner = "model 'ngram'"
    min_n: int = toolkit.param_field(
        1, "Shortest n-gram, in characters (markers count).", min=1, max=MAX_N,
        search=toolkit.Space.range(1, 2),
    )
    max_n: int = toolkit.param_field(
        4, "Longest n-gram, in characters (markers count).", min=1, max=MAX_N,
        search=toolkit.Space.range(3, 6),
    )
    buckets: int = toolkit.param_field(
        2**18, "Rows of the hashed n-gram table.", min=2, max=MAX_BUCKETS,
        search=toolkit.Space.choice(2**16, 2**18, 2**20),
    )
    dim: int = toolkit.param_field(
        0, "Embedding size; 0 makes the rows the class scores (linear).", min=0,
        max=toolkit.MAX_MODEL_WIDTH,
    )
    hidden: int = toolkit.param_field(
        0, "Units of a hidden ReLU layer after the mean (needs dim).", min=0, max=toolkit.MAX_MODEL_WIDTH,
    )
    dropout: float = toolkit.param_field(0.0, "Dropout on the mean embedding (needs dim).", min=0, below=1)
    pooling: str = toolkit.param_field(
        "sqrt", "How a text's n-gram rows are pooled: sqrt sums the character n-grams' rows over the "
        "square root of their count, and the word n-grams' likewise (each an L2 norm of 1, as TF-IDF "
        "rows); mean averages all of them.",
        choices=POOLING, search=toolkit.Space.choice(),
    )
    word_ngrams: str = toolkit.param_field(
        AUTO, "Hashed word 1..N-grams beside the character n-grams: 0 off; auto turns on word "
        f"1-{AUTO_WORD_NGRAMS}-grams when the training texts have a median of "
        f"{toolkit.SEVERAL_WORDS} or more words.",
        choices=WORD_NGRAMS, search=toolkit.Space.choice("0", "1", "2"),
    )

    def check(self) -> str | None:
        if self.min_n > self.max_n:
            return f"needs min_n <= max_n; got min_n={self.min_n}, max_n={self.max_n}"
        if self.hidden and not self.dim:
            return f"needs dim for a hidden layer; got dim=0, hidden={self.hidden}"
        return None


def word_order(setting: str, encoder: Any) -> int:
    """The longest word n-gram for `word_ngrams=setting` with this fitted encoder: 'auto' turns
    them on for texts of several words (`toolkit.reads_several_words`)."""
    if setting != AUTO:
        return int(setting)
    return AUTO_WORD_NGRAMS if toolkit.reads_several_words(encoder) else 0


def build_ngram(vocab_size: int, num_classes: int, encoder: Any = None, **params: Any) -> Any:
    from toolkit.plugins.ngram_model import NgramModel

    config = NgramConfig(**params)
    order, symbols = _words(config, encoder)
    return NgramModel(vocab_size, num_classes, config, symbols=symbols, word_order=order)


def build_ngram_arrays(vocab_size: int, num_classes: int, encoder: Any = None, **params: Any) -> Any:
    """The model's forward pass on numpy arrays (`toolkit.plugins.ngram_numpy`), for a linear
    `ngram` (dim=0); None for one with an embedding, whose Linear layers only torch computes."""
    config = NgramConfig(**params)
    if config.dim:
        return None
    from toolkit.plugins.ngram_numpy import NgramArrays

    order, symbols = _words(config, encoder)
    return NgramArrays(vocab_size, num_classes, config.buckets, config.min_n, config.max_n, config.pooling,
                       symbols, order)


def _words(config: NgramConfig, encoder: Any) -> tuple[int, Any]:
    """The longest word n-gram and the encoder's symbols words are read from (one line for word
    n-grams asked of an encoder without symbols)."""
    order = word_order(config.word_ngrams, encoder)
    symbols = getattr(encoder, "symbols", None)
    if order and symbols is None:
        if config.word_ngrams != AUTO:
            raise toolkit.ToolkitError(
                f"model 'ngram' with word_ngrams={config.word_ngrams} needs an encoder that says which "
                "character each index is (a `symbols` attribute, as 'onehot' has); use the onehot "
                "encoder or word_ngrams=0."
            )
        order = 0
    return order, symbols


@toolkit.hookimpl
def register_models(register) -> None:
    register(
        toolkit.ModelSpec(
            name="ngram",
            help="Hashed character n-grams (boundary-marked) and word n-grams, averaged (fastText-style).",
            factory=build_ngram,
            array_factory=build_ngram_arrays,
            config=NgramConfig,
            train_search={"lr": toolkit.Space.range(0.03, 1.0, log=True)},
            train_defaults={
                "epochs": 10, "batch_size": 256, "lr": 0.1, "label_smoothing": 0.0,
                "select": "accuracy", "patience": 3, "average": 0.5,
            },
        )
    )

"""`ngram`: a linear model over hashed character n-grams (fastText's idea, on characters).

The model is in `ngram_model.py`; this module registers it and imports that one (and
torch) only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from typing import Any

import toolkit


def build_ngram(vocab_size: int, num_classes: int, **params: Any) -> Any:
    from toolkit.plugins.ngram_model import NgramModel

    return NgramModel(vocab_size, num_classes, **params)


@toolkit.hookimpl
def register_models(register) -> None:
    register(
        toolkit.ModelSpec(
            name="ngram",
            help="Hashed character n-grams with word-boundary markers, averaged (fastText-style).",
            factory=build_ngram,
            params=(
                toolkit.Param("min_n", int, 1, "Shortest n-gram, in characters (markers count)."),
                toolkit.Param("max_n", int, 4, "Longest n-gram, in characters (markers count)."),
                toolkit.Param("buckets", int, 2**18, "Rows of the hashed n-gram table."),
                toolkit.Param("dim", int, 0, "Embedding size; 0 makes the rows the class scores (linear)."),
                toolkit.Param("hidden", int, 0, "Units of a hidden ReLU layer after the mean (needs dim)."),
                toolkit.Param("dropout", float, 0.0, "Dropout on the mean embedding (needs dim)."),
            ),
            train_defaults={
                "epochs": 10, "batch_size": 256, "lr": 0.3, "label_smoothing": 0.1,
                "select": "accuracy", "patience": 3,
            },
        )
    )

"""`cnn`: a character CNN with several kernel widths and max-pooling over time.

The model is in `cnn_model.py`; this module registers it and imports that one (and torch)
only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from typing import Any

import toolkit


def build_cnn(vocab_size: int, num_classes: int, **params: Any) -> Any:
    from toolkit.plugins.cnn_model import CharCNN

    return CharCNN(vocab_size, num_classes, **params)


@toolkit.hookimpl
def register_models(register) -> None:
    register(
        toolkit.ModelSpec(
            name="cnn",
            help="Character CNN: convolutions of several widths, max over time.",
            factory=build_cnn,
            params=(
                toolkit.Param("embedding_dim", int, 64, "Size of each character's learned embedding."),
                toolkit.Param("filters", int, 128, "Filters per kernel width."),
                toolkit.Param("kernels", str, "2,3,4,5", "Kernel widths, comma-separated."),
                toolkit.Param("dropout", float, 0.3, "Dropout before the classifier."),
            ),
            train_defaults={
                "epochs": 10, "lr": 0.002, "optimizer": "adamw", "weight_decay": 0.0001,
                "label_smoothing": 0.1, "select": "accuracy", "patience": 3,
            },
        )
    )

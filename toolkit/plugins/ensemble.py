"""`ensemble`: several registered models reading the same character indices, averaged.

The model is in `ensemble_model.py`; this module registers it and imports that one (and
torch) only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from typing import Any

import toolkit

COMBINE = ("probability", "log-probability")
TRAINING = ("separate", "joint")


def build_ensemble(vocab_size: int, num_classes: int, **params: Any) -> Any:
    from toolkit.plugins.ensemble_model import Ensemble

    return Ensemble(vocab_size, num_classes, **params)


@toolkit.hookimpl
def register_models(register) -> None:
    register(
        toolkit.ModelSpec(
            name="ensemble",
            help="Several models on the same characters, trained separately, probabilities averaged.",
            factory=build_ensemble,
            params=(
                toolkit.Param("members", str, "ngram,cnn", "Member models, comma-separated."),
                toolkit.Param("combine", str, "probability", "Average the members' probabilities "
                              "or their log-probabilities.", choices=COMBINE),
                toolkit.Param("training", str, "separate", "Train each member on its own, with its "
                              "own trainer defaults and early stopping, or all at once.", choices=TRAINING),
            ),
        )
    )

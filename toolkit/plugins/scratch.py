"""`scratch-rnn` and `scratch-gru`: recurrent cells written out by hand, step by step.

The models themselves are in `scratch_model.py`; this module registers them and imports
that one (and torch) only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import toolkit


@dataclass(frozen=True)
class ScratchGRUConfig(toolkit.Config):
    """`scratch-gru`'s parameters; `scratch-rnn` adds its nonlinearity."""

    owner = "model 'scratch-gru'"
    hidden_size: int = toolkit.param_field(
        128, "Units in the hidden state.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(64, 128, 256),
    )


@dataclass(frozen=True)
class ScratchRNNConfig(ScratchGRUConfig):
    """`scratch-rnn`'s parameters."""

    owner = "model 'scratch-rnn'"
    nonlinearity: str = toolkit.param_field(
        "tanh", "Applied to the new hidden state (the tutorial uses none).",
        choices=("none", "tanh", "sigmoid"), search=toolkit.Space.choice(),
    )


def check_sizes(model: str, vocab_size: int, num_classes: int) -> None:
    if vocab_size < 2 or num_classes < 2:
        raise toolkit.ToolkitError(
            f"model '{model}' needs a vocabulary and at least two classes; "
            f"got vocab_size={vocab_size}, num_classes={num_classes}."
        )


def build_scratch_rnn(vocab_size: int, num_classes: int, **params: Any) -> Any:
    from toolkit.plugins.scratch_model import ScratchRNN

    return ScratchRNN(vocab_size, num_classes, ScratchRNNConfig(**params))


def build_scratch_gru(vocab_size: int, num_classes: int, **params: Any) -> Any:
    from toolkit.plugins.scratch_model import ScratchGRU

    return ScratchGRU(vocab_size, num_classes, ScratchGRUConfig(**params))


def build_scratch_rnn_arrays(vocab_size: int, num_classes: int, **params: Any) -> Any:
    """scratch-rnn's forward pass on numpy arrays (`toolkit.plugins.scratch_numpy`)."""
    from toolkit.plugins.scratch_numpy import ScratchRNNArrays

    config = ScratchRNNConfig(**params)
    check_sizes("scratch-rnn", vocab_size, num_classes)
    return ScratchRNNArrays(vocab_size, num_classes, config.hidden_size, config.nonlinearity)


def build_scratch_gru_arrays(vocab_size: int, num_classes: int, **params: Any) -> Any:
    """scratch-gru's forward pass on numpy arrays (`toolkit.plugins.scratch_numpy`)."""
    from toolkit.plugins.scratch_numpy import ScratchGRUArrays

    check_sizes("scratch-gru", vocab_size, num_classes)
    return ScratchGRUArrays(vocab_size, num_classes, ScratchGRUConfig(**params).hidden_size)


@toolkit.hookimpl
def register_models(register) -> None:
    register(
        toolkit.ModelSpec(
            name="scratch-rnn",
            help="The tutorial's RNN cell (i2h, i2o on input+hidden), batched with a padding mask.",
            factory=build_scratch_rnn,
            array_factory=build_scratch_rnn_arrays,
            config=ScratchRNNConfig,
            # chosen by validation accuracy (docs/benchmarks.md): +0.9 points median test accuracy
            train_defaults={"epochs": 12, "label_smoothing": 0.1, "select": "accuracy"},
        )
    )
    register(
        toolkit.ModelSpec(
            name="scratch-gru",
            help="A GRU cell built from Linear layers (update gate, reset gate, candidate).",
            factory=build_scratch_gru,
            array_factory=build_scratch_gru_arrays,
            config=ScratchGRUConfig,
        )
    )

"""`gru`, `lstm` and `rnn`: PyTorch's recurrent layers over learned character embeddings.

The model is in `torch_rnn_model.py`; this module registers it and imports that one (and
torch) only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from typing import Any

import toolkit

HELPS = {
    "gru": "torch.nn.GRU over character embeddings (packed sequences).",
    "lstm": "torch.nn.LSTM over character embeddings (packed sequences).",
    "rnn": "torch.nn.RNN (tanh) over character embeddings (packed sequences).",
}


def _factory(cell: str):
    def build(vocab_size: int, num_classes: int, **params: Any) -> Any:
        from toolkit.plugins.torch_rnn_model import TorchRNN

        return TorchRNN(vocab_size, num_classes, cell=cell, **params)

    return build


def _params() -> tuple[toolkit.Param, ...]:
    return (
        toolkit.Param(
            "embedding_dim", int, 64,
            f"Size of each character's learned embedding (at most {toolkit.MAX_MODEL_WIDTH}).",
        ),
        toolkit.Param(
            "hidden_size", int, 128, f"Hidden units per direction (at most {toolkit.MAX_MODEL_WIDTH}).",
        ),
        toolkit.Param(
            "num_layers", int, 1, f"Stacked recurrent layers (at most {toolkit.MAX_MODEL_LAYERS}).",
        ),
        toolkit.Param("bidirectional", bool, True, "Read names in both directions."),
        toolkit.Param("dropout", float, 0.0, "Dropout between layers and before the classifier."),
        toolkit.Param(
            "pooling", str, "last", "Features for the classifier: the final hidden state, "
            "or that plus the max over positions.", choices=("last", "last+max"),
        ),
    )


@toolkit.hookimpl
def register_models(register) -> None:
    for cell, help_text in HELPS.items():
        register(toolkit.ModelSpec(name=cell, help=help_text, factory=_factory(cell), params=_params()))

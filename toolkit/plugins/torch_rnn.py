"""`gru`, `lstm` and `rnn`: PyTorch's recurrent layers over learned character embeddings.

The model is in `torch_rnn_model.py`, its forward pass on numpy arrays (what `toolkit predict`
uses by default) in `torch_rnn_numpy.py`; this module registers them and imports each only
when one is built (torch with the torch model), so the command line starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import toolkit

HELPS = {
    "gru": "torch.nn.GRU over character embeddings (packed sequences).",
    "lstm": "torch.nn.LSTM over character embeddings (packed sequences).",
    "rnn": "torch.nn.RNN (tanh) over character embeddings (packed sequences).",
}


@dataclass(frozen=True)
class TorchRNNConfig(toolkit.Config):
    """The parameters of `gru`, `lstm` and `rnn`."""

    owner = "model 'gru', 'lstm' or 'rnn'"
    embedding_dim: int = toolkit.param_field(
        64, "Size of each character's learned embedding.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(32, 64, 128),
    )
    hidden_size: int = toolkit.param_field(
        128, "Hidden units per direction.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(64, 128, 256),
    )
    num_layers: int = toolkit.param_field(
        1, "Stacked recurrent layers.", min=1, max=toolkit.MAX_MODEL_LAYERS, search=toolkit.Space.range(1, 2),
    )
    bidirectional: bool = toolkit.param_field(True, "Read names in both directions.")
    dropout: float = toolkit.param_field(
        0.0, "Dropout between layers and before the classifier.", min=0, below=1,
        search=toolkit.Space.range(0.0, 0.5),
    )
    pooling: str = toolkit.param_field(
        "last", "Features for the classifier: the final hidden state, or that plus the max over positions.",
        choices=("last", "last+max"), search=toolkit.Space.choice(),
    )


def check_sizes(cell: str, vocab_size: int, num_classes: int) -> None:
    """What the model and its numpy forward pass refuse alike, in one line."""
    if cell not in HELPS:
        raise toolkit.ToolkitError(f"unknown recurrent cell '{cell}'; use one of {', '.join(HELPS)}.")
    if vocab_size < 2 or num_classes < 2:
        raise toolkit.ToolkitError(
            f"model '{cell}' needs a vocabulary and at least two classes; "
            f"got vocab_size={vocab_size}, num_classes={num_classes}."
        )


def _factory(cell: str):
    def build(vocab_size: int, num_classes: int, **params: Any) -> Any:
        from toolkit.plugins.torch_rnn_model import TorchRNN

        return TorchRNN(vocab_size, num_classes, cell, TorchRNNConfig(**params))

    return build


def _array_factory(cell: str):
    def build_arrays(vocab_size: int, num_classes: int, **params: Any) -> Any:
        """The model's forward pass on numpy arrays (`toolkit.plugins.torch_rnn_numpy`)."""
        from toolkit.plugins.torch_rnn_numpy import TorchRNNArrays

        config = TorchRNNConfig(**params)
        check_sizes(cell, vocab_size, num_classes)
        return TorchRNNArrays(
            cell, vocab_size, num_classes, config.embedding_dim, config.hidden_size, config.num_layers,
            config.bidirectional, config.pooling,
        )

    return build_arrays


@toolkit.hookimpl
def register_models(register) -> None:
    for cell, help_text in HELPS.items():
        register(toolkit.ModelSpec(
            name=cell, help=help_text, factory=_factory(cell), array_factory=_array_factory(cell),
            config=TorchRNNConfig,
        ))

"""`cnn`: a character CNN with several kernel widths and max-pooling over time.

The model is in `cnn_model.py`; this module registers it and imports that one (and torch)
only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import toolkit

#: Widest convolution `kernels` may list, in characters.
MAX_KERNEL = 32


@dataclass(frozen=True)
class CNNConfig(toolkit.Config):
    """`cnn`'s parameters."""

    owner = "model 'cnn'"
    embedding_dim: int = toolkit.param_field(
        64, "Size of each character's learned embedding.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(32, 64, 128),
    )
    filters: int = toolkit.param_field(
        128, "Filters per kernel width.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(64, 128, 256),
    )
    kernels: str = toolkit.param_field(
        "2,3,4,5", f"Kernel widths, comma-separated (each 1 to {MAX_KERNEL}).",
        search=toolkit.Space.choice("2,3,4", "2,3,4,5", "1,2,3,4,5,6"),
    )
    dropout: float = toolkit.param_field(
        0.3, "Dropout before the classifier.", min=0, below=1, search=toolkit.Space.range(0.0, 0.5),
    )

    def widths(self) -> list[int]:
        """The kernel widths as numbers ([] when `kernels` is malformed)."""
        try:
            return [int(part) for part in self.kernels.split(",") if part.strip()]
        except ValueError:
            return []

    def check(self) -> str | None:
        widths = self.widths()
        if not widths or any(not 1 <= w <= MAX_KERNEL for w in widths):
            return (f"needs kernels as comma-separated widths from 1 to {MAX_KERNEL} (e.g. 2,3,4,5); "
                    f"got {self.kernels!r}")
        return None


def check_sizes(vocab_size: int, num_classes: int) -> None:
    """What the model and its numpy forward pass refuse alike, in one line."""
    if vocab_size < 2 or num_classes < 2:
        raise toolkit.ToolkitError(
            "model 'cnn' needs a vocabulary and at least two classes; "
            f"got vocab_size={vocab_size}, num_classes={num_classes}."
        )


def build_cnn(vocab_size: int, num_classes: int, **params: Any) -> Any:
    from toolkit.plugins.cnn_model import CharCNN

    return CharCNN(vocab_size, num_classes, CNNConfig(**params))


#: Largest lookup tables the numpy forward pass builds (a float32 row of filters per character,
#: kernel width and offset); a larger vocabulary predicts with torch.
MAX_TABLE_BYTES = 256 << 20


def build_cnn_arrays(vocab_size: int, num_classes: int, **params: Any) -> Any:
    """cnn's forward pass on numpy arrays (`toolkit.plugins.cnn_numpy`); None when its tables
    would take more than MAX_TABLE_BYTES."""
    check_sizes(vocab_size, num_classes)
    config = CNNConfig(**params)
    if 4 * vocab_size * config.filters * sum(config.widths()) > MAX_TABLE_BYTES:
        return None
    from toolkit.plugins.cnn_numpy import CNNArrays

    return CNNArrays(vocab_size, num_classes, config.embedding_dim, config.filters, config.widths())


@toolkit.hookimpl
def register_models(register) -> None:
    register(
        toolkit.ModelSpec(
            name="cnn",
            help="Character CNN: convolutions of several widths, max over time.",
            factory=build_cnn,
            array_factory=build_cnn_arrays,
            config=CNNConfig,
            train_search={"lr": toolkit.Space.range(3e-4, 0.01, log=True)},
            train_defaults={
                "epochs": 10, "lr": 0.002, "optimizer": "adamw", "weight_decay": 0.0001,
                "label_smoothing": 0.1, "select": "accuracy", "patience": 3,
            },
        )
    )

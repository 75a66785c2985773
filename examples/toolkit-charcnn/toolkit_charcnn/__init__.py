"""toolkit-charcnn: a character CNN model and the `python-names` dataset for toolkit.

This module is the plugin: toolkit finds it through the `toolkit` entry point declared
in pyproject.toml and calls the hooks below, exactly as it calls its built-in plugins.
toolkit imports it for every command, `toolkit --help` included, so it imports nothing
heavy: the model module, and torch with it, is imported only when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import toolkit
from toolkit_charcnn import python_names
from toolkit_charcnn.config import CharCNNConfig

__version__ = "0.1.0"


def build_charcnn(vocab_size: int, num_classes: int, **params: Any) -> Any:
    """The model, built when a run or a prediction needs it: the only place torch loads."""
    from toolkit_charcnn.model import CharCNN

    return CharCNN(vocab_size, num_classes, **params)


@toolkit.hookimpl
def register_models(register: Callable[[toolkit.ModelSpec], None]) -> None:
    register(
        toolkit.ModelSpec(
            name="charcnn",
            help="A character CNN: convolutions of several widths, max over time, Linear.",
            factory=build_charcnn,
            config=CharCNNConfig,
            consumes=(toolkit.CHAR_INDICES,),
        )
    )


@toolkit.hookimpl
def register_datasets(register: Callable[[toolkit.DatasetSpec], None]) -> None:
    register(
        toolkit.DatasetSpec(
            name="python-names",
            help="Names from Python's standard library labelled class, function, constant or module.",
            load=python_names.load,
            config=python_names.PythonNamesConfig,
        )
    )

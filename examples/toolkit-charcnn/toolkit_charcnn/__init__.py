"""toolkit-charcnn: a character CNN model and the `python-names` dataset for toolkit.

This module is the plugin: toolkit finds it through the `toolkit` entry point declared
in pyproject.toml and calls the hooks below, exactly as it calls its built-in plugins.
"""

from __future__ import annotations

from collections.abc import Callable

import toolkit
from toolkit_charcnn import model, python_names

__version__ = "0.1.0"


@toolkit.hookimpl
def register_models(register: Callable[[toolkit.ModelSpec], None]) -> None:
    register(
        toolkit.ModelSpec(
            name="charcnn",
            help="A character CNN: convolutions of several widths, max over time, Linear.",
            factory=model.CharCNN,
            config=model.CharCNNConfig,
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

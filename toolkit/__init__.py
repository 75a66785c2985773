"""toolkit: plugin-based character-level text classification.

The public API: what plugins implement (`hookimpl`, the `*Spec` records, their parameters
as a `Config` dataclass of `param_field`s or as `Param`s, `TextDataset`, `Encoder`), the kit
dataset plugins build on (`Provenance`, `normalization_param`, `did_you_mean`, the
`<label>.txt` readers) and what notebook users call (`run`, and the functions listed in
`__all__`). Heavy modules (torch) load on first use, so the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from toolkit.errors import ToolkitError, did_you_mean
from toolkit.hookspecs import hookimpl
from toolkit.params import Config, Param, Space, param_field, params_of
from toolkit.types import (
    CHAR_INDICES,
    PAD,
    SEVERAL_WORDS,
    TUTORIAL_ALPHABET,
    ArrayModel,
    DatasetSpec,
    Encoder,
    EncoderSpec,
    ModelSpec,
    RowBag,
    TextDataset,
    reads_several_words,
)

__version__ = "0.1.0"

# name -> module that defines it; imported on first access.
_LAZY = {
    "run": "toolkit.api",
    "plan_run": "toolkit.api",
    "model_settings": "toolkit.api",
    "rerun": "toolkit.rerunning",
    "RerunResult": "toolkit.rerunning",
    "RunFile": "toolkit.runconfig",
    "read_run_file": "toolkit.runconfig",
    "tune": "toolkit.tuning",
    "TuneResult": "toolkit.tuning",
    "RunPlan": "toolkit.api",
    "RunResult": "toolkit.api",
    "train": "toolkit.training",
    "predict_proba": "toolkit.inference",
    "load_registry": "toolkit.registry",
    "LabelFiles": "toolkit.textfiles",
    "read_label_folder": "toolkit.textfiles",
    "read_label_zip": "toolkit.textfiles",
    "extract_label_zip": "toolkit.textfiles",
    "load_dataset": "toolkit.loading",
    "dataset_params": "toolkit.loading",
    "line_counts": "toolkit.textfiles",
    "content_sha256": "toolkit.textfiles",
    "NORMALIZATIONS": "toolkit.normalization",
    "normalize": "toolkit.normalization",
    "Provenance": "toolkit.dataset_kit",
    "normalization_param": "toolkit.dataset_kit",
    "normalization_field": "toolkit.dataset_kit",
    "labelled_lines": "toolkit.dataset_kit",
    "labels_field": "toolkit.dataset_kit",
    "dataset_from_files": "toolkit.dataset_kit",
    "describe_dataset": "toolkit.describe",
    "cache_dir": "toolkit.cache",
    "install_folder": "toolkit.cache",
    "reading_folder": "toolkit.cache",
    "split_dataset": "toolkit.splits",
    "Split": "toolkit.splits",
    "evaluate": "toolkit.evaluation",
    "evaluate_predictions": "toolkit.evaluation",
    "Report": "toolkit.evaluation",
    "read_run": "toolkit.rundir",
    "runs_table": "toolkit.run_index",
    "RunsTable": "toolkit.run_index",
    "compare_runs": "toolkit.compare",
    "rerender": "toolkit.rendering",
    "write_compare": "toolkit.rendering",
    "load_run": "toolkit.predictor",
    "Predictor": "toolkit.predictor",
    "Prediction": "toolkit.predictor",
    "export_run": "toolkit.export",
    "create_app": "toolkit.server",
    "list_plugins": "toolkit.catalog",
    "list_datasets": "toolkit.catalog",
    "list_encoders": "toolkit.catalog",
    "list_models": "toolkit.catalog",
    "LongestFirst": "toolkit.longest_first",
    "MAX_MODEL_WIDTH": "toolkit.limits",
    "MAX_MODEL_LAYERS": "toolkit.limits",
}

__all__ = [
    "ArrayModel",
    "CHAR_INDICES",
    "Config",
    "DatasetSpec",
    "Encoder",
    "EncoderSpec",
    "ModelSpec",
    "PAD",
    "Param",
    "SEVERAL_WORDS",
    "RowBag",
    "Space",
    "TUTORIAL_ALPHABET",
    "TextDataset",
    "ToolkitError",
    "__version__",
    "did_you_mean",
    "hookimpl",
    "param_field",
    "params_of",
    "reads_several_words",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")

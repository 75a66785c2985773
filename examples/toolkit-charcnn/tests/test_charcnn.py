"""The plugin's own tests. After `pip install -e ".[test]"`, run `pytest` in this folder.

They use only toolkit's public API, through the same entry point a user's toolkit finds.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from toolkit_charcnn import build_charcnn
from toolkit_charcnn.model import CharCNN

import toolkit
from toolkit.testing import check_dataset, check_model


def test_toolkit_finds_the_plugin_through_its_entry_point():
    registry = toolkit.load_registry()
    assert registry.model("charcnn").factory is build_charcnn
    assert registry.owner("model", "charcnn").source == "entry point"
    assert registry.owner("dataset", "python-names").distribution == "toolkit-charcnn"


def test_loading_the_plugin_does_not_import_torch():
    """toolkit loads the plugin for every command: torch must wait until a model is built."""
    code = "import sys, toolkit_charcnn; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_charcnn_keeps_toolkit_s_model_contract():
    """Shapes, raw logits, padding invariance, learning, determinism, reloading: the checks
    toolkit runs on its own models."""
    check_model("charcnn", {"embedding_dim": 8, "channels": 16})
    check_model("charcnn", {"embedding_dim": 8, "channels": 16, "widths": "1,3", "dropout": 0.0})


def test_python_names_keeps_toolkit_s_dataset_contract():
    check_dataset("python-names", {"modules": "collections,json,os"})


def test_bad_widths_are_one_clear_error():
    with pytest.raises(toolkit.ToolkitError, match="comma-separated positive integers"):
        CharCNN(vocab_size=10, num_classes=3, widths="3,x")


def test_python_names_labels_known_names():
    data = toolkit.load_dataset("python-names", {"modules": "collections,json,os"})
    label = dict(zip(data.texts, data.labels(), strict=True))
    assert data.classes == ("class", "constant", "function", "module")
    assert label["OrderedDict"] == label["defaultdict"] == "class"
    assert label["dumps"] == label["getcwd"] == "function"
    assert label["SEEK_END"] == "constant"
    assert label["itertools"] == "module"


def test_charcnn_learns_python_names(tmp_path):
    result = toolkit.run(
        dataset="python-names", model="charcnn", params={"train.epochs": 4},
        output=tmp_path / "run", progress=False,
    )
    majority_share = max(result.report.per_class["support"]) / len(result.test_targets)
    assert result.test_accuracy() > majority_share + 0.2

"""Every built-in dataset, encoder and model passes the checkers of `toolkit.testing`, the
same ones a third-party plugin's tests call. New built-ins are picked up from the registry."""

from __future__ import annotations

import pytest

from toolkit.registry import load_registry
from toolkit.testing import check_dataset, check_encoder, check_model

#: Small sizes, so each model's check takes about a second on one thread.
SMALL_MODEL_PARAMS = {"hidden_size": 16, "embedding_dim": 8}
#: Datasets that need a file, or would read a large one, get a small real one here.
DATASET_PARAMS = {"words-language": {"n": 50}}


def builtin(kind: str) -> list[str]:
    registry = load_registry()
    return sorted(
        name for name in registry.specs[kind] if registry.owner(kind, name).source == "built-in"
    )


def small_params(name: str) -> dict[str, int]:
    declared = {p.name for p in load_registry().model(name).params}
    return {k: v for k, v in SMALL_MODEL_PARAMS.items() if k in declared}


@pytest.mark.parametrize("name", builtin("model"))
def test_builtin_model_keeps_the_contract(name):
    check_model(name, small_params(name))


@pytest.mark.parametrize("name", builtin("model"))
def test_builtin_model_keeps_the_contract_with_a_learned_alphabet(name):
    check_model(name, small_params(name), encoder="onehot", encoder_params={"alphabet": "auto"})


@pytest.mark.parametrize("params", [{}, {"alphabet": "auto"}, {"alphabet": "abc"}])
@pytest.mark.parametrize("name", builtin("encoder"))
def test_builtin_encoder_keeps_the_contract(name, params):
    check_encoder(name, params)


@pytest.fixture
def file_params(tmp_path) -> dict[str, dict[str, str]]:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "fruit.txt").write_text("apple\npear\nplum\n", encoding="utf-8")
    (folder / "tree.txt").write_text("oak\nelm\nbirch\n", encoding="utf-8")
    table = tmp_path / "table.csv"
    table.write_text("text,label\napple,fruit\noak,tree\npear,fruit\n", encoding="utf-8")
    return {"folder": {"data_dir": str(folder)}, "csv": {"path": str(table)}}


@pytest.mark.parametrize("name", builtin("dataset"))
def test_builtin_dataset_keeps_the_contract(name, file_params):
    data = check_dataset(name, DATASET_PARAMS.get(name) or file_params.get(name))
    assert len(data) > 0


def test_every_kind_has_built_ins():
    assert builtin("model") and builtin("encoder") and builtin("dataset")

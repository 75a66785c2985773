"""The kit for dataset plugins (`toolkit.Provenance`, `normalization_param`, `did_you_mean`)
on the real names data bundled with the package, and on files the tests write."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import NAMES_DIR

import toolkit
from toolkit.dataset_kit import NORMALIZATION_HELP
from toolkit.datasets import names
from toolkit.normalization import normalize_like


def by_hand(normalization: str) -> toolkit.TextDataset:
    """The bundled names data read with the kit alone, file by file, as a plugin would."""
    record = toolkit.Provenance(str(NAMES_DIR), normalization=normalization, options={"by": "hand"})
    rows = []
    for path in sorted(NAMES_DIR.glob("*.txt")):
        text = record.add_file(path).decode("utf-8")
        rows += [(line, path.stem) for line in text.splitlines()]
    pairs = record.normalize_pairs(rows)
    return record.dataset([text for text, _ in pairs], [label for _, label in pairs])


def test_a_dataset_built_with_the_kit_matches_the_names_dataset():
    data = by_hand("ascii")
    builtin = names.load()  # ascii, the names default
    assert data.texts == builtin.texts and data.targets == builtin.targets
    info = data.provenance
    assert info["sha256"] == builtin.provenance["sha256"]
    arabic = (NAMES_DIR / "Arabic.txt").read_bytes()
    assert info["sha256"]["Arabic.txt"] == hashlib.sha256(arabic).hexdigest() and len(info["sha256"]) == 18
    assert info["counts"]["Arabic"] == 2000 and info["total"] == 20074
    assert info["dropped"] == {} and info["normalization"] == "ascii" and info["options"] == {"by": "hand"}
    assert info["loaded_at"].endswith("+00:00")
    found = dict(zip(data.texts, data.labels(), strict=False))
    assert "Bélanger" not in found and found["Belanger"] == "French"
    assert found["Lu"] == "Chinese"  # "Lu:" in the file


@pytest.mark.parametrize(("normalization", "shared"), [("raw", 465), ("ascii", 480)])
def test_shared_texts_agrees_with_describe_dataset(normalization, shared):
    data = by_hand(normalization)
    assert data.provenance["shared_texts"] == shared
    assert toolkit.describe_dataset(data).loc["(all)", "shared"] == shared


def test_normalize_pairs_drops_blank_and_emptied_texts_and_counts_them(tmp_path):
    polish = (NAMES_DIR / "Polish.txt").read_text(encoding="utf-8").splitlines()
    lines = [*polish[:3], "", "   ", "Жуков", polish[3]]
    payload = [(line, {"line": n}) for n, line in enumerate(lines, start=1)]

    record = toolkit.Provenance("test", normalization="ascii")
    kept = record.normalize_pairs(payload)
    assert [text for text, _ in kept] == [toolkit.normalize(line) for line in (*polish[:3], polish[3])]
    assert [other["line"] for _, other in kept] == [1, 2, 3, 7]  # whatever rides along stays with its text
    assert record.dropped == {"blank line": 2, "empty after normalization": 1}

    transliterated = toolkit.Provenance("test", normalization="unidecode")
    assert "Zhukov" in [text for text, _ in transliterated.normalize_pairs(payload)]
    assert transliterated.dropped == {"blank line": 2}
    untouched = toolkit.Provenance("test")  # no normalization: texts as they are, blanks still dropped
    assert [text for text, _ in untouched.normalize_pairs(payload)] == [*polish[:3], "Жуков", polish[3]]
    assert "normalization" not in untouched.as_dict()


def test_the_record_format(tmp_path):
    file = tmp_path / "a.csv"
    file.write_bytes(b"text,label\n")
    record = toolkit.Provenance(
        "somewhere", normalization="raw", options={"x": 1}, package={"name": "p", "version": "1"}
    )
    assert record.add_file(file, name="data.csv") == b"text,label\n"
    record.drop("empty label", 2)
    record.drop("empty label")
    record.drop("never happened", 0)
    record.update(rows=5)
    info = record.as_dict()
    assert list(info) == [
        "source", "package", "rows", "sha256", "dropped", "normalization", "options", "loaded_at",
    ]
    assert info["sha256"] == {"data.csv": hashlib.sha256(b"text,label\n").hexdigest()}
    assert info["dropped"] == {"empty label": 3}
    assert json.loads(json.dumps(info)) == info


@pytest.mark.parametrize(("make", "message"), [
    (lambda: toolkit.Provenance("x", normalization="nfc"),
     "unknown normalization 'nfc'; use one of ascii, unidecode, raw."),
    (lambda: toolkit.Provenance("x", sha256={}), "provenance field 'sha256' is written by"),
    (lambda: toolkit.Provenance("x").update(counts={}), "provenance field 'counts' is written by"),
])
def test_the_record_refuses_what_would_corrupt_it(make, message):
    with pytest.raises(toolkit.ToolkitError, match=message):
        make()


def test_every_builtin_dataset_declares_the_one_normalization_param():
    registry = toolkit.load_registry()
    declared = {
        name: next(p for p in spec.params if p.name == "normalization")
        for name, spec in registry.specs["dataset"].items()
        if any(p.name == "normalization" for p in spec.params)
    }
    assert {"names", "first-names-gender", "words-language", "csv", "folder"} <= set(declared)
    for name, param in declared.items():
        assert param == toolkit.normalization_param(param.default), name
        assert param.help == NORMALIZATION_HELP and param.choices == toolkit.NORMALIZATIONS
        config = registry.specs["dataset"][name].config  # the one place each declares it
        assert config is not None and config().normalization == param.default, name
    assert declared["names"].default == "ascii" and declared["first-names-gender"].default == "unidecode"


def test_provenance_recorded_before_the_kit_still_prepares_texts():
    """What a run folder written before the kit holds (names, ascii): prediction reads only
    `normalization`, and the kit writes it the same way."""
    old = {
        "origin": names.ORIGIN, "license": "BSD-3-Clause", "verified": "content SHA-256 of all 18 files",
        "source": str(NAMES_DIR), "sha256": {}, "lines": {}, "dropped": {}, "normalization": "ascii",
        "loaded_at": "2026-11-01T10:00:00+00:00", "counts": {}, "total": 20074,
    }
    new = names.load().provenance
    assert set(old) <= set(new)
    texts = ["Dvořák", "Groß"]
    assert normalize_like(texts, old) == normalize_like(texts, new) == ["Dvorak", "Gro"]


def test_did_you_mean_is_public():
    classes = names.load().classes
    assert toolkit.did_you_mean("Englsh", classes) == " Did you mean 'English'?"
    assert toolkit.did_you_mean("Klingon", classes) == ""


@pytest.mark.parametrize(("dataset", "params", "message"), [
    # Each run would fail differently if its data were read (no language 'xx', no such file).
    ("words-language", {"dataset.languages": "en,xx", "dataset.n": 0},
     "dataset 'words-language' parameter 'n' must be at least 1; got 0."),
    ("words-language", {"dataset.languages": "en,xx", "dataset.min_length": -1},
     "dataset 'words-language' parameter 'min_length' must be at least 1; got -1."),
    ("csv", {"dataset.path": "missing.csv", "dataset.label_column": "text"},
     "dataset 'csv' got the same column 'text' for the text and the label; set dataset.text_column"),
])
def test_dataset_parameters_are_checked_before_the_data_is_read(cli, tmp_path, dataset, params, message):
    with pytest.raises(toolkit.ToolkitError) as refused:
        toolkit.plan_run(dataset=dataset, model="gru", params=params)
    assert message in str(refused.value)
    args = [arg for key, value in params.items() for arg in ("--param", f"{key}={value}")]
    result = cli(["run", "--dataset", dataset, "--model", "gru", *args, "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and result.stderr == f"Error: {refused.value}\n"
    assert not (tmp_path / "run").exists()

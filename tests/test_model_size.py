"""`toolkit report` and report.html say how big the run's model is: its parameters and the
bytes of its weights file."""

from __future__ import annotations

import re

import pytest
from conftest import run_toolkit

import toolkit
from toolkit.model_size import human_bytes, model_size


@pytest.fixture(scope="module")
def ngram_run(names_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("names")
    for language in ("Greek", "Japanese", "Polish"):
        lines = (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")
        kept = sorted({n for n in lines if n})[:100]
        (folder / f"{language}.txt").write_text("\n".join(kept), encoding="utf-8")
    return toolkit.run(
        dataset="folder", model="ngram",
        params={"dataset.data_dir": str(folder), "model.buckets": 4096, "train.epochs": 1},
        output=tmp_path_factory.mktemp("runs") / "run", progress=False,
    )


def test_the_size_is_the_models_parameters_and_the_weights_files_bytes(ngram_run):
    parameters = sum(p.numel() for p in ngram_run.model.parameters())
    assert parameters == 4096 * 3 + 3  # the n-gram table's rows of class scores, and the bias
    size = model_size(ngram_run.run_dir)
    assert size.parameters == parameters
    assert size.weights_bytes == (ngram_run.run_dir / "model.safetensors").stat().st_size
    assert size.weights_bytes > 4 * parameters  # float32, and the safetensors header


def test_toolkit_report_and_report_html_show_the_size(ngram_run):
    weights = (ngram_run.run_dir / "model.safetensors").stat().st_size
    line = f"12,291 parameters, weights file {human_bytes(weights)} ({weights:,} bytes)"
    shown = run_toolkit(["report", str(ngram_run.run_dir)])
    assert shown.returncode == 0, shown.stderr
    assert f"Model: {line}\n" in shown.stdout
    page = (ngram_run.run_dir / "report.html").read_text(encoding="utf-8")
    assert re.search(rf'id="model-size">Model: {re.escape(line)}\.<', page)


def test_a_damaged_weights_file_is_said_not_hidden(ngram_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ngram_run.run_dir, copy)
    (copy / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    shown = run_toolkit(["report", str(copy)])
    assert shown.returncode == 0, shown.stderr
    assert "Model: size unknown: '" in shown.stdout and "is not a valid safetensors file" in shown.stdout


@pytest.mark.parametrize(("size", "text"), [
    (512, "512 B"), (1_000, "1.00 kB"), (999_400, "999 kB"), (999_999, "1.00 MB"), (18_874_656, "18.9 MB"),
    (2_500_000_000, "2.50 GB"),
])
def test_human_bytes(size, text):
    assert human_bytes(size) == text

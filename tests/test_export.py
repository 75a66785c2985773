"""`toolkit export --format onnx` and `toolkit predict --runtime onnx`: every built-in model on a
tiny real run on names, run in real onnxruntime and compared with torch on the run's test split;
int8 quantization; the refusals (no export, onnxruntime missing, a model a trace cannot keep)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import names_csv, run_toolkit

import toolkit
from toolkit.onnx_runtime import ONNX_FILE

MODELS = ("ngram", "scratch-rnn", "scratch-gru", "gru", "lstm", "rnn", "cnn", "ensemble")
#: An alphabet with the characters that separate and join words, so `ngram` reads words.
WORD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '-.&+#東京大阪"
#: Small versions of each model, so every run trains in a second or two.
PARAMS = {
    "ngram": {"model.word_ngrams": "2", "encoder.alphabet": WORD_ALPHABET},
    "scratch-rnn": {"model.hidden_size": 32},
    "scratch-gru": {"model.hidden_size": 32},
    "gru": {"model.hidden_size": 24, "model.embedding_dim": 16, "model.num_layers": 2},
    "lstm": {"model.hidden_size": 24, "model.embedding_dim": 16, "model.pooling": "last+max"},
    "rnn": {"model.hidden_size": 48, "model.embedding_dim": 16, "model.bidirectional": False},
    "cnn": {"model.filters": 16},
    # a scripted member, a packed-sequence member and one with its hashing, in one traced graph
    "ensemble": {"model.members": "ngram,scratch-gru,lstm"},
}
NAMES = ["Hinton", "Papadopoulos", "Kowalski", "MacLeod", "O'Neill", "Li"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Callable[[str], toolkit.api.RunResult]:
    """Train each model on first use, once per module: a tiny real run on names (4 languages,
    100 names each, from the bundled data), 2 epochs."""
    folder = tmp_path_factory.mktemp("export-runs")
    data = names_csv(folder, ("Greek", "Polish", "Scottish", "Japanese"))
    trained: dict[str, toolkit.api.RunResult] = {}

    def run(model: str) -> toolkit.api.RunResult:
        if model not in trained:
            params = {"dataset.path": str(data), "train.epochs": 2, "train.threads": 1, **PARAMS[model]}
            trained[model] = toolkit.run(dataset="csv", model=model, params=params, progress=False,
                                         output=folder / model)
        return trained[model]

    return run


def test_the_tests_cover_every_builtin_model():
    registry = toolkit.load_registry()
    builtin = {name for name in registry.specs["model"] if registry.owner("model", name).source == "built-in"}
    assert builtin == set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_every_builtin_model_exports_and_onnxruntime_answers_as_torch(cli, runs, model):
    result = runs(model)
    exported = cli(["export", "--run", str(result.run_dir)])
    assert exported.exit_code == 0, exported.output
    path = result.run_dir / ONNX_FILE
    assert f"Wrote {path} ({path.stat().st_size:,} bytes, model '{model}')." in exported.stdout
    texts = list(result.split.test.texts)
    torch_side = toolkit.load_run(result.run_dir, runtime="torch")
    onnx_side = toolkit.load_run(result.run_dir, runtime="onnx")
    assert onnx_side.scorer is not None and torch_side.scorer is None
    expected, found = torch_side.predict_proba(texts), onnx_side.predict_proba(texts)
    assert len(texts) >= 40
    np.testing.assert_array_equal(found.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(np.log(found), np.log(expected), atol=1e-4)
    np.testing.assert_allclose(found.sum(axis=1), 1.0, atol=1e-12)

    # the CLI: the same classes and log-probabilities as with torch
    answers = {}
    for runtime in ("torch", "onnx"):
        shown = cli(["predict", "--run", str(result.run_dir), "--runtime", runtime, "--json", "-n", "2",
                     *NAMES])
        assert shown.exit_code == 0, shown.output
        answers[runtime] = json.loads(shown.stdout)
    for ours, theirs in zip(answers["onnx"], answers["torch"], strict=True):
        assert [g["label"] for g in ours["predictions"]] == [g["label"] for g in theirs["predictions"]]
        for a, b in zip(ours["predictions"], theirs["predictions"], strict=True):
            assert a["log_probability"] == pytest.approx(b["log_probability"], abs=1e-4)


def test_word_ngrams_are_hashed_inside_the_graph_as_torch_hashes_them(runs):
    """Texts of several words (punctuation, joiners, case, CJK) give the same word n-gram ids in
    the graph as in torch: the scores would differ otherwise."""
    result = runs("ngram")
    run_dir = result.run_dir
    if not (run_dir / ONNX_FILE).is_file():
        toolkit.export_run(run_dir)
    texts = ["state-of-the-art", "Li Na", "Don't stop", "C++ and C#", "AT&T 3.5 e-mail", "東京 大阪 x",
             "a b c d e f g h", "MacLeod  O'Neill", "  spaced  out  "]
    torch_side = toolkit.load_run(run_dir, runtime="torch")
    onnx_side = toolkit.load_run(run_dir, runtime="onnx")
    model = torch_side.model
    assert model.word_order == 2
    indices, lengths = torch_side.encoder.encode(texts)
    assert (model.word_ids(indices, lengths) != toolkit.PAD).sum() > len(texts)  # words are read
    np.testing.assert_allclose(
        np.log(onnx_side.predict_proba(texts)), np.log(torch_side.predict_proba(texts)), atol=1e-5
    )
    # the graph's powers of the hash base cover every offset inside a word of the longest text
    from toolkit.limits import MAX_TEXT_LENGTH_LIMIT
    from toolkit.plugins.ngram_model import LONGEST_TEXT

    assert MAX_TEXT_LENGTH_LIMIT <= LONGEST_TEXT


def test_int8_quantization_makes_a_smaller_file_and_prints_accuracy_before_and_after(cli, runs, tmp_path):
    result = runs("ngram")
    target = tmp_path / "names-int8.onnx"
    quantized = cli(["export", "--run", str(result.run_dir), "--quantize", "int8", "--output", str(target)])
    assert quantized.exit_code == 0, quantized.output
    lines = quantized.stdout.splitlines()
    float_bytes = int(re.fullmatch(r"float graph: ([\d,]+) bytes", lines[0]).group(1).replace(",", ""))
    int8_bytes = int(
        re.fullmatch(r"int8 graph: ([\d,]+) bytes \(0\.\d\dx\)", lines[1]).group(1).replace(",", "")
    )
    assert int8_bytes == target.stat().st_size
    assert int8_bytes < float_bytes / 3
    accuracy = re.fullmatch(
        r"test accuracy \(([\d,]+) texts\): float (0\.\d{4}), int8 (0\.\d{4}) \(([+-]\d+\.\d\d) points\)",
        lines[2],
    )
    assert accuracy, lines[2]
    # the float graph's accuracy on the recovered split is the one the run measured with torch
    assert int(accuracy.group(1).replace(",", "")) == len(result.split.test.texts)
    assert float(accuracy.group(2)) == pytest.approx(result.test_accuracy(), abs=5e-5)
    assert abs(float(accuracy.group(3)) - float(accuracy.group(2))) <= 0.05
    # the int8 graph predicts: copied into a run folder, `--runtime onnx` reads it
    copy = tmp_path / "run"
    shutil.copytree(result.run_dir, copy)
    shutil.copy(target, copy / ONNX_FILE)
    predicted = cli(["predict", "--run", str(copy), "--runtime", "onnx", "Kowalski"])
    assert predicted.exit_code == 0, predicted.output


@pytest.mark.parametrize("model", ["gru", "rnn"])
def test_int8_stores_the_weights_dynamic_quantization_leaves_in_float(runs, model):
    """onnxruntime has no int8 GRU or RNN kernel: their weights are stored as int8 anyway, behind
    a DequantizeLinear, and the graph still answers as the float one."""
    import onnx
    from onnx import numpy_helper

    from toolkit.export import SMALLEST_INT8_WEIGHT, onnx_graph, quantized_int8
    from toolkit.onnx_runtime import OnnxScorer

    result = runs(model)
    predictor = toolkit.load_run(result.run_dir)
    graph = onnx_graph(predictor.model, predictor.encoder, model)
    quantized = quantized_int8(graph)

    def float_weights(data: bytes) -> list[str]:
        tensors = onnx.load_from_string(data).graph.initializer
        return [t.name for t in tensors if t.data_type == onnx.TensorProto.FLOAT
                and numpy_helper.to_array(t).size >= SMALLEST_INT8_WEIGHT]

    assert float_weights(graph) and not float_weights(quantized)
    assert any(n.op_type == "DequantizeLinear" for n in onnx.load_from_string(quantized).graph.node)
    texts = list(result.split.test.texts)
    before = OnnxScorer(graph).predict_proba(predictor.encoder, texts)
    after = OnnxScorer(quantized).predict_proba(predictor.encoder, texts)
    assert (before.argmax(1) == after.argmax(1)).mean() >= 0.95
    assert np.abs(after - before).max() < 0.1


def test_quantize_says_in_one_line_when_the_test_split_cannot_be_recovered(cli, tmp_path):
    data = names_csv(tmp_path, ("Greek", "Polish"), per_class=60)
    result = toolkit.run(dataset="csv", model="cnn", progress=False, output=tmp_path / "run",
                         params={"dataset.path": str(data), "train.epochs": 1, "train.threads": 1,
                                 "model.filters": 8})
    data.write_text(data.read_text(encoding="utf-8") + "Nowak,Polish\n", encoding="utf-8")
    quantized = cli(["export", "--run", str(result.run_dir), "--quantize", "int8"])
    assert quantized.exit_code == 0, quantized.output
    assert ("test accuracy: not measured: the run's test split cannot be recovered: its data changed "
            "('names.csv' (changed)).") in quantized.stdout.splitlines()
    assert (result.run_dir / ONNX_FILE).is_file()


def _one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_a_run_without_an_export_is_refused_in_one_line(runs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs("cnn").run_dir, copy)
    (copy / ONNX_FILE).unlink(missing_ok=True)
    line = _one_line_error(run_toolkit(["predict", "--run", str(copy), "--runtime", "onnx", "Kowalski"]))
    assert line == (f"Error: run '{copy}' has no ONNX export (model.onnx); run `toolkit export --run {copy}` "
                    "first.")


#: Runs toolkit in a real interpreter in which `import onnxruntime` fails, as when it is not installed.
WITHOUT_ONNXRUNTIME = "import sys; sys.modules['onnxruntime'] = None; from toolkit.cli import main; main()"


@pytest.mark.parametrize("command", [["predict", "--runtime", "onnx", "Kowalski"], ["export"]], ids=" ".join)
def test_onnxruntime_missing_is_refused_in_one_line_naming_the_extra(runs, command):
    run_dir = runs("cnn").run_dir
    if not (run_dir / ONNX_FILE).is_file():
        toolkit.export_run(run_dir)
    args = [command[0], "--run", str(run_dir), *command[1:]]
    blocked = subprocess.run([sys.executable, "-c", WITHOUT_ONNXRUNTIME, *args], capture_output=True,
                             text=True)
    line = _one_line_error(blocked)
    purpose = "--runtime onnx" if command[0] == "predict" else "exporting to ONNX"
    assert line == (f"Error: {purpose} needs onnxruntime, which is not installed: "
                    "pip install -e '.[onnx]' in toolkit's folder.")


PLUGIN_MODELS = '''
import toolkit


def _module(kind, vocab_size, num_classes):
    import torch
    from torch import nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, num_classes)

        def forward(self, indices, lengths):
            if kind == "last-character":  # len() of a tensor: a trace keeps the batch size it saw
                return self.embedding(indices[torch.arange(len(indices)), lengths - 1])
            if kind == "first-characters":  # int(): a trace keeps the width of the batch it saw
                return self.embedding(indices[:, :int(lengths.max())]).sum(1)
            if kind == "running-max":  # cummax: no ONNX operator
                return self.embedding(indices).cummax(1).values[:, -1]
            real = (indices != toolkit.PAD).unsqueeze(2)
            return (self.embedding(indices) * real).sum(1) / lengths.unsqueeze(1)

    return Model()


@toolkit.hookimpl
def register_models(register):
    for kind in ("last-character", "first-characters", "running-max", "mean-character"):
        register(toolkit.ModelSpec(
            name=kind, help="A test model.",
            factory=lambda vocab_size, num_classes, kind=kind: _module(kind, vocab_size, num_classes)))
'''


@pytest.fixture(scope="module")
def plugin_runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plugin-runs")
    plugin = folder / "test_models.py"
    plugin.write_text(PLUGIN_MODELS, encoding="utf-8")
    data = names_csv(folder, ("Greek", "Polish"), per_class=60)
    runs = {"plugin": plugin}
    for model in ("last-character", "first-characters", "running-max", "mean-character"):
        runs[model] = toolkit.run(dataset="csv", model=model, plugins=[str(plugin)], progress=False,
                                  params={"dataset.path": str(data), "train.epochs": 1, "train.threads": 1},
                                  output=folder / model).run_dir
    return runs


@pytest.mark.parametrize(("model", "reason"), [
    ("last-character", "the traced graph fails on texts of other lengths"),
    ("first-characters", "the traced graph answers otherwise than the model on texts of other lengths"),
    ("running-max", "Exporting the operator 'aten::cummax' to ONNX opset version 17 is not supported"),
])
def test_a_plugin_model_a_trace_cannot_keep_is_refused_in_one_line(plugin_runs, model, reason):
    run_dir = plugin_runs[model]
    line = _one_line_error(
        run_toolkit(["--plugin", str(plugin_runs["plugin"]), "export", "--run", str(run_dir)])
    )
    assert line.startswith(f"Error: model '{model}' cannot be exported to ONNX: ") and reason in line, line
    assert not (run_dir / ONNX_FILE).exists()


def test_a_plugin_model_that_traces_exports_as_it_is(plugin_runs):
    run_dir = plugin_runs["mean-character"]
    plugins = [str(plugin_runs["plugin"])]
    toolkit.export_run(run_dir, plugins=plugins)
    texts = ["Nowak", "Papadopoulos", "Li"]
    np.testing.assert_allclose(toolkit.load_run(run_dir, plugins, runtime="onnx").predict_proba(texts),
                               toolkit.load_run(run_dir, plugins).predict_proba(texts), atol=1e-5)


def test_bad_export_options_are_refused_in_one_line(runs, tmp_path):
    run_dir = str(runs("cnn").run_dir)
    for args, message in (
        (["--format", "tflite"], "Error: unknown export format 'tflite'; use one of onnx."),
        (["--quantize", "int4"], "Error: unknown quantization 'int4'; use one of int8."),
        (["--output", str(tmp_path / "no" / "model.onnx")],
         f"Error: the folder of --output '{tmp_path / 'no' / 'model.onnx'}' does not exist; create it "
         "first."),
    ):
        assert _one_line_error(run_toolkit(["export", "--run", run_dir, *args])) == message
    line = _one_line_error(run_toolkit(["predict", "--run", run_dir, "--runtime", "tf", "Li"]))
    assert line == "Error: unknown runtime 'tf'; use one of torch, numpy, auto, onnx."


def test_an_export_of_another_run_is_refused_in_one_line(runs, tmp_path):
    """A model.onnx copied from a run with other classes is caught before it predicts."""
    other = tmp_path / "other"
    data = names_csv(tmp_path, ("Greek", "Polish"), per_class=40)
    toolkit.run(dataset="csv", model="cnn", progress=False, output=other,
                params={"dataset.path": str(data), "train.epochs": 1, "train.threads": 1, "model.filters": 8})
    toolkit.export_run(other)
    copy = tmp_path / "run"
    shutil.copytree(runs("cnn").run_dir, copy)
    shutil.copy(other / ONNX_FILE, copy / ONNX_FILE)
    line = _one_line_error(run_toolkit(["predict", "--run", str(copy), "--runtime", "onnx", "Li"]))
    assert line == (f"Error: '{copy / ONNX_FILE}' gives 2 classes, the run has 4; it was exported from "
                    "another run: export this one again with `toolkit export`.")


def test_batch_prediction_into_a_folder_runs_through_onnxruntime_as_torch(runs, tmp_path):
    import pandas as pd

    from toolkit.batch import predict_files

    result = runs("ngram")
    toolkit.export_run(result.run_dir)
    names = tmp_path / "names.txt"
    texts = [*result.split.test.texts, *result.split.val.texts]
    names.write_text("\n".join(texts) + "\n", encoding="utf-8")
    frames = {}
    for runtime in ("torch", "onnx"):
        predict_files(result.run_dir, str(names), tmp_path / runtime, runtime=runtime, output_format="csv")
        frames[runtime] = pd.read_csv(next((tmp_path / runtime).glob("*.csv")), keep_default_na=False)
    assert len(frames["onnx"]) == len(texts) > 50
    assert (frames["onnx"]["class_1"] == frames["torch"]["class_1"]).all()
    assert np.allclose(frames["onnx"]["log_probability_1"], frames["torch"]["log_probability_1"], atol=1e-4)


def test_batch_prediction_without_an_export_names_the_run_folder(runs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs("cnn").run_dir, copy)
    (copy / ONNX_FILE).unlink(missing_ok=True)
    names = tmp_path / "names.txt"
    names.write_text("Kowalski\nNakamura\n", encoding="utf-8")
    line = _one_line_error(run_toolkit(["predict", "--run", str(copy), "--input", str(names), "--output",
                                        str(tmp_path / "out") + "/", "--runtime", "onnx"]))
    assert line == (f"Error: run '{copy}' has no ONNX export (model.onnx); run `toolkit export --run {copy}` "
                    "first.")
    assert not (tmp_path / "out").exists()


def test_serve_and_interactive_answer_through_the_export(runs, tmp_path):
    """`toolkit serve --runtime onnx` (a live server on 127.0.0.1) and `toolkit interactive --runtime
    onnx` answer from the export: a run whose export scores differently from its torch model (the
    export of another run with the same classes) gives the export's answer, not torch's."""
    import httpx
    from conftest import free_port

    copy = tmp_path / "run"
    shutil.copytree(runs("ngram").run_dir, copy)
    other = runs("cnn").run_dir  # same data and classes, another model: other probabilities
    if not (other / ONNX_FILE).is_file():
        toolkit.export_run(other)
    shutil.copyfile(other / ONNX_FILE, copy / ONNX_FILE)
    name = "Kowalski"
    through_export = toolkit.load_run(copy, runtime="onnx").predict([name], 2)[0]
    through_torch = toolkit.load_run(copy, runtime="torch").predict([name], 2)[0]
    exported = [(g.label, round(g.log_probability, 4)) for g in through_export.guesses]
    assert exported != [(g.label, round(g.log_probability, 4)) for g in through_torch.guesses]

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "serve", "--run", str(copy), "--port", str(port),
         "--runtime", "onnx"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for _ in range(300):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/predict/{name}", params={"top": 2}, timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.2)
        served = [(g["label"], round(g["log_probability"], 4)) for g in response.json()["predictions"]]
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert served == exported

    typed = run_toolkit(["interactive", "--run", str(copy), "--runtime", "onnx", "--top", "2"],
                        input=name + "\n")
    assert typed.returncode == 0, typed.stderr
    assert through_export.guesses[0].label in typed.stdout.split(name, 1)[1]

    (copy / ONNX_FILE).unlink()
    line = _one_line_error(run_toolkit(["serve", "--run", str(copy), "--port", "0", "--runtime", "onnx"]))
    assert line == (f"Error: run '{copy}' has no ONNX export (model.onnx); run `toolkit export --run {copy}` "
                    "first.")

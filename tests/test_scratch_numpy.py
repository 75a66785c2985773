"""`scratch-rnn`'s and `scratch-gru`'s forward pass on numpy arrays (toolkit/plugins/scratch_numpy.py),
what `toolkit predict` uses for them by default (`--runtime auto`): the torch models' logits within
float32 rounding on real names and hostile texts, in many chunks and one; the prediction fixture's
classes with every probability within one unit of its sixth decimal; torch never imported."""

from __future__ import annotations

import csv
import io
import json
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch
from test_startup import heavy_imports, importtime

import toolkit
import toolkit.longest_first as longest_first
from toolkit.numpy_runtime import ArrayScorer
from toolkit.plugins.onehot import OneHotEncoder
from toolkit.testing import ARRAYS_ATOL, ARRAYS_RTOL

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "prediction"
NAMES = FIXTURE / "names.txt"
#: Texts of one character, of none (encoded as one unknown character), with characters the
#: alphabet lacks, and one longer than any name.
HOSTILE = ["", "a", "Z", "Ø", "O'Neil-Smith", "  ", "x" * 300, "東京", "Dvořák"]
#: A printed probability ("%.6f") of a sum that differs from torch's in float32 rounding may land
#: one unit of its sixth decimal away; the float difference of two such cells is 1e-6 plus noise.
ONE_UNIT = 1e-6 + 1e-12


def real_names(count: int = 1000) -> list[str]:
    return NAMES.read_text(encoding="utf-8").splitlines()[:count]


def both_models(model: str, classes: int = 7, **params):
    """The torch model with random weights (scaled as a trained one's: each row's products of
    order one), its numpy forward pass loaded with the same, and the encoder of the names."""
    encoder = OneHotEncoder("auto")
    encoder.fit(real_names())
    spec = toolkit.load_registry().model(model)
    values = {"hidden_size": 32, **params}
    torch_model = spec.build(vocab_size=encoder.vocab_size, num_classes=classes, params=values)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in torch_model.parameters():
            scale = 1.5 / weight.shape[-1] ** 0.5
            weight.copy_(scale * torch.randn(weight.shape, generator=generator))
    arrays = spec.build_arrays(vocab_size=encoder.vocab_size, num_classes=classes, params=values)
    arrays.load({name: value.numpy() for name, value in torch_model.state_dict().items()})
    return torch_model.eval(), arrays, encoder


@pytest.mark.parametrize(("model", "params"), [
    ("scratch-rnn", {}), ("scratch-rnn", {"nonlinearity": "sigmoid"}),
    ("scratch-rnn", {"nonlinearity": "none"}), ("scratch-gru", {}),
], ids=["rnn-tanh", "rnn-sigmoid", "rnn-none", "gru"])
@pytest.mark.parametrize("chunk", [longest_first.CHUNK, 37, "no-prefix-tables"])
def test_logits_are_the_torch_models_on_names_and_hostile_texts(monkeypatch, model, params, chunk):
    """In one chunk and in many (37 texts: lengths differ within and between chunks), rows in the
    order given, as torch's forward on the whole padded batch; `scratch-gru` with its
    two-character state tables and without them (a vocabulary too wide for `LongestFirst.prefix_bytes`)."""
    if chunk == "no-prefix-tables":
        monkeypatch.setattr(toolkit.LongestFirst, "prefix_bytes", 0)
    else:
        monkeypatch.setattr(longest_first, "CHUNK", chunk)
    torch_model, arrays, encoder = both_models(model, **params)
    if model == "scratch-gru":
        assert (arrays.prefix is None) == (chunk == "no-prefix-tables")
    texts = real_names(1000) + HOSTILE
    indices, lengths = encoder.encode(texts)
    with torch.inference_mode():
        wanted = torch_model(indices, lengths).numpy()
    found = arrays.logits(indices.numpy(), lengths.numpy())
    assert found.dtype == np.float32 and found.shape == wanted.shape
    np.testing.assert_allclose(found, wanted, rtol=ARRAYS_RTOL, atol=ARRAYS_ATOL)
    assert (found.argmax(axis=1) == wanted.argmax(axis=1)).all()


def test_a_text_of_no_characters_gets_the_torch_models_logits():
    """Length 0 (no encoder makes one: an empty text is one unknown character) reads nothing."""
    for model in ("scratch-rnn", "scratch-gru"):
        torch_model, arrays, _ = both_models(model)
        indices, lengths = torch.tensor([[5, 6, 0], [0, 0, 0], [7, 0, 0]]), torch.tensor([2, 0, 1])
        with torch.inference_mode():
            wanted = torch_model(indices, lengths).numpy()
        np.testing.assert_allclose(arrays.logits(indices.numpy(), lengths.numpy()), wanted,
                                   rtol=ARRAYS_RTOL, atol=ARRAYS_ATOL)


def test_the_builtin_contract_checks_both_numpy_forward_passes():
    """toolkit.testing.check_model trains each and compares array_factory's logits with forward's."""
    for model in ("scratch-rnn", "scratch-gru"):
        toolkit.testing.check_model(model, {"hidden_size": 16})


def test_the_fixture_run_predicts_through_numpy_by_default_with_the_torch_probabilities():
    numpy_side = toolkit.load_run(FIXTURE / "scratch-rnn")
    torch_side = toolkit.load_run(FIXTURE / "scratch-rnn", runtime="torch")
    assert isinstance(numpy_side.scorer, ArrayScorer) and torch_side.scorer is None
    texts = [text for text in numpy_side.prepare(real_names()) if text]
    found, wanted = numpy_side.rank(texts, 3), torch_side.rank(texts, 3)
    np.testing.assert_array_equal(found.classes, wanted.classes)
    np.testing.assert_allclose(found.probabilities, wanted.probabilities, rtol=0, atol=1e-6)


def expected(output: str) -> bytes:
    return lzma.decompress((FIXTURE / "scratch-rnn" / f"{output}.xz").read_bytes())


def test_toolkit_predict_writes_the_fixtures_classes_without_importing_torch(tmp_path):
    """A real `toolkit predict --input` process (default runtime): no heavy import; every text and
    class cell as the fixture (written by torch before the numpy runtime existed), every
    probability within one unit of its sixth decimal; and the JSON's log-probabilities close."""
    target = tmp_path / "out.csv"
    command = ["-m", "toolkit", "predict", "--run", str(FIXTURE / "scratch-rnn"), "--input", str(NAMES),
               "--top", "3"]
    result = importtime(*command, "--output", str(target))
    assert result.returncode == 0, result.stderr[-2000:]
    assert heavy_imports(result.stderr) == set()
    found = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    wanted = list(csv.reader(io.StringIO(expected("out.csv").decode("utf-8"), newline="")))
    assert len(found) == len(wanted) > 1000 and found[0] == wanted[0]
    numbers = [i for i, name in enumerate(wanted[0]) if name.startswith("probability")]
    for got, want in zip(found[1:], wanted[1:], strict=True):
        assert len(got) == len(want)  # an unread text's row stops early
        for i, (cell, wanted_cell) in enumerate(zip(got, want, strict=True)):
            if i in numbers and wanted_cell:
                assert abs(float(cell) - float(wanted_cell)) <= ONE_UNIT, (got, want)
            else:
                assert cell == wanted_cell, (got, want)
    lines = tmp_path / "out.jsonl"
    result = importtime(*command, "--json", "--output", str(lines))
    assert result.returncode == 0 and heavy_imports(result.stderr) == set()
    found_lines = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines()]
    wanted_lines = [json.loads(line) for line in expected("out.jsonl").decode("utf-8").splitlines()]
    assert len(found_lines) == len(wanted_lines) > 1000
    for got, want in zip(found_lines, wanted_lines, strict=True):
        assert got["input"] == want["input"]
        assert [g["label"] for g in got["predictions"]] == [g["label"] for g in want["predictions"]]
        for a, b in zip(got["predictions"], want["predictions"], strict=True):
            assert a["log_probability"] == pytest.approx(b["log_probability"], abs=1e-5)



"""`predict --runtime numpy` (and `auto`): a linear `ngram`'s forward pass on numpy arrays, without
torch. The same n-gram ids and pooling weights as the torch model on real names and hostile texts,
the same logits to the bit on real runs (names, words, multi-label), the prediction fixture's CSV
byte for byte, torch never imported, and the refusals in one line."""

from __future__ import annotations

import csv
import io
import json
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import names_csv, run_toolkit
from test_multilabel import TAGGED_PARAMS, write_tagged_csv
from test_startup import heavy_imports, importtime

import toolkit
from toolkit.numpy_runtime import ArrayScorer
from toolkit.plugins.ngram import build_ngram, build_ngram_arrays
from toolkit.plugins.onehot import OneHotEncoder

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "prediction"
NAMES = FIXTURE / "names.txt"
OPTIONS = ["--min-confidence", "0.5", "--coverage", "0.9"]
#: Texts that test the hashing: digits, hyphens, joiners, CJK, emoji, unknown characters, case,
#: spaces, one character, nothing, and a long text.
HOSTILE = ["", " ", "a", "C++ and C#", "AT&T 3.5 e-mail", "state-of-the-art", "東京 大阪 x",
           "日本語のテキスト", "😀 emoji 😀😀", "a b c d e f g h", "Don't stop", "  spaced  out  ",
           "123 456-789", "ÀÉÎ àéî",
           "MacLeod O'Neill", "_", "''", "-", "ÿ unknown ħ", "x" * 300, "Dvořák Straße"]
#: The alphabet the encoder learns: word characters, separators and joiners (not every one above).
ALPHABET_TEXTS = ["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 -.&+#'_ 東京大阪日本語",
                  "Ééàî ß"]


def real_names(count: int = 400) -> list[str]:
    return NAMES.read_text(encoding="utf-8").splitlines()[:count]


def encoder_for(texts: list[str]) -> OneHotEncoder:
    encoder = OneHotEncoder("auto")
    encoder.fit(texts)
    return encoder


def both_models(encoder: OneHotEncoder, classes: int = 5, **params):
    """The torch model with random weights, and its numpy forward pass loaded with the same."""
    model = build_ngram(encoder.vocab_size, classes, encoder=encoder, **params)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in model.parameters():
            weight.copy_(torch.randn(weight.shape, generator=generator))
    arrays = build_ngram_arrays(encoder.vocab_size, classes, encoder=encoder, **params)
    arrays.load({name: value.numpy() for name, value in model.state_dict().items()})
    return model.eval(), arrays


def torch_entries(model, indices, lengths) -> tuple[np.ndarray, np.ndarray]:
    """The torch model's non-PAD n-gram ids and their pooling weights, text by text in its order."""
    groups = model._id_groups(indices, lengths)
    ids, weights = torch.cat(groups, dim=1), model.pooling_weights(groups)
    real = ids != toolkit.PAD
    return ids[real].numpy(), weights[real].numpy()


@pytest.mark.parametrize("params", [
    {"word_ngrams": "0"},
    {"word_ngrams": "2"},
    {"word_ngrams": "3", "min_n": 2, "max_n": 6, "buckets": 1000},
    {"word_ngrams": "1", "pooling": "mean", "max_n": 8},
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
def test_ids_weights_and_logits_are_the_torch_models_on_names_and_hostile_texts(params):
    texts = real_names() + HOSTILE
    encoder = encoder_for(ALPHABET_TEXTS)
    model, arrays = both_models(encoder, **params)
    indices, lengths = encoder.encode(texts)
    data, ids, indptr = arrays.pooling_matrix(indices.numpy(), lengths.numpy())
    wanted_ids, wanted_weights = torch_entries(model, indices, lengths)
    np.testing.assert_array_equal(ids, wanted_ids)
    assert np.diff(indptr).tolist() == (model.ngram_ids(indices, lengths) != toolkit.PAD).sum(1).tolist()
    if params.get("pooling") != "mean":
        np.testing.assert_array_equal(data, wanted_weights)
    with torch.inference_mode():
        wanted = model(indices, lengths).numpy()
    found = arrays.logits(indices.numpy(), lengths.numpy())
    assert found.dtype == np.float32
    np.testing.assert_array_equal(found, wanted)  # to the bit: the same sum in the same order
    assert arrays.logits(indices.numpy()[:0], lengths.numpy()[:0]).shape == (0, 5)
    empty = arrays.pooling_matrix(indices.numpy()[:0], lengths.numpy()[:0])
    assert [len(part) for part in empty] == [0, 0, 1]


def test_words_are_read_where_the_texts_have_them():
    """The hostile texts do give word n-grams (the test above compares something)."""
    encoder = encoder_for(ALPHABET_TEXTS)
    _, arrays = both_models(encoder, word_ngrams="2")
    indices, lengths = encoder.encode(HOSTILE)
    ids, counts = arrays.word_ids(indices.numpy()[np.arange(indices.shape[1]) < lengths.numpy()[:, None]],
                                  lengths.numpy())
    assert counts[HOSTILE.index("C++ and C#")] == 3 + 2  # three words, two pairs
    assert counts[HOSTILE.index("東京 大阪 x")] == 5 + 4  # each ideograph a word
    assert counts[HOSTILE.index("")] == 1  # an empty text is one unknown character, a word
    assert len(ids) == counts.sum()


def test_a_vocabulary_too_large_for_one_modulo_hashes_as_torch():
    """Above ONE_MODULO_VOCABULARY symbols the hash takes a modulo per character, in both."""
    from toolkit.plugins.ngram import NgramConfig
    from toolkit.plugins.ngram_hash import ONE_MODULO_VOCABULARY
    from toolkit.plugins.ngram_model import NgramModel
    from toolkit.plugins.ngram_numpy import NgramArrays

    vocab = ONE_MODULO_VOCABULARY + 5
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 12, size=300)
    indices = np.where(np.arange(12) < lengths[:, None], rng.integers(2, vocab, size=(300, 12)), 0)
    model = NgramModel(vocab, 3, NgramConfig(buckets=997))
    arrays = NgramArrays(vocab, 3, 997, 1, 4, "sqrt")
    wanted, _ = torch_entries(model, torch.from_numpy(indices), torch.from_numpy(lengths))
    np.testing.assert_array_equal(arrays.pooling_matrix(indices, lengths)[1], wanted)


def test_the_fixture_run_gives_the_torch_logits_and_probabilities():
    torch_side = toolkit.load_run(FIXTURE / "ngram", runtime="torch")
    numpy_side = toolkit.load_run(FIXTURE / "ngram", runtime="numpy")
    assert isinstance(numpy_side.scorer, ArrayScorer) and torch_side.scorer is None
    texts = [text for text in numpy_side.prepare(real_names(1000)) if text]
    indices, lengths = torch_side.encoder.encode(texts)
    with torch.inference_mode():
        wanted = torch_side.model(indices, lengths).numpy()
    np.testing.assert_array_equal(numpy_side.scorer.model.logits(indices.numpy(), lengths.numpy()), wanted)
    found, expected = numpy_side.predict_proba(texts), torch_side.predict_proba(texts)
    np.testing.assert_allclose(np.log(found), np.log(expected), rtol=0, atol=1e-12)


def expected(output: str) -> bytes:
    return lzma.decompress((FIXTURE / "ngram" / f"{output}.xz").read_bytes())


@pytest.mark.parametrize(("output", "extra"), [("out.csv", []), ("options.csv", OPTIONS)])
def test_numpy_runtime_writes_the_fixtures_csv_byte_for_byte(cli, tmp_path, output, extra):
    target = tmp_path / output
    result = cli(["predict", "--run", str(FIXTURE / "ngram"), "--input", str(NAMES), "--top", "3",
                  "--runtime", "numpy", *extra, "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == expected(output)


def test_numpy_runtime_json_lines_and_partition_match_the_fixture(cli, tmp_path):
    """JSON and the batch engine's partitions show every digit: the log-probabilities agree to
    1e-12 (the softmax is numpy's, not torch's: the last bit may differ), everything else exactly."""
    result = cli(["predict", "--run", str(FIXTURE / "ngram"), "--input", str(NAMES), "--json",
                  "--runtime", "numpy", "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    wanted = [json.loads(line) for line in expected("out.jsonl").decode("utf-8").splitlines()]
    assert len(found) == len(wanted) > 1000
    for got, want in zip(found, wanted, strict=True):
        assert got["input"] == want["input"]
        assert [g["label"] for g in got["predictions"]] == [g["label"] for g in want["predictions"]]
        for a, b in zip(got["predictions"], want["predictions"], strict=True):
            assert a["log_probability"] == pytest.approx(b["log_probability"], abs=1e-12)
    from toolkit.batch import predict_files

    predict_files(FIXTURE / "ngram", str(NAMES), tmp_path / "parts", top=3, output_format="csv",
                  runtime="numpy")
    found_rows = list(csv.reader(io.StringIO((tmp_path / "parts" / "part-00000.csv").read_text("utf-8"))))
    wanted_rows = list(csv.reader(io.StringIO(expected("part.csv").decode("utf-8"))))
    assert len(found_rows) == len(wanted_rows) > 1000 and found_rows[0] == wanted_rows[0]
    numbers = [i for i, name in enumerate(wanted_rows[0]) if name.startswith("log_probability")]
    for got, want in zip(found_rows[1:], wanted_rows[1:], strict=True):
        assert [c for i, c in enumerate(got) if i not in numbers] == [
            c for i, c in enumerate(want) if i not in numbers]
        for i in numbers:
            assert (got[i] == want[i] == "") or float(got[i]) == pytest.approx(float(want[i]), abs=1e-12)


def test_predicting_with_the_numpy_runtime_never_imports_torch(tmp_path):
    """A real `toolkit predict` process, every import it makes listed by -X importtime."""
    target = tmp_path / "out.csv"
    result = importtime("-m", "toolkit", "predict", "--run", str(FIXTURE / "ngram"), "--input", str(NAMES),
                        "--runtime", "numpy", "--output", str(target))
    assert result.returncode == 0, result.stderr[-2000:]
    assert heavy_imports(result.stderr) == set()
    assert target.read_bytes() == expected("out.csv")
    shown = importtime("-m", "toolkit", "predict", "--run", str(FIXTURE / "ngram"),  # runtime: auto
                       "Hinton", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert heavy_imports(shown.stderr) == set()
    assert json.loads(shown.stdout)[0]["input"] == "Hinton"


def test_auto_picks_numpy_for_every_builtin_model_that_has_it_and_torch_for_the_others(
    tmp_path, trained_run
):
    assert isinstance(toolkit.load_run(FIXTURE / "ngram", runtime="auto").scorer, ArrayScorer)
    assert isinstance(toolkit.load_run(FIXTURE / "scratch-rnn", runtime="auto").scorer, ArrayScorer)
    assert isinstance(toolkit.load_run(trained_run.run_dir, runtime="auto").scorer, ArrayScorer)  # `gru`
    tiny = {"dataset.path": str(names_csv(tmp_path)), "train.epochs": 1, "train.threads": 1}
    cnn = toolkit.run(dataset="csv", model="cnn", params={**tiny, "model.filters": 8}, progress=False,
                      output=tmp_path / "cnn")
    assert isinstance(toolkit.load_run(cnn.run_dir, runtime="auto").scorer, ArrayScorer)
    embedded = toolkit.run(dataset="csv", model="ngram", params={**tiny, "model.dim": 8}, progress=False,
                           output=tmp_path / "embedded")
    assert toolkit.load_run(embedded.run_dir, runtime="auto").scorer is None  # Linear layers: torch


def embedded_ngram(tmp_path: Path) -> Path:
    """The ngram fixture run as an ngram with an embedding (dim > 0): Linear layers, torch only."""
    copy = tmp_path / "embedded"
    shutil.copytree(FIXTURE / "ngram", copy)
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    config["model"]["params"]["dim"] = 8
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return copy


def test_the_torch_model_of_a_numpy_predictor_is_built_when_first_used():
    """Explanations read the torch model: built from the weights the numpy runtime read."""
    predictor = toolkit.load_run(FIXTURE / "ngram", runtime="numpy")
    assert predictor._model is None
    torch_side = toolkit.load_run(FIXTURE / "ngram", runtime="torch")
    for name, value in torch_side.model.state_dict().items():
        assert torch.equal(predictor.model.state_dict()[name], value)
    explained = predictor.explain(["Hinton"])[0]
    assert explained.label == torch_side.explain(["Hinton"])[0].label


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_model_without_a_numpy_forward_pass_is_refused_in_one_line(tmp_path):
    copy = embedded_ngram(tmp_path)
    line = one_line_error(run_toolkit(["predict", "--run", str(copy), "--runtime", "numpy", "Hinton"]))
    assert line == (f"Error: model 'ngram' of run '{copy}' has no numpy forward pass for its parameters "
                    "(a linear `ngram`, dim=0, the recurrent models, `cnn` and an `ensemble` of these have "
                    "one); predict with --runtime torch or auto.")
    with pytest.raises(toolkit.ToolkitError, match="has no numpy forward pass"):
        toolkit.load_run(copy, runtime="numpy")


def test_damaged_weights_are_refused_in_one_line_without_torch(tmp_path):
    from safetensors.numpy import load_file, save_file

    for name, change, message in (
        ("nan", lambda w: w["bias"].__setitem__(0, np.nan), "hold NaN or infinite values (bias)"),
        ("shape", lambda w: w.__setitem__("bias", w["bias"][:-1].copy()),
         "do not fit the model in its config"),
    ):
        copy = tmp_path / name
        shutil.copytree(FIXTURE / "ngram", copy)
        weights = load_file(copy / "model.safetensors")
        change(weights)
        save_file(weights, copy / "model.safetensors")
        result = importtime("-m", "toolkit", "predict", "--run", str(copy), "--runtime", "numpy", "Hinton")
        errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
        assert result.returncode == 2 and len(errors) == 1 and message in errors[0], errors
        assert heavy_imports(result.stderr) == set()


@pytest.fixture(scope="module")
def word_run(tmp_path_factory):
    """A tiny real run of names with word n-grams on (2 epochs, 4 languages)."""
    folder = tmp_path_factory.mktemp("numpy-words")
    data = names_csv(folder, ("Greek", "Polish", "Scottish", "Japanese"))
    params = {"dataset.path": str(data), "train.epochs": 2, "train.threads": 1, "model.word_ngrams": "2",
              "encoder.alphabet": ALPHABET_TEXTS[0]}
    return toolkit.run(dataset="csv", model="ngram", params=params, progress=False, output=folder / "run")


@pytest.fixture(scope="module")
def tagged_run(tmp_path_factory):
    """A tiny real multi-label ngram run (texts of several words: word n-grams on)."""
    folder = tmp_path_factory.mktemp("numpy-tagged")
    path = write_tagged_csv(folder / "tags.csv", count=400)
    params = {"dataset.path": str(path), **TAGGED_PARAMS, "train.epochs": 2}
    return toolkit.run("csv", model="ngram", params=params, output=folder / "run", progress=False)


@pytest.mark.parametrize("which", ["word_run", "tagged_run"])
def test_word_and_multi_label_runs_predict_as_with_torch(cli, request, tmp_path, which):
    result = request.getfixturevalue(which)
    torch_side = toolkit.load_run(result.run_dir, runtime="torch")
    numpy_side = toolkit.load_run(result.run_dir, runtime="numpy")
    assert torch_side.model.word_order == 2
    texts = list(result.split.test.texts) + [text for text in HOSTILE if text.strip()]
    found, wanted = numpy_side.predict_proba(texts), torch_side.predict_proba(texts)
    np.testing.assert_allclose(np.log(found), np.log(wanted), rtol=0, atol=1e-12)
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    outputs = {}
    for runtime in ("torch", "numpy"):
        done = cli(["predict", "--run", str(result.run_dir), "--input", str(source), "--runtime", runtime,
                    "--output", str(tmp_path / f"{runtime}.csv")])
        assert done.exit_code == 0, done.output
        outputs[runtime] = (tmp_path / f"{runtime}.csv").read_bytes()
    assert outputs["numpy"] == outputs["torch"]
    rows = list(csv.DictReader(io.StringIO(outputs["numpy"].decode("utf-8"), newline="")))
    assert len(rows) == len(texts)
    if which == "tagged_run":
        assert numpy_side.multi_label is not None and "labels" in rows[0]


def test_ranking_keeps_ties_in_class_order():
    """The top classes are a stable sort's: the largest first, equal ones in class order."""
    from toolkit.ranking import _top

    rng = np.random.default_rng(0)
    for width in (2, 3, 5, 18):
        tied = rng.integers(0, 4, size=(3000, width)) / 4  # most rows hold ties
        for top in range(1, width + 1):
            columns, values = _top(tied, top)
            stable = np.argsort(-tied, axis=1, kind="stable")[:, :top]
            np.testing.assert_array_equal(columns, stable)
            np.testing.assert_array_equal(values, np.take_along_axis(tied, stable, axis=1))


def test_check_model_checks_a_numpy_forward_pass_against_forward():
    """toolkit.testing.check_model passes ngram's and names a numpy forward pass that differs."""
    import dataclasses

    import toolkit.testing

    toolkit.testing.check_model("ngram", {"word_ngrams": "2"})
    ngram = toolkit.load_registry().model("ngram")

    class Off:
        def __init__(self, model) -> None:
            self.model, self.shapes = model, model.shapes

        def load(self, weights) -> None:
            self.model.load(weights)

        def logits(self, indices, lengths):
            return self.model.logits(indices, lengths) + np.float32(0.01)

    def off_by_a_little(**kwargs):
        return Off(build_ngram_arrays(**kwargs))

    broken = dataclasses.replace(ngram, name="ngram-off", array_factory=off_by_a_little)
    with pytest.raises(toolkit.testing.ContractError, match="array_factory's logits differ from forward's"):
        toolkit.testing.check_model(broken)

"""`cnn`'s and `ensemble`'s forward passes on numpy arrays (toolkit/plugins/cnn_numpy.py,
ensemble_numpy.py), what `toolkit predict` uses for them by default (`--runtime auto`): the torch
models' logits within float32 rounding on real names and hostile texts, in many chunks and one,
with more padding; an ensemble only when every member has one; a tiny trained run predicting the
classes torch predicts, torch never imported."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import names_folder, run_toolkit
from test_startup import heavy_imports, importtime

import toolkit
import toolkit.plugins.cnn_numpy as cnn_numpy
from toolkit import PAD
from toolkit.numpy_runtime import ArrayScorer
from toolkit.plugins.cnn_numpy import CNNArrays
from toolkit.plugins.ensemble_numpy import EnsembleArrays
from toolkit.plugins.onehot import OneHotEncoder
from toolkit.testing import ARRAYS_ATOL, ARRAYS_RTOL

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "prediction"
NAMES = FIXTURE / "names.txt"
#: Texts of one character, of none (encoded as one unknown character), of spaces, with characters
#: the alphabet lacks, and one longer than any name.
HOSTILE = ["", "a", "Z", "Ø", "O'Neil-Smith", "  ", "x" * 300, "東京", "Dvořák"]


def real_names(count: int = 1000) -> list[str]:
    return NAMES.read_text(encoding="utf-8").splitlines()[:count]


def names_encoder() -> OneHotEncoder:
    encoder = OneHotEncoder("auto")
    encoder.fit(real_names())
    return encoder


def both_models(model: str, encoder: OneHotEncoder, classes: int = 7, multi_label: bool = False,
                **params):
    """The torch model with random weights scaled as a trained one's (each product of order one;
    the embeddings' PAD row zero, as padding_idx keeps it), its numpy forward pass loaded with the
    same, and a member weight for each member of an ensemble."""
    spec = toolkit.load_registry().model(model)
    shape = {"vocab_size": encoder.vocab_size, "num_classes": classes, "params": params, "encoder": encoder,
             "multi_label": multi_label}
    torch_model = spec.build(**shape)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in torch_model.named_parameters():
            fan_in = int(np.prod(weight.shape[1:])) if weight.dim() > 1 else 4
            scale = 1.0 if name.endswith("embedding.weight") else 1.5 / fan_in ** 0.5
            weight.copy_(scale * torch.randn(weight.shape, generator=generator))
            if name.endswith("embedding.weight"):
                weight[PAD] = 0
        if hasattr(torch_model, "member_weights"):
            raw = torch.arange(1, len(torch_model.members) + 1, dtype=torch.float32)
            torch_model.member_weights.copy_(raw / raw.sum())
    arrays = spec.build_arrays(**shape)
    assert arrays is not None
    weights = {name: value.numpy() for name, value in torch_model.state_dict().items()}
    assert dict(arrays.shapes) == {name: value.shape for name, value in weights.items()}
    arrays.load(weights)
    return torch_model.eval(), arrays


def assert_same_logits(torch_model, arrays, indices: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
    """The numpy logits equal torch's within float32 rounding, also with 5 more padding positions."""
    with torch.inference_mode():
        wanted = torch_model(indices, lengths).numpy()
    padded = np.concatenate([indices.numpy(), np.full((len(indices), 5), PAD, dtype=np.int64)], axis=1)
    for batch in (indices.numpy(), padded):
        found = arrays.logits(batch, lengths.numpy())
        assert found.dtype == np.float32 and found.shape == wanted.shape
        np.testing.assert_allclose(found, wanted, rtol=ARRAYS_RTOL, atol=ARRAYS_ATOL)
        assert (found.argmax(axis=1) == wanted.argmax(axis=1)).all()
    return wanted


@pytest.mark.parametrize("params", [
    {}, {"kernels": "1,3"}, {"kernels": "5,1,2,2", "filters": 16, "embedding_dim": 8},
    {"kernels": "7", "filters": 3, "embedding_dim": 128}, {"kernels": "1"},
], ids=["default", "widths-1-3", "unsorted-repeated", "one-wide", "width-1-only"])
@pytest.mark.parametrize("chunk", [cnn_numpy.CHUNK_VALUES, 1])
def test_cnn_logits_are_the_torch_models_on_names_and_hostile_texts(monkeypatch, params, chunk):
    """In chunks of many texts and of one text each, rows in the order given, as torch's forward
    on the whole padded batch."""
    monkeypatch.setattr(cnn_numpy, "CHUNK_VALUES", chunk)
    encoder = names_encoder()
    torch_model, arrays = both_models("cnn", encoder, **params)
    assert isinstance(arrays, CNNArrays)
    assert_same_logits(torch_model, arrays, *encoder.encode(real_names(1000) + HOSTILE))


def test_a_text_of_no_characters_gets_the_torch_cnns_logits():
    """Length 0 (no encoder makes one: an empty text is one unknown character): a width of 2 or
    more has windows of padding only (its bias); width 1 has none, and torch's max of none is
    -inf, which makes the logits NaN: the numpy pass gives the same."""
    encoder = names_encoder()
    indices, lengths = torch.tensor([[5, 6, 0], [0, 0, 0], [7, 0, 0]]), torch.tensor([2, 0, 1])
    finite = assert_same_logits(*both_models("cnn", encoder, kernels="2,3"), indices, lengths)
    assert np.isfinite(finite).all()
    with_width_one = assert_same_logits(*both_models("cnn", encoder, kernels="1,2"), indices, lengths)
    assert np.isnan(with_width_one[1]).all() and np.isfinite(with_width_one[[0, 2]]).all()


def test_no_texts_give_no_logits():
    arrays = both_models("cnn", names_encoder())[1]
    assert arrays.logits(np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.int64)).shape == (0, 7)


@pytest.mark.parametrize("multi_label", [False, True], ids=["single-label", "multi-label"])
@pytest.mark.parametrize("params", [
    {}, {"combine": "probability"},
    {"members": "cnn:model.kernels=1:model.filters=8,ngram:model.max_n=3:model.pooling=mean"},
], ids=["default", "probability", "own-settings"])
def test_ensemble_logits_are_the_torch_models(params, multi_label):
    """The default members for names (ngram, cnn, a 1-5-gram ngram with weight decay, gru),
    combined by log-probability or probability, single- and multi-label, and members with their
    own model settings."""
    encoder = names_encoder()
    torch_model, arrays = both_models("ensemble", encoder, multi_label=multi_label, **params)
    assert isinstance(arrays, EnsembleArrays)
    members = [type(member).__name__ for member in arrays.members]
    default = ["NgramArrays", "CNNArrays", "NgramArrays", "TorchRNNArrays"]
    assert members == (default if not params.get("members") else ["CNNArrays", "NgramArrays"])
    if "members" in params:  # the member's own settings reached its numpy pass
        assert arrays.members[0].widths == [1] and arrays.members[0].filters == 8
        assert arrays.members[1].max_n == 3 and arrays.members[1].pooling == "mean"
    assert_same_logits(torch_model, arrays, *encoder.encode(real_names(1000) + HOSTILE))


@pytest.mark.parametrize(("members", "numpy"), [
    ("ngram:model.dim=8,cnn", False), ("lstm,ngram:model.dim=4", False), ("ngram,gru", True),
])
def test_an_ensemble_predicts_through_numpy_only_when_every_member_can(members, numpy):
    encoder = names_encoder()
    spec = toolkit.load_registry().model("ensemble")
    arrays = spec.build_arrays(vocab_size=encoder.vocab_size, num_classes=3, params={"members": members},
                               encoder=encoder)
    assert (arrays is not None) == numpy


def test_a_vocabulary_whose_tables_would_be_too_large_is_left_to_torch():
    """The tables hold a row of filters per character, kernel width and offset: past
    MAX_TABLE_BYTES the cnn (and an ensemble with it) predicts with torch."""
    from toolkit.plugins.cnn import MAX_TABLE_BYTES

    registry = toolkit.load_registry()
    too_many = MAX_TABLE_BYTES // (4 * 128 * (2 + 3 + 4 + 5)) + 1  # the default filters and widths
    for model in ("cnn", "ensemble"):
        assert registry.model(model).build_arrays(vocab_size=too_many, num_classes=3, params={}) is None
    narrow = registry.model("cnn").build_arrays(vocab_size=too_many, num_classes=3,
                                                params={"filters": 8, "kernels": "2"})
    assert isinstance(narrow, CNNArrays)


def test_the_builtin_contract_checks_the_cnn_and_ensemble_numpy_passes():
    """toolkit.testing.check_model trains each and compares array_factory's logits with forward's."""
    toolkit.testing.check_model("cnn", {"filters": 8, "embedding_dim": 8, "kernels": "1,2,4"})
    toolkit.testing.check_model("ensemble", {"members": "ngram,cnn:model.filters=8"})
    toolkit.testing.check_model("ensemble", {"members": "cnn:model.filters=8,ngram",
                                             "combine": "probability"}, multi_label=True)


@pytest.fixture(scope="module")
def small_names(tmp_path_factory) -> Path:
    """Four real languages, 60 distinct names each (plumbing, not accuracy)."""
    folder = tmp_path_factory.mktemp("cnn-numpy-names")
    names_folder(folder, 60)
    return folder


@pytest.fixture(scope="module", params=["cnn", "ensemble"])
def tiny_run(request, small_names, tmp_path_factory) -> Path:
    """A tiny trained run: 2 epochs of cnn, or of each default ensemble member."""
    output = tmp_path_factory.mktemp("cnn-numpy-runs") / request.param
    params = {"dataset.data_dir": str(small_names), "train.threads": 1, "train.epochs": 2}
    return toolkit.run(dataset="folder", model=request.param, params=params, output=output,
                       progress=False).run_dir


def test_a_trained_run_predicts_through_numpy_by_default_as_torch(tiny_run):
    numpy_side, torch_side = toolkit.load_run(tiny_run), toolkit.load_run(tiny_run, runtime="torch")
    assert isinstance(numpy_side.scorer, ArrayScorer) and torch_side.scorer is None
    texts = [text for text in numpy_side.prepare(real_names() + HOSTILE) if text]
    found, wanted = numpy_side.rank(texts, 3), torch_side.rank(texts, 3)
    np.testing.assert_array_equal(found.classes, wanted.classes)
    # the logits within float32 rounding (testing.py's tolerance), and so the probabilities
    np.testing.assert_allclose(found.probabilities, wanted.probabilities, rtol=0, atol=ARRAYS_ATOL)


def test_toolkit_predict_through_numpy_never_imports_torch_and_ranks_as_torch(tiny_run, tmp_path):
    """Real `toolkit predict --input` processes: the default runtime imports no heavy library and
    writes, for every text, the top classes `--runtime torch` writes."""
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(real_names() + [text for text in HOSTILE if text.strip()]) + "\n",
                      encoding="utf-8")
    command = ["-m", "toolkit", "predict", "--run", str(tiny_run), "--input", str(source), "--top", "3"]
    result = importtime(*command, "--output", str(tmp_path / "auto.csv"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert heavy_imports(result.stderr) == set()
    done = run_toolkit(["predict", "--run", str(tiny_run), "--input", str(source), "--top", "3",
                        "--runtime", "torch", "--output", str(tmp_path / "torch.csv")])
    assert done.returncode == 0, done.stderr
    tables = {}
    for runtime in ("auto", "torch"):
        text = (tmp_path / f"{runtime}.csv").read_text(encoding="utf-8")
        tables[runtime] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(tables["auto"]) == len(tables["torch"]) > 1000
    header = list(tables["auto"][0])
    classes = [name for name in header if not name.startswith("probability")]
    for got, want in zip(tables["auto"], tables["torch"], strict=True):
        assert [got[name] for name in classes] == [want[name] for name in classes]
        for name in set(header) - set(classes):
            if want[name]:
                assert abs(float(got[name]) - float(want[name])) <= ARRAYS_ATOL, (got, want)

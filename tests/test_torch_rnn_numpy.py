"""`gru`, `lstm` and `rnn`'s forward pass on numpy arrays (toolkit/plugins/torch_rnn_numpy.py), what
`toolkit predict` uses for them by default (`--runtime auto`): the torch models' logits within
float32 rounding for every layer count, direction and pooling, on real names and hostile texts,
in many chunks and one; real trained runs predicted without importing torch, with the classes
`--runtime torch` gives."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import names_csv
from test_scratch_numpy import FIXTURE, HOSTILE, NAMES, ONE_UNIT, real_names
from test_scratch_numpy import both_models as scratch_models
from test_startup import heavy_imports, importtime

import toolkit
import toolkit.longest_first as longest_first
import toolkit.plugins.torch_rnn_numpy as torch_rnn_numpy
from toolkit.numpy_runtime import ArrayScorer
from toolkit.testing import ARRAYS_ATOL, ARRAYS_RTOL

CELLS = ("rnn", "gru", "lstm")
#: Every shape of the model: one or two layers, one or two directions, both poolings.
SHAPES = [{"num_layers": layers, "bidirectional": both, "pooling": pooling}
          for layers, both, pooling in itertools.product((1, 2), (True, False), ("last", "last+max"))]


def shape_id(params: dict) -> str:
    return f"{params['num_layers']}layer-{'bi' if params['bidirectional'] else 'uni'}-{params['pooling']}"


def both_models(cell: str, classes: int = 7, **params):
    """The torch model with random weights scaled as a trained one's, its numpy forward pass
    loaded with the same, and the encoder of the names (test_scratch_numpy's, with embeddings)."""
    return scratch_models(cell, classes, **{"embedding_dim": 16, **params})


@pytest.mark.parametrize("params", SHAPES, ids=shape_id)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("chunk", ["default", "one", 37, "no-prefix-tables"])
def test_logits_are_the_torch_models_on_names_and_hostile_texts(monkeypatch, cell, params, chunk):
    """In the default chunks, in one, and in many (37 texts: lengths differ within and between
    chunks; the 300-character text alone in the first), rows in the order given, as torch's
    packed forward; with the first layer's two-character state tables and without them (a
    vocabulary too wide for `LongestFirst.prefix_bytes`)."""
    if chunk == "one":
        monkeypatch.setattr(torch_rnn_numpy, "STEP_BYTES", 1 << 40)
    elif chunk == "no-prefix-tables":
        monkeypatch.setattr(toolkit.LongestFirst, "prefix_bytes", 0)
    elif chunk != "default":
        monkeypatch.setattr(longest_first, "CHUNK", chunk)
    torch_model, arrays, encoder = both_models(cell, **params)
    assert (arrays.prefix is None) == (chunk == "no-prefix-tables")
    texts = real_names(1000) + HOSTILE
    indices, lengths = encoder.encode(texts)
    assert int(lengths.min()) == 1 and int(lengths.max()) == 300  # the empty text: one unknown character
    with torch.inference_mode():
        wanted = torch_model(indices, lengths).numpy()
    if chunk == "one":
        assert arrays.chunk_size() >= len(texts)
    found = arrays.logits(indices.numpy(), lengths.numpy())
    assert found.dtype == np.float32 and found.shape == wanted.shape
    np.testing.assert_allclose(found, wanted, rtol=ARRAYS_RTOL, atol=ARRAYS_ATOL)
    assert (found.argmax(axis=1) == wanted.argmax(axis=1)).all()


@pytest.mark.parametrize("cell", CELLS)
def test_each_text_alone_gets_the_logits_it_gets_in_a_batch(cell):
    """A single character, a long text and a name, each alone (a chunk of one) and together."""
    torch_model, arrays, encoder = both_models(cell, num_layers=2, pooling="last+max")
    indices, lengths = (tensor.numpy() for tensor in encoder.encode(["a", "x" * 300, "Papadopoulos"]))
    together = arrays.logits(indices, lengths)
    for row in range(3):
        alone = arrays.logits(indices[row:row + 1, : lengths[row]], lengths[row:row + 1])
        np.testing.assert_allclose(alone, together[row:row + 1], rtol=ARRAYS_RTOL, atol=ARRAYS_ATOL)


@pytest.mark.parametrize("cell", CELLS)
def test_the_builtin_contract_checks_the_numpy_forward_pass(cell):
    """toolkit.testing.check_model trains each and compares array_factory's logits with forward's."""
    toolkit.testing.check_model(cell, {"hidden_size": 16, "embedding_dim": 8})
    toolkit.testing.check_model(cell, {"hidden_size": 16, "embedding_dim": 8, "num_layers": 2,
                                       "bidirectional": False, "pooling": "last+max"})


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A real run of each cell on a few languages' names, one epoch, each in another shape."""
    folder = tmp_path_factory.mktemp("torch-rnn-runs")
    data = names_csv(folder, ("Greek", "Polish", "Scottish", "Japanese"))
    shapes = {"rnn": {"model.num_layers": 2}, "gru": {"model.pooling": "last+max"},
              "lstm": {"model.bidirectional": False}}
    return {cell: toolkit.run(dataset="csv", model=cell, progress=False, output=folder / cell, params={
        "dataset.path": str(data), "train.epochs": 1, "train.threads": 1, "model.hidden_size": 24,
        "model.embedding_dim": 16, **shape}).run_dir for cell, shape in shapes.items()}


def predicted(run, *options: str) -> tuple[list[list[str]], set[str]]:
    """The CSV rows `toolkit predict` writes for the fixture's names, and the heavy libraries it imported."""
    target = run / ("out-with-options.csv" if options else "out.csv")
    result = importtime("-m", "toolkit", "predict", "--run", str(run), "--input", str(NAMES), "--top", "3",
                        "--output", str(target), *options)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    return rows, heavy_imports(result.stderr)


@pytest.mark.parametrize("cell", CELLS)
def test_toolkit_predict_uses_numpy_without_torch_and_gives_the_torch_runtimes_classes(tiny_runs, cell):
    """A real `toolkit predict --input` process (default runtime) imports no heavy library; every
    text and class cell is what `--runtime torch` writes, every probability within one unit of
    its sixth decimal."""
    run = tiny_runs[cell]
    assert isinstance(toolkit.load_run(run).scorer, ArrayScorer)
    found, imported = predicted(run)
    assert imported == set()
    wanted, imported = predicted(run, "--runtime", "torch")
    assert "torch" in imported
    assert len(found) == len(wanted) > 1000 and found[0] == wanted[0]
    numbers = [i for i, name in enumerate(wanted[0]) if name.startswith("probability")]
    for got, want in zip(found[1:], wanted[1:], strict=True):
        assert len(got) == len(want)
        for i, (cell_found, cell_wanted) in enumerate(zip(got, want, strict=True)):
            if i in numbers and cell_wanted:
                assert abs(float(cell_found) - float(cell_wanted)) <= ONE_UNIT, (got, want)
            else:
                assert cell_found == cell_wanted, (got, want)


#: In a fresh process: a numpy-runtime prediction before scipy's BLAS is loaded, then the
#: threads of numpy's and scipy's BLAS libraries while a recurrent run's logits are computed.
WATCH_THREADS = """
import json, sys
from pathlib import Path
from threadpoolctl import threadpool_info
import toolkit

def blas_threads():
    pools = {Path(pool["filepath"]).parent.name: pool["num_threads"] for pool in threadpool_info()
             if pool["user_api"] == "blas"}
    return {name: threads for name, threads in pools.items() if name in ("numpy.libs", "scipy.libs")}

toolkit.load_run(sys.argv[1]).predict(["Hinton"], 1)
predictor = toolkit.load_run(sys.argv[2], threads=1)
model, seen = predictor.scorer.model, []

class Watched:
    shapes = model.shapes

    def logits(self, indices, lengths):
        seen.append(blas_threads())
        return model.logits(indices, lengths)

before = blas_threads()
predictor.scorer.model = Watched()
predictor.predict(["Hinton", "Papadopoulos"], 1)
print(json.dumps({"before": before, "seen": seen, "after": blas_threads()}))
"""


def test_scipys_blas_runs_on_the_predictors_threads_during_the_forward_pass(tiny_runs):
    """The steps' accumulating products are scipy's BLAS, a library of its own beside numpy's:
    held to the predictor's `threads` as numpy's is, and put back, also in a process whose
    first numpy-runtime prediction came before scipy's BLAS was loaded."""
    result = subprocess.run([sys.executable, "-c", WATCH_THREADS, str(FIXTURE / "scratch-rnn"),
                             str(tiny_runs["gru"])], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if set(found["before"]) != {"numpy.libs", "scipy.libs"}:
        pytest.skip("numpy's and scipy's BLAS are not libraries of their own here")
    assert found["seen"] == [{"numpy.libs": 1, "scipy.libs": 1}]
    assert found["after"] == found["before"]


def test_a_product_is_added_into_its_array_in_place_or_by_numpy():
    """The step's input products receive the hidden state's product in place (BLAS's accumulating
    form), also into an array BLAS cannot write where it is (numpy adds it there)."""
    generator = np.random.default_rng(0)
    state = generator.standard_normal((5, 4), dtype=np.float32)
    weight = generator.standard_normal((4, 3), dtype=np.float32)
    for into in (generator.standard_normal((5, 3), dtype=np.float32),
                 generator.standard_normal((3, 5), dtype=np.float32).T):
        wanted = into + state @ weight
        toolkit.LongestFirst.add_product(state, weight, into)
        np.testing.assert_allclose(into, wanted, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", ["scratch-rnn", "scratch-gru", *CELLS])
def test_threads_sharing_a_model_get_the_logits_each_gets_alone(cell):
    """A pass's step arrays are reused from chunk to chunk and call to call, one set per thread:
    four threads predicting other texts on the same loaded model at once get what each gets
    alone, and a short batch after a long one keeps nothing of it."""
    def loaded():
        return (scratch_models(cell) if cell.startswith("scratch") else
                both_models(cell, num_layers=2, pooling="last+max"))

    _, arrays, encoder = loaded()
    batches = [real_names(1000)[i::4] + HOSTILE[i:] for i in range(4)]
    encoded = [tuple(tensor.numpy() for tensor in encoder.encode(texts)) for texts in batches]
    alone = [arrays.logits(*pair) for pair in encoded]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            together = list(pool.map(lambda pair: arrays.logits(*pair), encoded))
            for found, wanted in zip(together, alone, strict=True):
                np.testing.assert_allclose(found, wanted, rtol=1e-6, atol=1e-6)
    short = encoded[0][0][:5, :3], np.minimum(encoded[0][1][:5], 3)
    fresh = loaded()[1]
    np.testing.assert_allclose(arrays.logits(*short), fresh.logits(*short), rtol=1e-6, atol=1e-6)

"""The compiled training step (`train.engine`): numba loops for the rows of `ngram`'s table must
train the model torch's step trains, to float32 rounding, and say in one line when they cannot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import toolkit
import toolkit.compiled_step
from toolkit.plugins.ngram import NgramConfig
from toolkit.plugins.ngram_model import NgramModel
from toolkit.plugins.onehot import OneHotEncoder
from toolkit.sparse_adam import LazyAdam
from toolkit.testing import check_model
from toolkit.training import train

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def texts(names_dir) -> list[tuple[str, str]]:
    """(name, language) pairs of three languages, and a few several-word names."""
    found = []
    for language in ("Japanese", "Greek", "Irish"):
        lines = (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")[:80]
        found += [(line, language) for line in lines if line]
    return found + [("Mary Ann O'Neil", "Irish"), ("Jean Claude Van Damme", "Greek")]


def train_both(texts: list[tuple[str, str]], config: NgramConfig, params: dict, word_order: int = 0):
    """The same model, trained once by each engine from the same initial weights."""
    data = toolkit.TextDataset.from_pairs([text for text, _ in texts], [label for _, label in texts])
    encoder = OneHotEncoder("auto")
    encoder.fit(data.texts)
    results = {}
    for engine in ("torch", "compiled"):
        torch.manual_seed(0)
        model = NgramModel(encoder.vocab_size, 3, config, symbols=encoder.symbols, word_order=word_order)
        results[engine] = train(model, encoder, data, data, {**params, "engine": engine}, progress=False)
    return results


@pytest.mark.parametrize(("config", "params", "word_order", "whole"), [
    (NgramConfig(buckets=4096), {}, 0, True),
    (NgramConfig(buckets=4096, word_ngrams="2"), {"weight_decay": 0.5, "average": 0.5}, 2, True),
    (NgramConfig(buckets=4096), {"optimizer": "adamw", "weight_decay": 0.3, "label_smoothing": 0.1,
                                 "logit_adjust": 1.0, "clip": 0.05}, 0, True),
    (NgramConfig(buckets=2048, pooling="mean"), {"label_smoothing": 0.1, "class_weights": 1.0}, 0, False),
    (NgramConfig(buckets=2048, dim=8, hidden=6, dropout=0.2), {"optimizer": "adamw", "weight_decay": 0.1}, 0,
     False),
], ids=["linear", "words-decay-average", "adamw-smoothing-adjust-clip", "mean-class-weights",
        "embedding-head-dropout"])
def test_the_compiled_step_trains_the_model_torchs_step_trains(texts, config, params, word_order, whole,
                                                                monkeypatch):
    """The whole step compiled (a linear bag, single-label, no class weights) or the table's part
    only (class weights, an embedding with layers after it): torch's model either way."""
    whole_steps = []
    update = toolkit.compiled_step.LinearStep.update
    monkeypatch.setattr(toolkit.compiled_step.LinearStep, "update",
                        lambda self, *args: whole_steps.append(1) or update(self, *args))
    results = train_both(texts, config, {"epochs": 3, "batch_size": 16, "lr": 0.1, **params}, word_order)
    assert bool(whole_steps) == whole
    assert results["torch"].engine == "torch" and results["compiled"].engine == "compiled"
    trained = {engine: result.model.state_dict() for engine, result in results.items()}
    for name, weight in trained["torch"].items():
        torch.testing.assert_close(trained["compiled"][name], weight, rtol=1e-4, atol=2e-5)
    histories = {engine: result.history for engine, result in results.items()}
    np.testing.assert_allclose(histories["compiled"]["val_loss"], histories["torch"]["val_loss"], rtol=1e-4)
    losses = histories["compiled"]["train_loss"]
    assert losses.iloc[-1] < 0.8 * losses.iloc[0]  # it learnt, not merely agreed


def test_step_rows_is_lazy_adams_step_with_decay():
    """LazyAdam.step_rows, given each text's gradient and its bag, updates the table as `step`
    does given the sparse gradient of the same bags (repeated rows, decay owed by idle rows)."""
    generator = torch.Generator().manual_seed(3)
    rows, width, texts_count = 50, 4, 12
    lengths = torch.randint(0, 7, (texts_count,), generator=generator)
    offsets = np.concatenate([[0], np.cumsum(lengths.numpy())]).astype(np.int64)
    ids = torch.randint(1, rows, (int(offsets[-1]),), generator=generator)
    weights = torch.rand(int(offsets[-1]), generator=generator)
    start = torch.randn(rows, width, generator=generator)
    tables = [torch.nn.Parameter(start.clone()) for _ in range(2)]
    optimizers = [LazyAdam([table], lr=0.05, weight_decay=0.5) for table in tables]
    owner = np.repeat(np.arange(texts_count), lengths.numpy())
    for step in range(6):
        batch = np.sort(np.random.default_rng(step).choice(texts_count, 5, replace=False))
        grads = torch.randn(len(batch), width, generator=generator)
        take = np.flatnonzero(np.isin(owner, batch))
        where = np.searchsorted(batch, owner[take])
        values = weights[take].unsqueeze(1) * grads[where]
        tables[0].grad = torch.sparse_coo_tensor(ids[take].unsqueeze(0), values, (rows, width),
                                                 check_invariants=True)
        optimizers[0].step()
        optimizers[1].step_rows(tables[1], batch.astype(np.int64), offsets, ids.numpy().astype(np.int32),
                                weights.numpy(), grads.numpy())
    for optimizer in optimizers:
        optimizer.settle()
    torch.testing.assert_close(tables[1], tables[0], rtol=1e-5, atol=1e-6)
    assert not torch.equal(tables[1], start)


def test_a_run_records_its_engine_and_a_multi_label_run_trains_alike(tmp_path):
    runs = {}
    for engine in ("torch", "compiled"):
        runs[engine] = toolkit.run(
            dataset="names", model="ngram", output=tmp_path / engine, progress=False, device="cpu",
            params={"dataset.labels": "multi", "train.epochs": 2, "train.engine": engine},
        )
        config = json.loads((tmp_path / engine / "config.json").read_text(encoding="utf-8"))
        assert config["training"]["engine"] == engine
    losses = [runs[engine].history["val_loss"] for engine in ("compiled", "torch")]
    np.testing.assert_allclose(*losses, rtol=1e-4)


def test_auto_trains_ngram_compiled_and_other_models_with_torch(tmp_path):
    ngram = toolkit.run(dataset="names", model="ngram", output=tmp_path / "ngram", progress=False,
                        params={"train.epochs": 1})
    scratch = toolkit.run(dataset="names", model="scratch-rnn", output=tmp_path / "rnn", progress=False,
                          params={"train.epochs": 1, "train.examples": 2000})
    configs = [json.loads((tmp_path / name / "config.json").read_text(encoding="utf-8"))
               for name in ("ngram", "rnn")]
    engines = [config["training"]["engine"] for config in configs]
    assert engines == ["compiled", "torch"]
    assert ngram.test_accuracy() > 0.6 and scratch.history is not None


@pytest.mark.parametrize(("model", "param", "reason"), [
    ("scratch-rnn", "train.examples=500", "the model offers no row bag"),
    ("ngram", "train.optimizer=sgd", "the table gets no Adam update"),
])
def test_compiled_is_refused_in_one_line_where_it_cannot_train(cli, tmp_path, model, param, reason):
    result = cli(["run", "-d", "names", "-m", model, "-p", "train.engine=compiled", "-p", param,
                  "-p", "train.epochs=1", "-o", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "train.engine=compiled cannot train this run" in result.stderr
    assert reason in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_check_model_checks_the_row_bag():
    check_model("ngram", {"word_ngrams": "2", "buckets": 4096})

    class Skewed(NgramModel):
        def row_bag(self):
            form = super().row_bag()
            return toolkit.RowBag(form.table, form.bags, lambda features: form.head(features) + 1)

    def build(vocab_size: int, num_classes: int) -> Skewed:
        return Skewed(vocab_size, num_classes, NgramConfig(buckets=1024))

    spec = toolkit.ModelSpec(name="skewed", help="ngram whose row bag is off by one", factory=build)
    with pytest.raises(AssertionError, match="row_bag"):
        check_model(spec)


def test_a_rerun_says_when_another_engine_trained_it(cli, tmp_path):
    """A run trained by torch, rerun where auto chooses the compiled step: the metrics may differ
    in the last digits, and the rerun says why, as it does for library versions."""
    toolkit.run(dataset="names", model="ngram", output=tmp_path / "run", progress=False,
                params={"train.epochs": 1, "train.engine": "torch"})
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["train"]["engine"] = "auto"  # as a run from before train.engine records it
    del config["training"]["engine"]
    config_path.write_text(json.dumps(config), encoding="utf-8")

    rerun = cli(["rerun", str(tmp_path / "run"), "--output", str(tmp_path / "again")])

    assert rerun.exit_code == 0, rerun.output
    note = "Note: the original ran with train.engine torch, this with compiled; results may differ."
    assert note in rerun.stdout.splitlines()

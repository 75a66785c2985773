"""The faster `ngram` training path: Adam's sparse update without torch's sparse tensors, and
n-gram ids computed once per run. Both must train the same model as before."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import toolkit
import toolkit.precomputed
from toolkit.plugins.ngram import NgramConfig
from toolkit.plugins.ngram_model import NgramModel
from toolkit.plugins.onehot import OneHotEncoder
from toolkit.precomputed import precompute
from toolkit.sparse_adam import LazyAdam, touched_rows
from toolkit.training import _Batches, _evaluate, train


def sparse_grad(rows: list[int], values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An uncoalesced gradient: one entry per occurrence, repeated rows included."""
    return torch.sparse_coo_tensor(torch.tensor([rows]), values, size, check_invariants=True)


def test_touched_rows_lists_each_row_once_and_points_every_occurrence_at_it():
    occurrences = torch.tensor([7, 3, 7, 9, 3, 3, 0])
    rows, where = touched_rows(occurrences, torch.empty(10, dtype=torch.int32))
    assert sorted(rows.tolist()) == [0, 3, 7, 9]
    assert torch.equal(rows[where], occurrences)


def test_lazy_adam_makes_sparse_adams_updates():
    torch.manual_seed(0)
    size = (50, 4)
    ours = nn.Parameter(torch.randn(size))
    theirs = nn.Parameter(ours.detach().clone())
    optimizers = LazyAdam([ours], lr=0.1), torch.optim.SparseAdam([theirs], lr=0.1)
    generator = torch.Generator().manual_seed(1)
    for _ in range(6):
        rows = torch.randint(0, 20, (30,), generator=generator).tolist()  # rows 20-49 never touched
        values = torch.randn(30, 4, generator=generator)
        for param, optimizer in zip((ours, theirs), optimizers, strict=True):
            param.grad = sparse_grad(rows, values, size)
            optimizer.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ours[:20], torch.zeros(20, 4))
    moved = (ours.detach() != theirs.detach()).any(1)
    assert not moved[20:].any()
    # and the untouched rows kept their initial values, moments included
    assert torch.equal(optimizers[0].state[ours]["moments"][20:], torch.zeros(30, 2, 4))


def dense_decay_then_lazy_adam(param: nn.Parameter, optimizer: LazyAdam, weight_decay: float) -> None:
    """The exact decoupled decay: every row of the table decays at every step (AdamW's order:
    decay first, then the Adam step), here before a LazyAdam step without decay."""
    with torch.no_grad():
        param.mul_(1 - optimizer.param_groups[0]["lr"] * weight_decay)
    optimizer.step()


def test_lazy_weight_decay_equals_decaying_every_row_at_every_step():
    torch.manual_seed(0)
    size, weight_decay = (40, 3), 0.5
    lazy = nn.Parameter(torch.randn(size))
    dense = nn.Parameter(lazy.detach().clone())
    ours, reference = LazyAdam([lazy], lr=0.1, weight_decay=weight_decay), LazyAdam([dense], lr=0.1)
    schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12) for o in (ours, reference)]
    generator = torch.Generator().manual_seed(1)
    for step in range(12):
        # rows 30-39 are never touched, rows 0-9 only now and then: they owe several steps' decay
        low = 0 if step % 4 == 0 else 10
        rows = torch.randint(low, 30, (15,), generator=generator).tolist()
        values = torch.randn(15, 3, generator=generator)
        lazy.grad, dense.grad = sparse_grad(rows, values, size), sparse_grad(rows, values, size)
        ours.step()
        dense_decay_then_lazy_adam(dense, reference, weight_decay)
        for scheduler in schedules:
            scheduler.step()
    assert not torch.allclose(lazy, dense, rtol=1e-3, atol=1e-3)  # until the rows owing decay get it
    ours.settle()
    torch.testing.assert_close(lazy, dense, rtol=1e-5, atol=1e-6)
    settled = lazy.detach().clone()
    ours.settle()
    assert torch.equal(lazy, settled)


def test_no_weight_decay_is_exactly_the_update_without_it():
    torch.manual_seed(0)
    size = (30, 2)
    default = nn.Parameter(torch.randn(size))
    zero = nn.Parameter(default.detach().clone())
    optimizers = LazyAdam([default], lr=0.1), LazyAdam([zero], lr=0.1, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        rows = torch.randint(0, 20, (12,), generator=generator).tolist()
        values = torch.randn(12, 2, generator=generator)
        for param, optimizer in zip((default, zero), optimizers, strict=True):
            param.grad = sparse_grad(rows, values, size)
            optimizer.step()
        optimizers[1].settle()
    assert torch.equal(default, zero)
    assert "decayed_at" not in optimizers[1].state[zero]  # no per-row bookkeeping either


def test_the_trainer_decays_ngrams_table_with_train_weight_decay(texts):
    """train.weight_decay reaches the sparse table (it ends smaller), and the weights validated
    are the weights kept: the rows no batch touched lately have had their decay applied."""
    data = toolkit.TextDataset.from_pairs(texts, ["abc"[i % 3] for i in range(len(texts))])
    encoder = OneHotEncoder("auto")
    encoder.fit(data.texts)
    norms = {}
    for weight_decay in (0.0, 1.0):
        torch.manual_seed(0)
        model = NgramModel(encoder.vocab_size, 3, NgramConfig(buckets=2048))
        params = {"epochs": 3, "batch_size": 16, "lr": 0.1, "weight_decay": weight_decay,
                  "select": "loss", "patience": 0}
        result = train(model, encoder, data, data, params, progress=False)
        norms[weight_decay] = model.bag.weight.detach().norm().item()
        kept = result.history.loc[result.history["epoch"] == result.best_epoch, "val_loss"].iloc[0]
        assert _evaluate(result.model, _Batches(encoder, data, torch.device("cpu")))[0] == pytest.approx(kept)
    assert norms[1.0] < 0.9 * norms[0.0]


def test_lazy_adam_refuses_a_dense_gradient():
    param = nn.Parameter(torch.zeros(3, 2))
    param.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        LazyAdam([param]).step()


@pytest.fixture(scope="module")
def texts(names_dir) -> list[str]:
    found = []
    for language in ("Japanese", "Greek", "Irish", "Vietnamese"):
        found += (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")[:40]
    return [n for n in found if n] + ["O", "Ng", "Mary Ann O'Neil", "van der Berg", "J. R. R. Tolkien"]


@pytest.mark.parametrize("config", [
    NgramConfig(buckets=4096),
    NgramConfig(buckets=4096, pooling="mean"),
    NgramConfig(buckets=4096, min_n=2, max_n=6, dim=8, hidden=4),
], ids=["sqrt", "mean", "dim-hidden"])
@pytest.mark.parametrize("word_order", [0, 2], ids=["chars", "words"])
def test_precomputed_ids_give_exactly_the_logits_of_hashing_per_batch(texts, config, word_order, monkeypatch):
    monkeypatch.setattr(toolkit.precomputed, "CHUNK", 7)  # texts hashed in chunks of like length, put back
    encoder = OneHotEncoder("auto")
    encoder.fit(texts)
    torch.manual_seed(0)
    model = NgramModel(encoder.vocab_size, 4, config, symbols=encoder.symbols, word_order=word_order).eval()
    nn.init.normal_(model.bag.weight)
    indices, lengths = encoder.encode(texts)
    ready = precompute(model, indices, lengths)
    assert ready is not None
    rows = torch.tensor([5, 0, len(texts) - 1, 17, len(texts) - 3, 1])
    with torch.no_grad():
        batch = indices[rows, : int(lengths[rows].max())]
        per_batch = model(batch, lengths[rows])
        precomputed = model.forward_precomputed(*ready.take(rows, torch.device("cpu")))
    assert torch.equal(precomputed, per_batch)
    assert [t.dtype for t in ready.tensors] == [torch.int32] * (2 if word_order else 1)


def test_precompute_gives_up_past_its_memory_budget(texts):
    encoder = OneHotEncoder("auto")
    encoder.fit(texts)
    model = NgramModel(encoder.vocab_size, 4, NgramConfig(buckets=4096))
    indices, lengths = encoder.encode(texts)
    assert precompute(model, indices, lengths, budget=1000) is None
    assert precompute(model, indices, lengths, budget=10**7) is not None


class PerBatchNgram(NgramModel):
    """`ngram` without the precomputed path: the trainer hashes every batch, as it used to."""

    precompute = None


def test_training_on_precomputed_ids_trains_the_same_model(texts):
    classes = ("a", "b", "c")
    targets = [i % 3 for i in range(len(texts))]
    data = toolkit.TextDataset.from_pairs(texts, [classes[t] for t in targets])
    encoder = OneHotEncoder("auto")
    encoder.fit(data.texts)
    config = NgramConfig(buckets=2048, word_ngrams="2")
    torch.manual_seed(0)
    fast = NgramModel(encoder.vocab_size, 3, config, symbols=encoder.symbols, word_order=2)
    slow = PerBatchNgram(encoder.vocab_size, 3, config, symbols=encoder.symbols, word_order=2)
    slow.load_state_dict(copy.deepcopy(fast.state_dict()))
    calls = []
    original = fast.forward_precomputed
    fast.forward_precomputed = lambda *groups: calls.append(len(groups)) or original(*groups)
    params = {"epochs": 3, "batch_size": 16, "lr": 0.1, "patience": 0, "engine": "torch"}
    results = [train(model, encoder, data, data, params, progress=False) for model in (fast, slow)]
    steps, validation_batches = 3 * -(-len(texts) // 16), 3
    assert calls == [2] * (steps + validation_batches)  # every step and validation pass precomputed
    for name, weight in results[0].model.state_dict().items():
        torch.testing.assert_close(weight, results[1].model.state_dict()[name], rtol=0, atol=1e-6)
    np.testing.assert_allclose(results[0].history["val_loss"], results[1].history["val_loss"], rtol=1e-6)
    assert results[0].history["train_acc"].iloc[-1] > 0.5


def test_a_split_past_the_budget_trains_through_forward(texts, monkeypatch):
    import toolkit.precomputed

    monkeypatch.setattr(toolkit.precomputed, "PRECOMPUTE_BYTES", 100)
    data = toolkit.TextDataset.from_pairs(texts, ["ab"[i % 2] for i in range(len(texts))])
    encoder = OneHotEncoder("auto")
    encoder.fit(data.texts)
    model = NgramModel(encoder.vocab_size, 2, NgramConfig(buckets=1024))
    model.forward_precomputed = lambda *groups: pytest.fail("the split was precomputed past its budget")
    result = train(model, encoder, data, data, {"epochs": 1, "batch_size": 32}, progress=False)
    assert result.epochs_completed == 1

"""The ngram, cnn and ensemble models: shapes, padding, hashing, training defaults, saving and
loading, and the ensemble's separately trained members."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import names_folder
from test_models import NUM_CLASSES, build  # the same factory call with the defaults

import toolkit
from toolkit import PAD, TUTORIAL_ALPHABET
from toolkit.plugins.ngram import NgramConfig
from toolkit.plugins.ngram_model import NgramModel
from toolkit.plugins.onehot import OneHotEncoder
from toolkit.train_config import TrainConfig

NEW_MODELS = ("ngram", "cnn", "ensemble")


@pytest.fixture(scope="module")
def names(names_dir) -> list[str]:
    found = []
    for language in ("Japanese", "Greek", "Scottish", "Vietnamese"):
        found += (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")[:15]
    return [n for n in found if n] + ["O", "Ng"]


@pytest.mark.parametrize("name", NEW_MODELS)
def test_logits_are_batch_by_classes_and_finite(name, names):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    model = build(name, encoder)
    with torch.no_grad():
        for texts in (names, names[:1], ["O"]):
            logits = model(*encoder.encode(texts))
            assert logits.shape == (len(texts), NUM_CLASSES)
            assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NEW_MODELS)
def test_a_name_scores_the_same_alone_and_padded_in_a_batch(name, names):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    model = build(name, encoder)
    with torch.no_grad():
        for short in ("O", names[0]):
            alone = model(*encoder.encode([short]))
            batch = model(*encoder.encode([short, "Abdulrahmanovichsky", *names]))
            torch.testing.assert_close(batch[:1], alone, rtol=1e-5, atol=1e-6)


def test_ngram_ids_are_boundary_marked_hashed_and_reproducible():
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    model = NgramModel(encoder.vocab_size, 4, NgramConfig(min_n=1, max_n=3, buckets=1000))
    other = NgramModel(encoder.vocab_size, 4, NgramConfig(min_n=1, max_n=3, buckets=1000))
    indices, lengths = encoder.encode(["Ab", "Abc"])
    ids = model.ngram_ids(indices, lengths)
    assert torch.equal(ids, other.ngram_ids(indices, lengths))  # no per-process salt
    real = ids[ids != PAD]
    assert int(real.min()) >= 1 and int(real.max()) < 1000
    # "<Ab>": 4 unigrams, 3 bigrams, 2 trigrams; "<Abc>": 5 + 4 + 3
    assert (ids != PAD).sum(1).tolist() == [9, 12]
    # the n-grams of "<Ab" are shared, the ones reaching the end marker are not
    first, second = set(ids[0].tolist()) - {PAD}, set(ids[1].tolist()) - {PAD}
    assert len(first & second) >= 5 and first - second


def test_ngram_embedding_is_sparse_and_trains_with_lazy_adam():
    from toolkit.training import _optimizers, _split_parameters

    model = NgramModel(10, 3, NgramConfig(buckets=1024))
    dense, sparse = _split_parameters(model)
    assert [tuple(p.shape) for p in sparse] == [(1024, 3)]
    assert [tuple(p.shape) for p in dense] == [(3,)]
    kinds = [type(o).__name__ for o in _optimizers(dense, sparse, TrainConfig())]
    assert kinds == ["Adam", "LazyAdam"]


@pytest.mark.parametrize(("name", "params", "message"), [
    ("ngram", {"min_n": 3, "max_n": 2}, "model 'ngram' needs min_n <= max_n; got min_n=3, max_n=2."),
    ("ngram", {"buckets": 1}, "'buckets' must be at least 2"),
    ("ngram", {"hidden": 8}, "model 'ngram' needs dim for a hidden layer"),
    ("cnn", {"kernels": "2,x"}, "comma-separated widths"),
    ("cnn", {"filters": 0}, "'filters' must be at least 1"),
    ("ensemble", {"members": "ngram,ensemble"}, "other than 'ensemble'"),
    ("ensemble", {"members": ""}, "1 to 8"),
    ("ensemble", {"members": "ngram,cnnn"}, "Did you mean 'cnn'"),
    ("ensemble", {"members": "ngram:train.weight_decay"}, "GROUP.NAME=VALUE after a colon"),
    ("ensemble", {"members": "ngram:weight_decay=0.1"}, "model or train: write train.weight_decay"),
    ("ensemble", {"members": "ngram:model.maxn=5"}, "'ngram:model.maxn=5' has no parameter 'maxn'. Did"),
    ("ensemble", {"members": "ngram:model.max_n=99"}, "'max_n' must be at least 1 and at most"),
    ("ensemble", {"members": "cnn,ngram:train.lr=fast"}, "'ngram:train.lr=fast' parameter 'lr' expects"),
    ("ensemble", {"members": "ngram:train.lr=0.1", "training": "joint"}, "need training=separate"),
])
def test_bad_model_parameters_are_one_line_errors(name, params, message):
    with pytest.raises(toolkit.ToolkitError, match=message) as caught:
        build(name, OneHotEncoder(TUTORIAL_ALPHABET), **params)
    assert "\n" not in str(caught.value)


def test_models_bring_their_own_trainer_defaults_and_the_run_overrides_them():
    plan = toolkit.plan_run("names", "ngram")
    assert plan.params["train"]["lr"] == 0.1 and plan.params["train"]["batch_size"] == 256
    assert toolkit.plan_run("names", "ngram", params={"train.lr": 0.01}).params["train"]["lr"] == 0.01
    assert toolkit.plan_run("names", "gru").params["train"]["lr"] == 0.005  # untouched


def test_a_bad_train_default_in_a_model_plugin_is_reported():
    from toolkit.api import train_params

    spec = toolkit.ModelSpec(name="bad", help="", factory=NgramModel, train_defaults={"lrr": 1})
    with pytest.raises(toolkit.ToolkitError, match="unknown trainer parameters: lrr"):
        train_params(spec)


@pytest.fixture(scope="module")
def small_names(tmp_path_factory) -> str:
    """A folder of four real languages, 150 distinct names each (plumbing, not accuracy)."""
    folder = tmp_path_factory.mktemp("small-names")
    names_folder(folder, 150)
    return str(folder)


def run_small(model: str, small_names: str, output, **params) -> toolkit.RunResult:
    return toolkit.run(
        dataset="folder", model=model, params={"dataset.data_dir": small_names, "train.threads": 1, **params},
        output=output, progress=False,
    )


@pytest.fixture(scope="module")
def ensemble_run(small_names, tmp_path_factory):
    return run_small(
        "ensemble", small_names, tmp_path_factory.mktemp("runs") / "ensemble",
        **{"model.members": "ngram,cnn", "model.combine": "log-probability", "train.patience": 2},
    )


def test_ensemble_trains_each_member_with_its_own_defaults_and_early_stopping(ensemble_run):
    history = ensemble_run.history
    assert "ngram: " in ensemble_run.stop_reason and "cnn: " in ensemble_run.stop_reason
    # the run's patience (away from the trainer default) reached both members
    assert ensemble_run.stop_reason.count("no better validation accuracy for 2 epochs") == 2
    # every member epoch, then the combined model's validation row, which is the kept one
    assert ensemble_run.best_epoch == len(history) == history["epoch"].iloc[-1]
    assert math.isnan(history["train_loss"].iloc[-1]) and 0 < history["val_acc"].iloc[-1] <= 1
    member_rows = history.iloc[:-1]
    assert member_rows["epoch"].tolist() == list(range(1, len(history)))
    # well above chance (4 classes) after training
    assert ensemble_run.test_accuracy() > 0.5


def test_ensemble_saved_and_loaded_gives_the_same_probabilities(ensemble_run):
    texts = ["Hinton", "Nakamura", "O'Neill", "Dvořák", "Tran"]
    loaded = toolkit.load_run(ensemble_run.run_dir)
    expected = ensemble_run.predict_proba(texts)
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, rtol=1e-6, atol=1e-9)


def test_a_members_own_settings_reach_that_member_alone_over_the_runs(small_names, tmp_path):
    members = "ngram,ngram:model.max_n=2:train.patience=1:train.epochs=30,cnn:train.epochs=2"
    result = run_small("ensemble", small_names, tmp_path / "run",
                       **{"model.members": members, "train.patience": 5})
    plain, short, cnn = result.model.members
    ids = lambda member: member.ngram_ids(*OneHotEncoder(TUTORIAL_ALPHABET).encode(["Nakamura"]))  # noqa: E731
    assert plain.max_n == 4 and short.max_n == 2
    assert ids(short).shape[1] < ids(plain).shape[1]  # fewer n-grams per text
    reasons = dict(reason.split(": ", 1) for reason in result.stop_reason.split("; "))
    short_label = "ngram:model.max_n=2:train.patience=1:train.epochs=30"
    assert list(reasons) == ["ngram", short_label, "cnn:train.epochs=2"]
    assert reasons["ngram"] == "early stop: no better validation accuracy for 5 epochs"  # the run's patience
    assert reasons[short_label].endswith("for 1 epochs")
    assert "early stop" not in reasons["cnn:train.epochs=2"]
    assert len(result.history) == result.best_epoch  # every member epoch, then the combined row
    loaded = toolkit.load_run(result.run_dir)
    assert [m.max_n for m in loaded.model.members[:2]] == [4, 2]
    texts = ["Hinton", "Nakamura", "Dvořák"]
    np.testing.assert_allclose(loaded.predict_proba(texts), result.predict_proba(texts), rtol=1e-6, atol=1e-9)


def test_ensemble_probabilities_are_the_mean_or_normalised_geometric_mean(names):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    mean_model = build("ensemble", encoder, members="ngram,cnn", combine="probability")
    geometric = build("ensemble", encoder, members="ngram,cnn", combine="log-probability")
    torch.nn.init.normal_(mean_model.members[0].bag.weight)  # zero-initialised otherwise
    geometric.load_state_dict(mean_model.state_dict())
    x = encoder.encode(names)
    with torch.no_grad():
        member_probs = torch.stack([torch.softmax(m(*x), 1) for m in mean_model.members])
        torch.testing.assert_close(torch.softmax(mean_model(*x), 1), member_probs.mean(0))
        product = member_probs.log().mean(0).exp()
        torch.testing.assert_close(torch.softmax(geometric(*x), 1), product / product.sum(1, keepdim=True))


def test_the_default_ensemble_predicts_the_normalised_weighted_geometric_mean(names):
    """Chosen on the panel's validation split (bench/ensemble_choices.py): the members'
    log-probabilities averaged with the member weights, not their probabilities."""
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    model = build("ensemble", encoder)  # every parameter at its default
    # no encoder's word count: the members for names, the third an ngram of character 1-5-grams
    assert [type(m).__name__ for m in model.members] == ["NgramModel", "CharCNN", "NgramModel", "TorchRNN"]
    assert [model.members[0].max_n, model.members[2].max_n] == [4, 5]
    for ngram in (model.members[0], model.members[2]):
        torch.nn.init.normal_(ngram.bag.weight)  # zero-initialised otherwise
    weights = torch.tensor([0.5, 0.3, 0.1, 0.1])
    model.member_weights.copy_(weights)
    x = encoder.encode(names)
    with torch.no_grad():
        member_log_probs = torch.stack([torch.log_softmax(m(*x), 1) for m in model.members])
        geometric = torch.softmax((member_log_probs * weights.view(-1, 1, 1)).sum(0), 1)
        torch.testing.assert_close(torch.softmax(model(*x), 1), geometric)


@pytest.mark.parametrize("model", ["ngram", "cnn"])
def test_new_models_save_and_load_through_a_run_folder(model, small_names, tmp_path):
    result = run_small(model, small_names, tmp_path / "run", **{"train.epochs": 2})
    texts = ["Hinton", "Nakamura", "Tran"]
    expected = result.predict_proba(texts)
    loaded = toolkit.load_run(result.run_dir)
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, rtol=1e-6, atol=1e-9)


def test_a_member_whose_trainer_cannot_be_is_refused_before_any_member_trains(small_names, tmp_path, capfd):
    """cnn trains with label smoothing by default, which the squared hinge has no use for: the
    ensemble names the member in one line before ngram, the first member, has trained."""
    with pytest.raises(toolkit.ToolkitError) as refused:
        run_small("ensemble", small_names, tmp_path / "run",
                  **{"model.members": "ngram,cnn", "train.loss": "squared-hinge", "train.epochs": 1})
    assert str(refused.value).startswith("ensemble member 'cnn': the trainer label_smoothing=0.1")
    assert str(refused.value).endswith("go in model.members (e.g. cnn:train.NAME=VALUE).")
    assert "training member" not in capfd.readouterr().err and not (tmp_path / "run").exists()
    fixed = run_small("ensemble", small_names, tmp_path / "fixed", **{
        "model.members": "ngram,cnn:train.label_smoothing=0", "train.loss": "squared-hinge",
        "train.epochs": 1})
    assert fixed.stop_reason.startswith("ngram: ")


def test_joint_training_trains_the_ensemble_as_one_model(small_names, tmp_path):
    result = run_small(
        "ensemble", small_names, tmp_path / "run",
        **{"model.members": "ngram,cnn", "model.training": "joint", "train.epochs": 3},
    )
    assert len(result.history) == 3 and result.stop_reason == "completed"
    assert result.test_accuracy() > 0.4


@pytest.fixture(scope="module")
def imbalanced(names_dir) -> tuple[toolkit.TextDataset, toolkit.TextDataset]:
    """300 Russian names against 30 Irish and 30 Czech for training; 30 of each held out."""
    sizes = {"Russian": 300, "Irish": 30, "Czech": 30}
    train_pairs, test_pairs = [], []
    for language, size in sizes.items():
        lines = (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")
        distinct = sorted({n for n in lines if n})
        train_pairs += [(n, language) for n in distinct[:size]]
        test_pairs += [(n, language) for n in distinct[-30:]]
    make = toolkit.TextDataset.from_pairs
    return make(*zip(*train_pairs, strict=True)), make(*zip(*test_pairs, strict=True))


def test_logit_adjustment_predicts_the_rare_classes_more_often(imbalanced):
    train_data, test_data = imbalanced
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    rare = [train_data.classes.index(c) for c in ("Irish", "Czech")]
    counts = []
    for adjust in (0.0, 1.0):
        torch.manual_seed(0)
        model = NgramModel(encoder.vocab_size, 3)
        params = {"epochs": 5, "batch_size": 32, "lr": 0.1, "threads": 1, "logit_adjust": adjust}
        toolkit.train(model, encoder, train_data, None, params)
        predicted = toolkit.predict_proba(model, encoder, test_data.texts).argmax(1)
        counts.append(int(np.isin(predicted, rare).sum()))
    assert counts[1] > counts[0]


def test_label_smoothing_and_selection_by_accuracy(imbalanced):
    train_data, val_data = imbalanced
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    torch.manual_seed(0)
    model = NgramModel(encoder.vocab_size, 3)
    params = {"epochs": 4, "lr": 0.1, "threads": 1, "label_smoothing": 0.5, "select": "accuracy"}
    result = toolkit.train(model, encoder, train_data, val_data, params)
    best = result.history["val_acc"].idxmax()
    assert result.best_epoch == result.history["epoch"][best]
    # with half the target spread over the other classes the loss cannot fall near zero
    assert result.history["train_loss"].min() > 0.5


def test_the_squared_hinge_is_linear_svcs_loss_one_class_against_the_rest():
    """Each class's logit past +1 for its texts and below -1 for the others, squared, summed
    over the classes: computed here term by term, for class indices, label sets and class weights."""
    from toolkit.training import _Batches, _Loop

    data = toolkit.TextDataset.from_pairs(["ab", "ba", "abc", "c"], ["x", "x", "y", "z"])
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    batches = _Batches(encoder, data, torch.device("cpu"))
    logits = torch.tensor([[2.0, -0.5, -3.0], [0.25, 1.5, -1.0], [-2.0, 0.0, 0.5], [0.0, -1.0, -0.75]])
    y = torch.tensor([0, 0, 1, 2])

    def by_terms(targets: list[list[int]]) -> list[float]:
        return [sum(max(0.0, 1 - (1 if c in classes else -1) * float(logits[t, c])) ** 2 for c in range(3))
                for t, classes in enumerate(targets)]

    per_text = by_terms([[0], [0], [1], [2]])
    assert per_text == [0.25, 0.5625 + 6.25, 1.0 + 2.25, 1.0 + 3.0625]
    plain = _Loop(torch.nn.Linear(1, 3), TrainConfig(loss="squared-hinge"), batches, data, 10, ())
    assert float(plain._loss(logits, y)) == pytest.approx(sum(per_text) / 4)
    weighted = _Loop(torch.nn.Linear(1, 3), TrainConfig(loss="squared-hinge", class_weights=1.0),
                     batches, data, 10, ())
    weights = [float(weighted.class_weights[c]) for c in y]
    assert weights == pytest.approx([4 / 6, 4 / 6, 4 / 3, 4 / 3])
    assert float(weighted._loss(logits, y)) == pytest.approx(
        sum(w * term for w, term in zip(weights, per_text, strict=True)) / sum(weights))
    label_sets = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    assert float(plain._loss(logits, label_sets)) == pytest.approx(
        sum(by_terms([[0, 1], [0], [1, 2], [2]])) / 4)


def test_ngram_trained_on_the_squared_hinge_stops_at_the_margin_and_validates_on_it(imbalanced):
    """Cross-entropy keeps pushing the right class's logit up; the squared hinge stops once it
    passes +1, so the right classes' logits gather near 1. The validation loss is the hinge too."""
    from toolkit.training import _squared_hinge

    train_data, val_data = imbalanced
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    medians = {}
    for loss in ("cross-entropy", "squared-hinge"):
        torch.manual_seed(0)
        model = NgramModel(encoder.vocab_size, 3)
        params = {"epochs": 5, "batch_size": 32, "lr": 0.03, "threads": 1, "loss": loss, "select": "loss"}
        result = toolkit.train(model, encoder, train_data, val_data, params)
        with torch.no_grad():
            logits = model(*encoder.encode(list(train_data.texts)))
            val_logits = model(*encoder.encode(list(val_data.texts)))
        right = logits[torch.arange(len(logits)), torch.tensor(train_data.targets)]
        medians[loss] = float(right.median())
        if loss == "squared-hinge":
            kept = result.history.loc[result.history["epoch"] == result.best_epoch, "val_loss"]
            expected = float(_squared_hinge(val_logits, torch.tensor(val_data.targets)).mean())
            assert float(kept.iloc[0]) == pytest.approx(expected, rel=1e-5)
    assert 0.8 < medians["squared-hinge"] < 1.2
    assert medians["cross-entropy"] > 1.5


@pytest.mark.parametrize(("params", "message"), [
    ({"loss": "hinge"}, "must be one of cross-entropy, squared-hinge"),
    ({"loss": "squared-hinge", "label_smoothing": 0.1}, "label_smoothing=0.1 \\(a model may set it as its "
     "own trainer default\\) applies to the cross-entropy loss only; set label_smoothing=0 or use "
     "loss=cross-entropy"),
    ({"loss": "squared-hinge", "logit_adjust": 1.0}, "logit_adjust=1.0 \\(a model may set it as its own "
     "trainer default\\) applies to the cross-entropy loss only; set logit_adjust=0 or use "
     "loss=cross-entropy"),
    ({"label_smoothing": 1.0}, "'label_smoothing' must be at least 0 and below 1; got 1.0"),
    ({"logit_adjust": -1}, "'logit_adjust' must be at least 0; got -1.0"),
    ({"select": "f1"}, "must be one of loss, accuracy"),
])
def test_bad_new_trainer_parameters_are_user_errors(params, message):
    with pytest.raises(toolkit.ToolkitError, match=message):
        TrainConfig.from_params(params)


def module_summaries() -> list[str]:
    """Real one-line descriptions of several words: the first lines of toolkit's modules' docstrings."""
    import importlib
    import pkgutil

    import toolkit.plugins

    lines = []
    for package in (toolkit, toolkit.plugins):
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):  # __main__ runs the command line
                continue
            doc = importlib.import_module(f"{package.__name__}.{info.name}").__doc__
            if doc and doc.strip():
                lines.append(doc.strip().splitlines()[0])
    return lines


def test_auto_members_add_a_gru_for_names_and_single_words_only(names, small_names, tmp_path):
    """members=auto reads the fitted encoder's median words per text: names get a gru beside the
    three members several-word texts get; a run records which it trained (its stop reasons)."""
    spec = toolkit.load_registry().model("ensemble")
    defaults = {p.name: p.default for p in spec.params}
    assert defaults["members"] == "auto"
    summaries = module_summaries()
    assert len(summaries) > 20
    for texts, wanted in ((names, ["ngram", "cnn", "ngram:model.max_n=5:train.weight_decay=0.1", "gru"]),
                          (summaries, ["ngram", "cnn", "ngram:model.max_n=5:train.weight_decay=0.1"])):
        encoder = OneHotEncoder("auto")
        encoder.fit(texts)
        assert (encoder.words_per_text >= 2) == (texts is summaries)
        model = spec.build(vocab_size=encoder.vocab_size, num_classes=2, params=defaults, encoder=encoder)
        assert model.names == wanted
    named = spec.build(vocab_size=encoder.vocab_size, num_classes=2, encoder=encoder,
                       params=defaults | {"members": "ngram,cnn"})
    assert named.names == ["ngram", "cnn"]
    result = toolkit.run(dataset="folder", model="ensemble", progress=False, output=tmp_path / "run", params={
        "dataset.data_dir": small_names, "train.epochs": 1, "train.threads": 1})
    assert [reason.split(": ")[0] for reason in result.stop_reason.split("; ")] == [
        "ngram", "cnn", "ngram:model.max_n=5:train.weight_decay=0.1", "gru"]
    loaded = toolkit.load_run(result.run_dir, runtime="torch")  # the members rebuilt from the saved encoder
    assert loaded.model.names == result.model.names
    texts = ["Hinton", "Nakamura", "Dvořák"]
    np.testing.assert_allclose(loaded.predict_proba(texts), result.predict_proba(texts), rtol=1e-5, atol=1e-7)
    with pytest.raises(toolkit.ToolkitError, match="members=auto .* needs training=separate"):
        toolkit.run(dataset="folder", model="ensemble", progress=False, output=tmp_path / "joint", params={
            "dataset.data_dir": small_names, "model.training": "joint"})

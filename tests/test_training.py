"""The trainer on real names: it learns, repeats exactly, stops cleanly, refuses bad input."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import toolkit
from toolkit import TUTORIAL_ALPHABET
from toolkit.inference import predict_proba, resolve_device
from toolkit.plugins.onehot import OneHotEncoder
from toolkit.plugins.scratch import ScratchRNNConfig
from toolkit.plugins.scratch_model import ScratchRNN
from toolkit.plugins.torch_rnn import TorchRNNConfig
from toolkit.plugins.torch_rnn_model import TorchRNN
from toolkit.train_config import TRAIN_PARAMS, TrainConfig
from toolkit.training import _class_weights, _epoch_batches, train
from toolkit.weight_average import EpochAverage

LANGUAGES = ("Greek", "Japanese", "Polish", "Italian")
# One thread: on a busy machine two torch threads made these small trainings 20-60x slower.
FAST = {"epochs": 4, "batch_size": 16, "lr": 0.01, "threads": 1}


@pytest.fixture(scope="module")
def parts(names_dir) -> tuple[toolkit.TextDataset, toolkit.TextDataset]:
    """Four languages, 120 distinct names each, cut into 100 for training and 20 held out."""
    rng = random.Random(0)
    train_pairs, test_pairs = [], []
    for language in LANGUAGES:
        lines = (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")
        names = sorted({n for n in lines if n})
        rng.shuffle(names)
        train_pairs += [(n, language) for n in names[:100]]
        test_pairs += [(n, language) for n in names[100:120]]
    make = toolkit.TextDataset.from_pairs
    return make(*zip(*train_pairs, strict=True)), make(*zip(*test_pairs, strict=True))


def fitted_encoder(data: toolkit.TextDataset) -> OneHotEncoder:
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    encoder.fit(data.texts)
    return encoder


def new_model(encoder: OneHotEncoder, seed: int = 0, hidden_size: int = 32) -> ScratchRNN:
    torch.manual_seed(seed)
    return ScratchRNN(encoder.vocab_size, len(LANGUAGES), ScratchRNNConfig(hidden_size=hidden_size))


def accuracy(model: nn.Module, encoder: OneHotEncoder, data: toolkit.TextDataset) -> float:
    predicted = predict_proba(model, encoder, data.texts).argmax(1)
    return float((predicted == np.array(data.targets)).mean())


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_learns_held_out_names_well_above_chance(parts):
    train_data, test_data = parts
    encoder = fitted_encoder(train_data)
    result = train(new_model(encoder), encoder, train_data, test_data, FAST, progress=False)
    assert accuracy(result.model, encoder, test_data) >= 0.6  # chance is 0.25
    history = result.history
    assert list(history.columns[:8]) == [
        "epoch", "examples", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "names_per_sec",
    ]
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert result.stop_reason == "completed" and history["examples"].iloc[-1] == 4 * len(train_data)
    assert not result.model.training


@pytest.mark.parametrize("extra", [
    {"optimizer": "sgd", "lr": 0.5, "sampling": "balanced", "class_weights": 1.0},
    {"model": "gru", "bucket": False, "schedule": "constant", "clip": 0.0},
])
def test_other_optimisers_samplers_and_models_learn_too(parts, extra):
    train_data, test_data = parts
    encoder = fitted_encoder(train_data)
    extra = dict(extra)
    if extra.pop("model", None) == "gru":
        torch.manual_seed(0)
        config = TorchRNNConfig(embedding_dim=16, hidden_size=32)
        model: nn.Module = TorchRNN(encoder.vocab_size, 4, "gru", config)
    else:
        model = new_model(encoder)
    result = train(model, encoder, train_data, None, FAST | extra, progress=False)
    assert accuracy(result.model, encoder, test_data) >= 0.6
    assert result.best_epoch is None and result.history["val_loss"].isna().all()


def test_same_seed_same_weights_other_seed_other_weights(parts):
    train_data, _ = parts
    encoder = fitted_encoder(train_data)
    params = FAST | {"epochs": 2, "sampling": "balanced"}
    runs = [weights(train(new_model(encoder), encoder, train_data, None, params, seed=s,
                          progress=False).model) for s in (7, 7, 8)]
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key])
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_an_example_budget_counts_names_not_epochs(parts):
    train_data, _ = parts
    encoder = fitted_encoder(train_data)
    result = train(new_model(encoder), encoder, train_data, None,
                   {"examples": 1000, "batch_size": 32, "threads": 1}, progress=False)
    assert result.history["examples"].iloc[-1] == 1000
    assert result.history["epoch"].tolist() == [1, 2, 3]  # 400 + 400 + 200 names


def misled(parts) -> tuple[toolkit.TextDataset, toolkit.TextDataset, OneHotEncoder, dict]:
    """The training part, a validation set of the same texts with shuffled labels (the better
    the model fits, the worse its validation loss), the encoder and trainer parameters that
    stop early on it."""
    train_data, _ = parts
    labels = train_data.labels()
    random.Random(1).shuffle(labels)
    misleading = toolkit.TextDataset.from_pairs(train_data.texts, labels)
    params = FAST | {"epochs": 30, "patience": 2, "schedule": "constant"}
    return train_data, misleading, fitted_encoder(train_data), params


def test_early_stopping_keeps_the_best_validation_weights(parts):
    """Validation labels shuffled: the better the model fits, the worse the validation loss."""
    train_data, misleading, encoder, params = misled(parts)
    result = train(new_model(encoder), encoder, train_data, misleading, params, progress=False)
    history = result.history
    assert result.stop_reason.startswith("early stop")
    assert len(history) < 30
    assert result.best_epoch == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert len(history) == result.best_epoch + 2
    probabilities = predict_proba(result.model, encoder, misleading.texts)
    kept_loss = -np.log(probabilities[np.arange(len(misleading)), misleading.targets]).mean()
    assert math.isclose(kept_loss, history["val_loss"].min(), rel_tol=1e-4)


def test_epoch_average_moves_towards_each_epochs_weights_by_its_share():
    model = nn.Linear(2, 1, bias=False)
    average = EpochAverage(model, share=0.25)
    for value in (4.0, 8.0, 0.0):  # the weights at the ends of three epochs
        with torch.no_grad():
            model.weight.fill_(value)
        average.update()
    # epoch 1 starts it (4); epoch 2 moves it by 1/2 (6); epoch 3 by max(0.25, 1/3) (4)
    with average.applied():
        torch.testing.assert_close(model.weight, torch.full((1, 2), 4.0))
    assert torch.equal(model.weight, torch.zeros(1, 2))  # its own weights again after the block


def test_averaging_validates_and_keeps_the_average_while_training_goes_on_from_the_weights(parts):
    train_data, held_out = parts
    encoder = fitted_encoder(train_data)
    params = {**FAST, "epochs": 5, "select": "loss"}
    results = {share: train(new_model(encoder), encoder, train_data, held_out,
                            {**params, "average": share}, progress=False) for share in (0.0, 0.5, 1.0)}
    plain, averaged, whole_share = (results[share].history for share in (0.0, 0.5, 1.0))
    timing = ["seconds", "names_per_sec"]
    pd.testing.assert_frame_equal(plain.drop(columns=timing), whole_share.drop(columns=timing))
    np.testing.assert_array_equal(plain["train_loss"], averaged["train_loss"])  # the same training
    assert plain["val_loss"].iloc[0] == averaged["val_loss"].iloc[0]  # epoch 1: the weights themselves
    assert not np.allclose(plain["val_loss"].iloc[1:], averaged["val_loss"].iloc[1:])
    result = results[0.5]
    probabilities = predict_proba(result.model, encoder, held_out.texts)
    kept_loss = -np.log(probabilities[np.arange(len(held_out)), held_out.targets]).mean()
    best = averaged.loc[averaged["epoch"] == result.best_epoch, "val_loss"].iloc[0]
    assert math.isclose(kept_loss, best, rel_tol=1e-4)


def test_patience_running_out_on_the_last_epoch_is_no_early_stop(parts):
    """The same training as one that stopped early, planned to end on the epoch it stopped
    at: it completed, keeping the same best epoch's weights."""
    train_data, misleading, encoder, params = misled(parts)
    stopped = train(new_model(encoder), encoder, train_data, misleading, params, progress=False)
    assert stopped.stop_reason.startswith("early stop") and len(stopped.history) < 30
    planned = len(stopped.history)
    result = train(new_model(encoder), encoder, train_data, misleading, params | {"epochs": planned},
                   progress=False)
    assert result.history["val_loss"].tolist() == pytest.approx(stopped.history["val_loss"].tolist())
    assert result.stop_reason == "completed"
    assert result.best_epoch == stopped.best_epoch
    assert result.epochs_completed == result.epochs_planned == planned


def test_ctrl_c_stops_cleanly_and_keeps_what_was_learned(parts):
    train_data, test_data = parts
    encoder = fitted_encoder(train_data)
    model = new_model(encoder)
    before = weights(model)

    def press_ctrl_c(info) -> None:
        if info.epoch == 3 and info.step % 25 == 2:
            raise KeyboardInterrupt

    result = train(model, encoder, train_data, test_data, FAST, callbacks=[press_ctrl_c], progress=False)
    assert result.stop_reason.startswith("interrupted")
    assert result.history["epoch"].tolist() == [1, 2]  # the finished epochs
    assert result.best_epoch in (1, 2)
    assert any(not torch.equal(before[k], v) for k, v in weights(result.model).items())
    assert accuracy(result.model, encoder, test_data) >= 0.5


def test_interrupt_in_the_first_epoch_keeps_the_current_weights(parts):
    train_data, _ = parts
    encoder = fitted_encoder(train_data)
    model = new_model(encoder)
    before = weights(model)

    def stop_after_five(info) -> None:
        if info.step == 5:
            raise KeyboardInterrupt

    result = train(model, encoder, train_data, None, FAST, callbacks=[stop_after_five], progress=False)
    assert f"{5 * FAST['batch_size']:,} texts seen" in result.stop_reason
    assert result.best_epoch is None and result.history.empty
    assert any(not torch.equal(before[k], v) for k, v in weights(result.model).items())


def test_interrupting_an_ensemble_trained_member_by_member_marks_the_result_interrupted(parts):
    """Ctrl-C in the first member stops the whole ensemble, and says so like a single model."""
    from toolkit.registry import load_registry

    train_data, test_data = parts
    encoder = fitted_encoder(train_data)
    torch.manual_seed(0)
    ensemble = load_registry().model("ensemble").factory(
        vocab_size=encoder.vocab_size, num_classes=len(LANGUAGES), members="gru,cnn", training="separate",
    )

    def stop_in_epoch_two(info) -> None:
        if info.epoch == 2:
            raise KeyboardInterrupt

    result = train(ensemble, encoder, train_data, test_data, FAST, callbacks=[stop_in_epoch_two],
                   progress=False)
    assert result.interrupted and result.stop_reason.startswith("gru: interrupted in epoch 2")
    assert "cnn" not in result.stop_reason  # the second member was never started
    assert result.epochs_completed == 1 and result.epochs_planned == FAST["epochs"]


def test_an_absurd_learning_rate_stops_with_a_clear_message(parts):
    """The tutorial's linear cell (no nonlinearity) blows up under a huge unclipped step."""
    train_data, _ = parts
    encoder = fitted_encoder(train_data)
    torch.manual_seed(0)
    config = ScratchRNNConfig(hidden_size=32, nonlinearity="none")
    model = ScratchRNN(encoder.vocab_size, len(LANGUAGES), config)
    params = {"optimizer": "sgd", "lr": 100.0, "clip": 0.0, "epochs": 3, "threads": 1}
    diverged = r"training diverged: the loss became (nan|inf) .*lr=100\)"
    with pytest.raises(toolkit.ToolkitError, match=diverged):
        train(model, encoder, train_data, None, params, progress=False)


class EmitsNaN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.full((len(lengths), len(LANGUAGES)), float("nan"))


def test_a_model_that_emits_nan_stops_at_the_first_step(parts):
    train_data, _ = parts
    steps = []
    with pytest.raises(toolkit.ToolkitError, match="loss became nan at epoch 1, step 1"):
        train(EmitsNaN(), fitted_encoder(train_data), train_data, None, FAST,
              callbacks=[steps.append], progress=False)
    assert steps == []


class WordIds:
    """An encoder whose ids run past the character vocabulary the model was built for."""

    produces = "word-ids"
    vocab_size = 50_000

    def fit(self, texts) -> None: ...

    def encode(self, texts):
        return torch.full((len(texts), 1), 49_999, dtype=torch.long), torch.ones(len(texts), dtype=torch.long)

    def state(self):
        return {}

    def load_state(self, state) -> None: ...


def test_a_model_that_cannot_read_the_encoder_is_refused_before_training(parts):
    train_data, _ = parts
    torch.manual_seed(0)
    model = TorchRNN(59, len(LANGUAGES), "gru")
    steps = []
    with pytest.raises(toolkit.ToolkitError, match="cannot read the encoder's output"):
        train(model, WordIds(), train_data, None, FAST, callbacks=[steps.append], progress=False)
    assert steps == []


def test_a_model_with_the_wrong_number_of_classes_is_refused(parts):
    train_data, _ = parts
    encoder = fitted_encoder(train_data)
    model = ScratchRNN(encoder.vocab_size, 18)
    with pytest.raises(toolkit.ToolkitError, match=r"must return logits of shape \(4, 4\)"):
        train(model, encoder, train_data, None, FAST, progress=False)


def test_incompatible_encoder_and_model_refused_before_any_data_is_read(cli, tmp_path):
    plugin = tmp_path / "word_ids_plugin.py"
    plugin.write_text(
        "import toolkit\n\n"
        "@toolkit.hookimpl\n"
        "def register_encoders(register):\n"
        "    register(toolkit.EncoderSpec(name='word-ids', help='Word ids.', factory=dict,\n"
        "                                 produces='word-ids'))\n"
        "\n"
        "@toolkit.hookimpl\n"
        "def register_datasets(register):\n"
        "    def load():\n"
        "        raise AssertionError('the data must not be read')\n"
        "    register(toolkit.DatasetSpec(name='never-read', help='Never read.', load=load))\n"
    )
    result = cli(["--plugin", str(plugin), "run", "--dataset", "never-read", "--model", "scratch-rnn",
                  "--encoder", "word-ids"])
    assert result.exit_code == 2
    assert "Error: model 'scratch-rnn' consumes char-indices, but encoder 'word-ids' produces word-ids" \
        in result.stderr


def test_balanced_sampling_draws_classes_evenly_and_buckets_by_length(parts):
    train_data, _ = parts
    skewed = train_data.subset([i for i, t in enumerate(train_data.targets) if t != 0 or i % 10 == 0])
    lengths = np.array([len(t) for t in skewed.texts])
    config = TrainConfig.from_params({"sampling": "balanced", "batch_size": 20})
    batches = _epoch_batches(skewed, lengths, 4000, config, np.random.default_rng(0))
    rows = np.concatenate(batches)
    counts = np.bincount(np.asarray(skewed.targets)[rows], minlength=4)
    assert len(rows) == 4000 and counts.min() > 850  # 10 names of class 0, yet a quarter of draws
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    unbucketed = TrainConfig.from_params({"sampling": "balanced", "batch_size": 20, "bucket": False})
    loose = _epoch_batches(skewed, lengths, 4000, unbucketed, np.random.default_rng(0))
    assert spread < 0.25 * np.mean([np.ptp(lengths[b]) for b in loose])


def test_class_weights_give_every_class_the_same_total_weight_at_power_one(parts):
    train_data, _ = parts
    skewed = train_data.subset([i for i, t in enumerate(train_data.targets) if t != 0 or i % 10 == 0])
    counts = np.bincount(skewed.targets)
    assert counts.tolist() == [10, 100, 100, 100]
    full = _class_weights(skewed, 5, 1.0).numpy()  # a fifth class with no training names
    np.testing.assert_allclose(full[:4] * counts, len(skewed) / 5)
    assert full[4] == 0.0
    half = _class_weights(skewed, 5, 0.5).numpy()
    np.testing.assert_allclose(half[:4], np.sqrt(full[:4]), rtol=1e-6)
    assert half[0] > 1 > half[1]


def test_predict_proba_keeps_the_order_of_the_texts(parts):
    _, test_data = parts
    encoder = fitted_encoder(test_data)
    model = new_model(encoder).eval()
    together = predict_proba(model, encoder, test_data.texts)
    one_by_one = np.concatenate([predict_proba(model, encoder, [t]) for t in test_data.texts])
    assert together.shape == (len(test_data), len(LANGUAGES))
    np.testing.assert_allclose(together.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(together, one_by_one, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("params", "message"), [
    ({"batch_size": 0}, "parameter 'batch_size' must be at least 1 and at most 4,096; got 0."),
    ({"lr": "-1"}, "parameter 'lr' must be above 0; got -1.0."),
    ({"clip": "nan"}, "parameter 'clip' must be a finite number, at least 0; got nan."),
    ({"optimizer": "lbfgs"}, "must be one of adam, adamw, sgd"),
    ({"epoch": 3}, "Did you mean 'epochs'"),
    ({"lr": 0.5, "weight_decay": 2}, "needs lr \\* weight_decay below 1"),
    ({"average": 1.5}, "parameter 'average' must be at least 0 and at most 1"),
])
def test_bad_trainer_parameters_are_user_errors(params, message):
    with pytest.raises(toolkit.ToolkitError, match=message):
        TrainConfig.from_params(params)


def test_config_defaults_are_the_declared_parameters():
    assert TrainConfig().as_dict() == {p.name: p.default for p in TRAIN_PARAMS}


def test_device_selection():
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    for name in ("cuda", "mps"):
        available = torch.cuda.is_available() if name == "cuda" else torch.backends.mps.is_available()
        if not available:
            with pytest.raises(toolkit.ToolkitError, match=f"device '{name}' is not available"):
                resolve_device(name)
    with pytest.raises(toolkit.ToolkitError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_a_run_writes_a_plain_line_per_epoch_when_stderr_is_not_a_terminal(cli, tmp_path):
    """As pip and git do in a log: no bar (stderr is not a terminal here), a line per epoch."""
    result = cli(["run", "--dataset", "words-language", "-p", "dataset.languages=en,de,fr",
                  "-p", "dataset.n=421", "--model", "scratch-rnn", "--device", "cpu",
                  "-p", "train.threads=1", "-p", "train.epochs=3", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(lines) == len(history) == 3
    for line, row in zip(lines, history.itertuples(), strict=True):
        assert line.startswith(f"epoch {row.epoch}/3: training loss {row.train_loss:.3f}, ")
        assert f"; validation loss {row.val_loss:.3f}, accuracy {row.val_acc:.1%} (" in line


def test_an_ensemble_trained_member_by_member_names_each_member_in_a_log(parts, capsys):
    from toolkit.registry import load_registry

    train_data, test_data = parts
    encoder = fitted_encoder(train_data)
    torch.manual_seed(0)
    ensemble = load_registry().model("ensemble").factory(
        vocab_size=encoder.vocab_size, num_classes=len(LANGUAGES), members="ngram,cnn", training="separate",
    )
    train(ensemble, encoder, train_data, test_data, {**FAST, "epochs": 2})  # stderr is not a terminal here
    lines = [line.split(":")[0] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["training member ngram", "epoch 1/2", "epoch 2/2", "training member cnn", "epoch 1/2",
                     "epoch 2/2"]


class SlowEncoder(OneHotEncoder):
    """The onehot encoder, taking a known time to encode (the trainer encodes every text once)."""

    delay = 0.4

    def encode(self, texts):
        import time

        time.sleep(self.delay)
        return super().encode(texts)


def test_the_training_time_counts_the_whole_fit_encoding_included(parts):
    # As scikit-learn's fit is timed (its vectorising included), so the benchmarks compare like with like.
    train_data, _ = parts
    encoder = SlowEncoder(TUTORIAL_ALPHABET)
    encoder.fit(train_data.texts)
    steps_only = train(new_model(encoder), encoder, train_data, params={**FAST, "epochs": 1})
    assert steps_only.seconds >= SlowEncoder.delay
    assert steps_only.seconds >= steps_only.history["seconds"].sum() + SlowEncoder.delay

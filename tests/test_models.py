"""The built-in models: output shapes, the batched tutorial cell, padding, parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import toolkit
from toolkit import TUTORIAL_ALPHABET
from toolkit.plugins.onehot import OneHotEncoder
from toolkit.plugins.scratch import ScratchRNNConfig
from toolkit.plugins.scratch_model import ScratchRNN
from toolkit.registry import load_registry

NUM_CLASSES = 18
MODELS = ("scratch-rnn", "scratch-gru", "gru", "lstm", "rnn")


@pytest.fixture(scope="module")
def names(names_dir) -> list[str]:
    """Real names of many lengths, from three languages."""
    found = []
    for language in ("Japanese", "Greek", "Scottish"):
        found += (names_dir / f"{language}.txt").read_text(encoding="utf-8").split("\n")[:20]
    return [n for n in found if n]


def build(name: str, encoder: OneHotEncoder, **params) -> nn.Module:
    spec = load_registry().model(name)
    values = {p.name: p.default for p in spec.params} | params
    torch.manual_seed(0)
    return spec.factory(vocab_size=encoder.vocab_size, num_classes=NUM_CLASSES, **values).eval()


@pytest.mark.parametrize("name", MODELS)
def test_every_model_returns_batch_by_classes_logits(name, names):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    model = build(name, encoder)
    for texts in (names, names[:1]):
        logits = model(*encoder.encode(texts))
        assert logits.shape == (len(texts), NUM_CLASSES)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("params", [
    {"bidirectional": False},
    {"num_layers": 2, "dropout": 0.2},
    {"pooling": "last+max", "embedding_dim": 8, "hidden_size": 16},
])
@pytest.mark.parametrize("name", ("gru", "lstm", "rnn"))
def test_torch_models_shapes_with_options(name, params, names):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    logits = build(name, encoder, **params)(*encoder.encode(names))
    assert logits.shape == (len(names), NUM_CLASSES)


class TutorialRNN(nn.Module):
    """The tutorial's cell, exactly as it is written there: one name, one letter at a time."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, activation: nn.Module):
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)
        self.activation = activation

    def forward(self, input: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        combined = torch.cat((input, hidden), 1)
        hidden = self.activation(self.i2h(combined))
        output = self.softmax(self.i2o(combined))
        return output, hidden

    def init_hidden(self) -> torch.Tensor:
        return torch.zeros(1, self.hidden_size)


def line_to_tensor(line: str, encoder: OneHotEncoder) -> torch.Tensor:
    """The tutorial's lineToTensor: (letters, 1, input_size) one-hot."""
    indices = encoder.encode([line])[0][0]
    tensor = torch.zeros(len(line), 1, encoder.vocab_size)
    for li, index in enumerate(indices):
        tensor[li][0][index] = 1
    return tensor


@pytest.mark.parametrize("nonlinearity", ["none", "tanh", "sigmoid"])
def test_batched_scratch_rnn_matches_the_tutorial_loop(nonlinearity, names):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    config = ScratchRNNConfig(hidden_size=32, nonlinearity=nonlinearity)
    batched = ScratchRNN(encoder.vocab_size, NUM_CLASSES, config)
    tutorial = TutorialRNN(encoder.vocab_size, 32, NUM_CLASSES, batched.activation)
    tutorial.load_state_dict(batched.state_dict())  # the same weights, the same names

    expected = []
    for name in names:
        hidden = tutorial.init_hidden()
        line_tensor = line_to_tensor(name, encoder)
        for i in range(line_tensor.size()[0]):
            output, hidden = tutorial(line_tensor[i], hidden)
        expected.append(output[0])
    got = torch.log_softmax(batched(*encoder.encode(names)), dim=1)
    assert len(set(map(len, names))) > 3  # the batch really mixes lengths
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_padding_does_not_change_a_prediction(name, names):
    encoder = OneHotEncoder(TUTORIAL_ALPHABET)
    model = build(name, encoder)
    alone = torch.stack([model(*encoder.encode([n]))[0] for n in names])
    indices, lengths = encoder.encode(names)
    extra = torch.cat((indices, torch.zeros(len(names), 5, dtype=torch.long)), dim=1)
    for batch in (indices, extra):
        torch.testing.assert_close(model(batch, lengths), alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "params", "message"), [
    ("scratch-rnn", {"hidden_size": 0}, "'hidden_size' must be at least 1 and at most 4,096; got 0"),
    ("scratch-gru", {"hidden_size": -3}, "'hidden_size' must be at least 1 and at most 4,096; got -3"),
    ("scratch-gru", {"hidden_size": 4097}, "'hidden_size' must be at least 1 and at most 4,096; got 4,097"),
    ("gru", {"num_layers": 0}, "'num_layers' must be at least 1 and at most 16"),
    ("lstm", {"embedding_dim": 10**9}, "'embedding_dim' must be at least 1 and at most 4,096"),
    ("lstm", {"dropout": 1.0}, "'dropout' must be at least 0 and below 1; got 1.0"),
])
def test_impossible_sizes_are_user_errors(name, params, message):
    with pytest.raises(toolkit.ToolkitError, match=message):
        build(name, OneHotEncoder(TUTORIAL_ALPHABET), **params)


def test_models_are_listed_with_their_parameters(cli):
    listing = cli(["models"]).stdout
    for name in MODELS:
        assert f"{name}: " in listing
    assert "nonlinearity (str, default 'tanh'; one of none, tanh, sigmoid; tune tries each)" in listing
    assert "hidden_size (int, default 128; at least 1 and at most 4,096; tune searches 64,128,256)" in listing
    assert "bidirectional (bool, default True)" in listing

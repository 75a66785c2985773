"""Parameter declaration, conversion, validation, and `toolkit run`'s checks before training."""

from __future__ import annotations

import pytest

from toolkit.errors import ToolkitError
from toolkit.params import Param, Section, parse_assignments, resolve

MODEL = Section("model", "model 'm'", (
    Param("hidden_size", int, 128, "Hidden units."),
    Param("dropout", float, 0.0, "Dropout."),
    Param("bidirectional", bool, False, "Both directions."),
    Param("cell", str, "gru", "Cell type.", choices=("gru", "lstm")),
))
TRAIN = Section("train", "the trainer", (
    Param("epochs", int, 10, "Epochs."),
    Param("dropout", float, 0.1, "A clash with model.dropout, for ambiguity."),
))


def test_defaults_fill_every_section():
    assert resolve([MODEL, TRAIN], {}) == {
        "model": {"hidden_size": 128, "dropout": 0.0, "bidirectional": False, "cell": "gru"},
        "train": {"epochs": 10, "dropout": 0.1},
    }


@pytest.mark.parametrize(("raw", "expected"), [
    ({"model.hidden_size": "256"}, {"hidden_size": 256}),
    ({"hidden_size": "1_000"}, {"hidden_size": 1000}),
    ({"model.dropout": "0.25"}, {"dropout": 0.25}),
    ({"model.dropout": 1}, {"dropout": 1.0}),
    ({"bidirectional": "yes"}, {"bidirectional": True}),
    ({"bidirectional": "False"}, {"bidirectional": False}),
    ({"cell": "lstm"}, {"cell": "lstm"}),
    ({"hidden_size": 64}, {"hidden_size": 64}),
])
def test_values_are_converted_to_declared_types(raw, expected):
    resolved = resolve([MODEL, TRAIN], raw)["model"]
    for name, value in expected.items():
        assert resolved[name] == value
        assert type(resolved[name]) is type(value)


@pytest.mark.parametrize(("raw", "message"), [
    ({"model.hidden_size": "big"}, "model 'm' parameter 'hidden_size' expects an integer; got 'big'."),
    ({"hidden_size": 1.5}, "expects an integer; got 1.5"),
    ({"hidden_size": True}, "expects an integer; got True"),
    ({"bidirectional": "maybe"}, "parameter 'bidirectional' expects true or false; got 'maybe'"),
    ({"model.dropout": "x"}, "expects a number; got 'x'"),
    ({"cell": "transformer"}, "parameter 'cell' must be one of gru, lstm; got 'transformer'"),
    ({"model.hiden_size": "3"}, "model 'm' has no parameter 'hiden_size'. Did you mean 'hidden_size'?"),
    ({"hiden_size": "3"}, "this run has no parameter 'hiden_size'. Did you mean 'hidden_size'? Valid:"),
    ({"dropout": "0.5"}, "parameter 'dropout' is ambiguous; write model.dropout or train.dropout."),
    ({"modle.cell": "gru"}, "unknown parameter group 'modle' in 'modle.cell'. Did you mean 'model'?"),
])
def test_bad_values_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(ToolkitError) as info:
        resolve([MODEL, TRAIN], raw)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ToolkitError) as info:
        resolve([MODEL], {"model.size": "3"})
    assert "Valid: model.hidden_size, model.dropout, model.bidirectional, model.cell." in str(info.value)


def test_parse_assignments():
    assert parse_assignments(["a=1", "b.c=x=y", "a=2"]) == {"a": "2", "b.c": "x=y"}
    with pytest.raises(ToolkitError, match="--param expects KEY=VALUE"):
        parse_assignments(["novalue"])


def test_param_type_must_be_supported():
    with pytest.raises(TypeError):
        Param("x", list, [], "A list is not a supported type.")


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--dataset", "no-such-data", "--model", "scratch-rnn"], "unknown dataset 'no-such-data'."),
    (["run", "--dataset", "names", "--model", "scratch-rnm"],
     "unknown model 'scratch-rnm'. Did you mean 'scratch-rnn'? Available:"),
    (["run", "--dataset", "names", "--encoder", "onehott"],
     "unknown encoder 'onehott'. Did you mean 'onehot'? Available: onehot"),
    (["run", "--dataset", "names", "--param", "encoder.alfabet=abc"],
     "encoder 'onehot' has no parameter 'alfabet'. Did you mean 'alphabet'?"),
    (["run", "--dataset", "names", "--param", "train.epochs=many"],
     "the trainer parameter 'epochs' expects an integer; got 'many'."),
    (["run", "--dataset", "names", "--device", "tpu"],
     "unknown device 'tpu'; use one of auto, cpu, cuda, mps."),
    (["run", "--dataset", "names", "--param", "oops"], "--param expects KEY=VALUE"),
])
def test_run_refuses_bad_input_before_training(cli, args, message):
    result = cli(args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")


NEVER_LOADED = '''
import toolkit

def load():
    raise AssertionError("the dataset was loaded although a parameter was out of range")

@toolkit.hookimpl
def register_datasets(register):
    register(toolkit.DatasetSpec(name="never-loaded", help="Fails if loaded.", load=load))
'''


@pytest.mark.parametrize(("model", "param", "message"), [
    ("scratch-rnn", "train.epochs=0", "the trainer parameter 'epochs' must be at least 1 and at most 10,000"),
    ("scratch-rnn", "train.lr=0", "the trainer parameter 'lr' must be above 0; got 0.0."),
    ("scratch-rnn", "train.label_smoothing=nan", "'label_smoothing' must be a finite number, at least 0"),
    ("scratch-rnn", "model.hidden_size=0", "model 'scratch-rnn' parameter 'hidden_size' must be at least 1"),
    ("gru", "model.dropout=1", "model 'gru' parameter 'dropout' must be at least 0 and below 1; got 1.0."),
    ("scratch-rnn", "split.test_size=1", "the split parameter 'test_size' must be above 0 and below 1"),
    ("ngram", "model.min_n=5", "model 'ngram' needs min_n <= max_n; got min_n=5, max_n=4."),
    ("cnn", "model.kernels=3,99", "model 'cnn' needs kernels as comma-separated widths from 1 to 32"),
])
def test_ranges_are_refused_before_the_data_loads(cli, tmp_path, model, param, message):
    plugin = tmp_path / "never_loaded.py"
    plugin.write_text(NEVER_LOADED)
    result = cli(["--plugin", str(plugin), "run", "--dataset", "never-loaded", "--model", model,
                  "--param", param, "-o", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "loaded although" not in result.output
    assert not (tmp_path / "run").exists()


def test_the_dataset_is_loaded_when_every_parameter_is_in_range(cli, tmp_path):
    """The counterpart: the same plugin is loaded (and fails) once the parameters are fine."""
    plugin = tmp_path / "never_loaded.py"
    plugin.write_text(NEVER_LOADED)
    result = cli(["--plugin", str(plugin), "run", "--dataset", "never-loaded", "--model", "ngram",
                  "-o", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "loaded although a parameter was out of range" in result.output + str(result.exception)


def test_search_spaces_parse_and_print_back_the_same():
    from toolkit.params import Space, parse_space

    lr = Param("lr", float, 0.01, "Learning rate.", above=0)
    kernels = Param("kernels", str, "2,3", "Widths.")
    assert parse_space("0.001:0.1:log", lr, "t") == Space.range(0.001, 0.1, log=True)
    assert str(Space.range(0.001, 0.1, log=True)) == "0.001:0.1:log"
    assert parse_space("2,3|3,4,5", kernels, "m") == Space.choice("2,3", "3,4,5")  # values with commas
    assert str(Space.choice("2,3", "3,4,5")) == "2,3|3,4,5"
    assert parse_space("a,b", kernels, "m") == Space.choice("a", "b")
    with pytest.raises(ToolkitError, match="must be above 0"):
        parse_space("0:1:log", lr, "the trainer")
    with pytest.raises(ToolkitError, match="the third part must be 'log'"):
        parse_space("0.1:1:lin", lr, "the trainer")


def test_a_config_with_other_defaults_keeps_each_declaration():
    from dataclasses import dataclass

    from toolkit.params import Config, param_field, params_of

    @dataclass(frozen=True)
    class Base(Config):
        owner = "model 'base'"
        width: int = param_field(8, "Width.", min=1, max=64)
        depth: int = param_field(1, "Depth.", min=1, max=4)

    Wide = Base.with_defaults("Wide", owner="model 'wide'", width=32)
    assert [(p.name, p.default) for p in params_of(Wide)] == [("width", 32), ("depth", 1)]
    assert params_of(Wide)[0].max == 64 and params_of(Wide)[0].help == "Width."
    assert Wide() == Wide(width=32, depth=1) and issubclass(Wide, Base)
    with pytest.raises(ToolkitError, match="model 'wide' parameter 'width' must be at least 1 and at"):
        Wide(width=65)
    with pytest.raises(TypeError, match="declares no parameter height"):
        Base.with_defaults("Tall", height=3)

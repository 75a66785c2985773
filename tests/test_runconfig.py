"""Run config files: `toolkit run --config FILE`, and the config.toml every run folder writes."""

from __future__ import annotations

import tomllib

import pytest
from conftest import names_csv, same_weights

import toolkit


def test_a_runs_config_toml_reproduces_it(trained_run, tmp_path):
    written = trained_run.run_dir / "config.toml"
    recorded = tomllib.loads(written.read_text(encoding="utf-8"))
    assert recorded["run"] == {"dataset": "names", "model": "gru", "encoder": "onehot", "seed": 0,
                               "device": "auto"}
    assert recorded["model"]["hidden_size"] == 48 and recorded["train"]["epochs"] == 2

    again = toolkit.run(config=written, output=tmp_path / "again", progress=False)

    assert again.plan.params == trained_run.plan.params
    assert again.report.summary.equals(trained_run.report.summary)
    assert same_weights(trained_run.run_dir, again.run_dir)
    assert (again.run_dir / "config.toml").read_text() == written.read_text()


def test_flags_beside_the_config_win(cli, tmp_path):
    data = names_csv(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text(
        '[run]\ndataset = "csv"\nmodel = "gru"\nseed = 1\n\n'
        f'[dataset]\npath = "{data}"\n\n[model]\nhidden_size = 12\n\n[train]\nepochs = 3\nthreads = 1\n',
        encoding="utf-8",
    )
    result = cli(["run", "--config", str(config), "--seed", "2", "-p", "train.epochs=1",
                  "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = tomllib.loads((tmp_path / "out" / "config.toml").read_text(encoding="utf-8"))
    assert written["run"]["seed"] == 2 and written["train"]["epochs"] == 1  # the flags
    assert written["model"]["hidden_size"] == 12 and written["run"]["model"] == "gru"  # the file
    assert written["dataset"]["path"] == str(data)


def test_a_flag_that_replaces_the_file_s_model_says_how_to_start_from_the_file(cli, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[run]\ndataset = "names"\nmodel = "gru"\n\n[model]\nhidden_size = 12\n',
                      encoding="utf-8")
    result = cli(["run", "--config", str(config), "--model", "ngram", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: config file '{config}', table [model], key 'hidden_size': model "
                                    "'ngram' has no parameter 'hidden_size'")
    assert result.stderr.endswith("The table is for model 'gru', which --model ngram replaces: delete the "
                                  "[model] table from a copy of the file to start from it.\n")
    assert not (tmp_path / "out").exists()


def test_a_relative_data_path_in_a_config_file_is_read_from_the_file_s_folder(tmp_path, monkeypatch):
    data = names_csv(tmp_path, per_class=40)
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "run.toml"
    config.write_text('[run]\ndataset = "csv"\nmodel = "ngram"\n\n[dataset]\npath = "../names.csv"\n\n'
                      '[train]\nepochs = 1\nthreads = 1\n', encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # where ../names.csv does not exist
    plan = toolkit.plan_run(config=config)
    assert plan.params["dataset"]["path"] == str(data)


def test_a_config_given_as_a_dict_in_python():
    plan = toolkit.plan_run(config={"run": {"dataset": "names", "model": "ngram"}, "train": {"epochs": 2}},
                            params={"train.lr": 0.01})
    assert plan.model.name == "ngram" and plan.params["train"]["epochs"] == 2
    assert plan.params["train"]["lr"] == 0.01


@pytest.mark.parametrize(("text", "message"), [
    ('[model]\nhiden_size = 3\n',
     "table [model], key 'hiden_size': model 'scratch-rnn' has no parameter 'hiden_size'. "
     "Did you mean 'hidden_size'?"),
    ('[train]\nepochs = "many"\n',
     "table [train], key 'epochs': the trainer parameter 'epochs' expects an integer"),
    ('[train]\nepochs = 0\n',
     "table [train], key 'epochs': the trainer parameter 'epochs' must be at least 1"),
    ('[train]\nlr = [1, 2]\n', "table [train], key 'lr': a parameter takes a single value"),
    ('[trian]\nepochs = 1\n', "has an unknown table or key [trian]. Did you mean 'train'?"),
    ('[run]\nseeds = 1\n', "table [run] has no key 'seeds'. Did you mean 'seed'?"),
    ('[run]\nseed = "one"\n', "table [run], key 'seed' must be an integer"),
    ('[run]\nplugins = "x.py"\n', "table [run], key 'plugins' must be a list of strings"),
    ('seed = 1\n', "key 'seed' goes in the [run] table"),
    ('[run\n', "is not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 5)"),
    ('[run]\nmodel = "nope"\n', "unknown model 'nope'"),
])
def test_every_bad_config_entry_is_one_line_exit_2(cli, tmp_path, text, message):
    config = tmp_path / "run.toml"
    config.write_text(text, encoding="utf-8")
    result = cli(["run", "--config", str(config), "--dataset", "names"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert message in result.stderr
    if "unknown model" not in message:
        assert f"config file '{config}'" in result.stderr


def test_a_missing_config_file_and_no_dataset_are_one_line(cli, tmp_path):
    result = cli(["run", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "does not exist" in result.stderr and result.stderr.count("\n") == 1
    result = cli(["run", "--model", "gru"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: no dataset given; name one with --dataset (or in a --config file's [run]).\n"
    )

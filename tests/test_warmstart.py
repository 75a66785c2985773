"""Warm starts: `toolkit run --init RUN` continues from a trained run's model and encoder."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import names_csv
from safetensors.torch import load_file

import toolkit

LANGUAGES = ("Greek", "Japanese", "Italian", "Polish")
SMALL = {"model.hidden_size": 16, "train.threads": 1}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A small real GRU run on four languages of the names data, four epochs."""
    folder = tmp_path_factory.mktemp("warm")
    data = names_csv(folder, LANGUAGES, per_class=300)
    result = toolkit.run("csv", "gru", params={"dataset.path": str(data), "train.epochs": 4, **SMALL},
                         output=folder / "first", progress=False)
    return result, data


def test_init_continues_where_the_run_stopped(first_run, tmp_path):
    first, data = first_run
    before = first.history
    warm = toolkit.run("csv", params={"dataset.path": str(data), "train.epochs": 1, "train.lr": 0.001,
                                      "train.threads": 1},
                       init=first.run_dir, output=tmp_path / "warm", progress=False)
    after = warm.history.iloc[0]
    # the first epoch starts near the original's best validation epoch, not from scratch
    assert after["val_loss"] < before["val_loss"].min() * 1.1
    assert after["val_loss"] < before["val_loss"].iloc[0] * 0.8
    assert after["val_acc"] >= before["val_acc"].max() - 0.03
    assert warm.plan.params["model"] == first.plan.params["model"]
    recorded = json.loads((warm.run_dir / "config.json").read_text())
    assert recorded["init"]["run"] == str(first.run_dir.resolve())
    assert recorded["init"]["classes"] == list(first.classes) and recorded["init"]["added_classes"] == []
    written = tomllib.loads((warm.run_dir / "config.toml").read_text())
    assert written["run"]["init"] == str(first.run_dir.resolve())
    shown = toolkit.runs_table(tmp_path).shown()  # `toolkit runs` says where a warm start began
    assert shown.set_index("run").loc["warm", "init"] == first.run_dir.name


def test_new_classes_are_refused_without_add(cli, first_run, tmp_path):
    first, _ = first_run
    data = names_csv(tmp_path, (*LANGUAGES, "Scottish"), per_class=60)
    refused = cli(["run", "-d", "csv", "-p", f"path={data}", "--init", str(first.run_dir),
                   "-o", str(tmp_path / "refused")])
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"Error: the data has 1 class(es) the --init run '{first.run_dir}' was not trained on "
        "(Scottish); pass --param train.new_classes=add to give them new output rows, "
        "or train from scratch.\n"
    )
    assert not (tmp_path / "refused").exists()


def test_added_classes_get_new_rows_and_the_old_rows_are_kept(first_run, tmp_path):
    first, _ = first_run
    data = names_csv(tmp_path, (*LANGUAGES, "Scottish"), per_class=60)
    added = toolkit.run(
        "csv", params={"dataset.path": str(data), "train.epochs": 1, "train.lr": 1e-9,
                       "train.new_classes": "add", "train.threads": 1},
        init=first.run_dir, output=tmp_path / "added", progress=False,
    )
    assert added.classes == (*first.classes, "Scottish")
    assert added.warm_start.added_classes == ("Scottish",)
    old, new = load_file(first.run_dir / "model.safetensors"), load_file(added.run_dir / "model.safetensors")
    grown = [key for key in old if old[key].shape != new[key].shape]
    assert grown and all(new[key].shape[0] == old[key].shape[0] + 1 for key in grown)
    for key in old:  # a learning rate of 1e-9 leaves every trained weight where it was
        assert (new[key][: old[key].shape[0]] - old[key]).abs().max() < 1e-5
    assert "Scottish" in added.report.per_class.index


def test_ngram_adds_classes_as_columns_of_its_table(tmp_path):
    """ngram's table holds a score per class in its columns (buckets, classes): an added class
    is a new column, the trained ones kept."""
    data = names_csv(tmp_path, LANGUAGES, per_class=100)
    params = {"dataset.path": str(data), "train.epochs": 1, "train.threads": 1}
    first = toolkit.run("csv", "ngram", params=params, output=tmp_path / "first", progress=False)
    (tmp_path / "more").mkdir()
    more = names_csv(tmp_path / "more", (*LANGUAGES, "Scottish"), per_class=60)
    added = toolkit.run("csv", params={"dataset.path": str(more), "train.epochs": 1, "train.lr": 1e-9,
                                       "train.new_classes": "add", "train.threads": 1},
                        init=first.run_dir, output=tmp_path / "added", progress=False)
    old, new = load_file(first.run_dir / "model.safetensors"), load_file(added.run_dir / "model.safetensors")
    assert new["bag.weight"].shape == (old["bag.weight"].shape[0], 5)
    assert (new["bag.weight"][:, :4] - old["bag.weight"]).abs().max() < 1e-5
    assert added.classes == (*first.classes, "Scottish") and "Scottish" in added.report.per_class.index


def test_characters_the_encoder_does_not_know_are_said(cli, first_run, tmp_path):
    first, data = first_run
    odd = tmp_path / "odd.csv"
    lines = data.read_text(encoding="utf-8").splitlines()
    marked = [f"Ø{line}" for line in lines[1:] if line.endswith(",Greek")][:60]  # most land in training
    odd.write_text("\n".join([*lines, *marked]) + "\n", encoding="utf-8")
    result = cli(["run", "-d", "csv", "-p", f"path={odd}", "--init", str(first.run_dir), "-p", "epochs=1",
                  "-p", "threads=1", "-o", str(tmp_path / "odd")])
    assert result.exit_code == 0, result.output
    assert f"Started from run {first.run_dir} (4 classes)." in result.stdout
    unknown = json.loads((tmp_path / "odd" / "config.json").read_text())["init"]
    assert unknown["texts_with_unknown_characters"] >= 30 and "Ø" in unknown["unknown_characters"]
    assert "training texts hold characters the --init run's encoder does not know" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "ngram"], "has model 'gru', not 'ngram'; a warm start continues the same model"),
    (["-p", "model.hidden_size=8"], "has model.hidden_size=16, not 8; a warm start keeps the run's model"),
])
def test_a_different_model_is_refused(cli, first_run, tmp_path, args, message):
    first, data = first_run
    result = cli(["run", "-d", "csv", "-p", f"path={data}", "--init", str(first.run_dir), *args])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_without_a_dataset_it_trains_on_with_the_run_s_data_split_and_seed(first_run, tmp_path):
    first, data = first_run
    more = toolkit.run(params={"train.epochs": 1, "train.threads": 1}, init=first.run_dir,
                       output=tmp_path / "more", progress=False)
    assert more.plan.dataset.name == "csv" and more.plan.params["dataset"]["path"] == str(data)
    assert more.plan.seed == first.plan.seed and more.plan.params["split"] == first.plan.params["split"]
    assert more.split.test.texts == first.split.test.texts  # the run's test texts stay held out


def test_a_run_to_start_from_that_is_gone_is_named_as_such(cli, tmp_path):
    """A config file (a warm-started run's config.toml) may name the --init run: its message
    says which folder it is, not only that a folder is missing."""
    config = tmp_path / "run.toml"
    config.write_text(f'[run]\ndataset = "names"\nmodel = "ngram"\ninit = "{tmp_path / "gone"}"\n',
                      encoding="utf-8")
    result = cli(["run", "--config", str(config), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.stderr == (
        "Error: the run to start from (--init, or a config file's [run] init): run folder "
        f"'{tmp_path / 'gone'}' does not exist; give a folder made by `toolkit run`.\n")

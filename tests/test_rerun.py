"""`toolkit rerun RUN`: a run trained again from its record, its plugins and data checked."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import names_csv, same_weights

import toolkit

PLUGIN = '''
import toolkit
from toolkit.datasets import csv_file

PATH = {path!r}


@toolkit.hookimpl
def register_datasets(register):
    register(toolkit.DatasetSpec(name="few-names", help="A few names from a CSV file.", load=load))


def load():
    return csv_file.load(path=PATH)
'''
SMALL = {"model.hidden_size": 16, "train.epochs": 2, "train.threads": 1}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A small real run on a CSV file of names, its dataset from a file plugin."""
    folder = tmp_path_factory.mktemp("rerun")
    data = names_csv(folder)
    plugin = folder / "few_names.py"
    plugin.write_text(PLUGIN.format(path=str(data)), encoding="utf-8")
    result = toolkit.run("few-names", "gru", params=SMALL, plugins=[str(plugin)], output=folder / "run",
                         progress=False)
    return result, data, plugin


def test_an_unchanged_run_reruns_equal(cli, small_run, tmp_path):
    result, _, plugin = small_run
    recorded = json.loads((result.run_dir / "config.json").read_text())
    assert recorded["plugins"] == [str(plugin.resolve())]
    assert recorded["dataset"]["plugin_file"] == str(plugin.resolve())

    rerun = cli(["rerun", str(result.run_dir), "--output", str(tmp_path / "again")])

    assert rerun.exit_code == 0, rerun.output
    assert "Test metrics equal the original's exactly (and the same weights)." in rerun.stdout
    assert same_weights(result.run_dir, tmp_path / "again")
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["summary"] == json.loads((result.run_dir / "metrics.json").read_text())["summary"]


def test_the_python_api_says_the_same(small_run, tmp_path):
    result, _, _ = small_run
    done = toolkit.rerun(result.run_dir, tmp_path / "again", progress=False)
    assert done.equal and done.same_weights and done.metric_differences == {}
    assert done.result.plan.params == result.plan.params


def test_changed_data_is_refused_unless_allowed(cli, small_run, tmp_path):
    result, data, _ = small_run
    original = data.read_text(encoding="utf-8")
    try:
        data.write_text(original.replace("Adamidis,Greek\n", ""), encoding="utf-8")
        refused = cli(["rerun", str(result.run_dir), "--output", str(tmp_path / "refused")])
        assert refused.exit_code == 2
        assert refused.stderr == (
            f"Error: data file 'names.csv' (changed) differs from what run '{result.run_dir}' was "
            "trained on; pass --allow-data-change to train on the data as it is now.\n"
        )
        assert not (tmp_path / "refused").exists()

        allowed = cli(["rerun", str(result.run_dir), "--output", str(tmp_path / "allowed"),
                       "--allow-data-change"])
        assert allowed.exit_code == 0, allowed.output
        assert "The data changed since the original run: 'names.csv' (changed)." in allowed.stdout
        assert (tmp_path / "allowed" / "config.json").is_file()
    finally:
        data.write_text(original, encoding="utf-8")


def test_a_changed_plugin_file_is_refused(cli, small_run, tmp_path):
    result, _, plugin = small_run
    source = plugin.read_text(encoding="utf-8")
    try:
        plugin.write_text(source + "\n# edited\n", encoding="utf-8")
        refused = cli(["rerun", str(result.run_dir), "--output", str(tmp_path / "refused")])
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
        assert f"plugin file '{plugin.resolve()}' differs from the one run" in refused.stderr
        assert "restore it to rerun the run." in refused.stderr
    finally:
        plugin.write_text(source, encoding="utf-8")


def test_a_folder_that_is_not_a_run_is_one_line(cli, tmp_path):
    refused = cli(["rerun", str(tmp_path)])
    assert refused.exit_code == 2 and "is not a complete toolkit run folder" in refused.stderr


def test_differences_in_metrics_and_library_versions_are_said(cli, small_run, tmp_path):
    result, _, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["versions"]["torch"] = "1.0.0"
    (copy / "config.json").write_text(json.dumps(config))
    metrics = json.loads((copy / "metrics.json").read_text())
    accuracy, metrics["summary"]["accuracy"] = metrics["summary"]["accuracy"], 0.25
    (copy / "metrics.json").write_text(json.dumps(metrics))

    rerun = cli(["rerun", str(copy), "--output", str(tmp_path / "again")])

    assert rerun.exit_code == 0, rerun.output
    lines = rerun.stdout.splitlines()
    assert "Test metrics differ from the original's:" in lines
    assert f"  accuracy: 0.25 -> {accuracy:.6g} ({accuracy - 0.25:+.6g})" in lines
    assert not any(line.startswith("  macro_f1") for line in lines)  # only what differs
    import torch

    note = f"Note: the original ran with torch 1.0.0, this with {torch.__version__}; results may differ."
    assert note in lines


def test_a_data_file_given_relative_to_the_working_folder_is_recorded_whole(tmp_path, monkeypatch):
    """`--param dataset.path=names.csv` in one folder: the run records the absolute path, so its
    config file and `toolkit rerun` find the data from any other folder."""
    (tmp_path / "data").mkdir()
    names_csv(tmp_path / "data", per_class=40)
    monkeypatch.chdir(tmp_path / "data")
    params = {"dataset.path": "names.csv", "train.epochs": 1, "train.threads": 1}
    first = toolkit.run("csv", "ngram", params=params, output=tmp_path / "first", progress=False)
    recorded = str(tmp_path / "data" / "names.csv")
    assert first.plan.params["dataset"]["path"] == recorded
    assert f'path = "{recorded}"' in (first.run_dir / "config.toml").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    again = toolkit.rerun(first.run_dir, output=tmp_path / "again")
    assert again.result.test_accuracy() == first.test_accuracy() and again.same_weights

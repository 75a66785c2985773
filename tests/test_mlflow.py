"""`--track mlflow`: a run logged to a real local MLflow store, read back with MLflow's client."""

from __future__ import annotations

import json

import pytest
from conftest import names_csv
from mlflow.tracking import MlflowClient

STORES = {
    "sqlite": lambda folder: {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"},
    "file": lambda folder: {"MLFLOW_TRACKING_URI": f"file:{folder / 'mlruns'}",
                            "MLFLOW_ALLOW_FILE_STORE": "true"},
}


@pytest.mark.parametrize("store", sorted(STORES))
def test_the_store_holds_params_epochs_test_metrics_and_the_run_folder(cli, tmp_path, monkeypatch, store):
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact folder is relative to it
    for name, value in STORES[store](tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "toolkit-tests")
    data = names_csv(tmp_path)
    result = cli(["run", "-d", "csv", "-p", f"path={data}", "-m", "gru", "-p", "hidden_size=12",
                  "-p", "epochs=3", "-p", "threads=1", "--track", "mlflow", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output

    client = MlflowClient()
    experiment = client.get_experiment_by_name("toolkit-tests")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["model.hidden_size"] == "12" and run.data.params["train.epochs"] == "3"
    assert run.data.params["dataset"] == "csv" and run.data.params["dataset.path"] == str(data)
    history = [line.split(",") for line in (tmp_path / "run" / "history.csv").read_text().splitlines()]
    columns = history[0]
    for ours, theirs in (("train_loss", "train_loss"), ("val_loss", "val_loss"), ("val_acc", "val_accuracy")):
        logged = client.get_metric_history(run.info.run_id, theirs)
        assert [m.step for m in logged] == [1, 2, 3]
        expected = [float(row[columns.index(ours)]) for row in history[1:]]
        assert [m.value for m in logged] == pytest.approx(expected)
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]
    assert run.data.metrics["test_accuracy"] == pytest.approx(summary["accuracy"])
    assert run.data.metrics["test_macro_f1"] == pytest.approx(summary["macro_f1"])
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "config.toml", "model.safetensors", "report.html"} <= artifacts


def test_a_run_that_fails_is_closed_as_failed(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = cli(["run", "-d", "csv", "-p", f"path={tmp_path / 'missing.csv'}", "--track", "mlflow"])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    client = MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name("toolkit").experiment_id])
    assert run.info.status == "FAILED" and "missing.csv" in run.data.tags["toolkit.error"]


def test_an_unknown_tracker_is_one_line(cli):
    result = cli(["run", "-d", "names", "--track", "mlflo"])
    assert result.exit_code == 2
    assert result.stderr == "Error: unknown tracker 'mlflo'. Did you mean 'mlflow'? Trackers: mlflow.\n"


def test_mlflow_s_own_info_lines_are_not_printed(tmp_path):
    """Creating its SQLite store, MLflow logs INFO lines to stderr; a tracked run's output is the
    run's own (a real process: MLflow's log handler writes to the real stderr)."""
    from conftest import run_toolkit

    data = names_csv(tmp_path, per_class=40)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "quiet"}
    done = run_toolkit(["run", "-d", "csv", "-p", f"path={data}", "-m", "ngram", "-p", "epochs=1",
                        "-p", "threads=1", "--track", "mlflow", "-o", str(tmp_path / "run")], env=env,
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mlflow" not in done.stderr.lower(), done.stderr
    assert (tmp_path / "mlflow.db").is_file()

"""`toolkit runs [DIR]`: every run in a folder as one table; folders that are not runs skipped."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import names_csv

import toolkit


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory):
    """Two small real runs (hidden sizes 8 and 16), a folder that is not a run and a copy of a
    run with its metrics missing."""
    folder = tmp_path_factory.mktemp("runs")
    data = names_csv(tmp_path_factory.mktemp("data"))
    for name, hidden in (("small", 8), ("large", 16)):
        toolkit.run("csv", "gru", params={"dataset.path": str(data), "model.hidden_size": hidden,
                                          "train.epochs": 2, "train.threads": 1},
                    output=folder / name, progress=False)
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("not a run\n")
    shutil.copytree(folder / "small", folder / "broken")
    (folder / "broken" / "metrics.json").unlink()
    return folder


def test_the_table_has_a_row_per_run_and_counts_the_rest(runs_folder):
    table = toolkit.runs_table(runs_folder)
    assert table.skipped == 2
    frame = table.frame
    assert list(frame["run"]) == ["small", "large"]  # by time
    for name in ("small", "large"):
        row = frame[frame["run"] == name].iloc[0]
        metrics = json.loads((runs_folder / name / "metrics.json").read_text())
        assert row["accuracy"] == metrics["summary"]["accuracy"]
        assert row["macro_f1"] == metrics["summary"]["macro_f1"]
        assert row["seconds"] == metrics["training"]["seconds"]
        assert row["size_bytes"] == sum(p.stat().st_size for p in (runs_folder / name).iterdir())
        assert (row["dataset"], row["model"], row["encoder"]) == ("csv", "gru", "onehot")
        assert not row["interrupted"] and not row["stopped_early"]
    assert list(frame["model.hidden_size"]) == [8, 16]
    shown = table.shown()
    assert "model.hidden_size" in shown.columns and "train.epochs" not in shown.columns  # only what differs
    assert list(shown["ended"]) == ["completed", "completed"]


def test_sort_where_and_json_on_the_command_line(cli, runs_folder):
    result = cli(["runs", str(runs_folder), "--sort", "model.hidden_size", "--descending"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["run", "time"] and "model.hidden_size" in lines[0]
    assert [line.split()[0] for line in lines[1:3]] == ["large", "small"]
    assert lines[-1] == f"Skipped 2 folder(s) in {runs_folder} that are not runs."

    result = cli(["runs", str(runs_folder), "--where", "model.hidden_size=8", "--json"])
    rows = json.loads(result.stdout)
    assert [row["run"] for row in rows] == ["small"] and rows[0]["train.epochs"] == 2

    result = cli(["runs", str(runs_folder), "--where", "model=ngram"])
    assert result.stdout.startswith(f"No runs in {runs_folder} match.")


@pytest.mark.parametrize(("args", "message"), [
    (["--sort", "acuracy"], "--sort: no column 'acuracy'. Did you mean 'accuracy'?"),
    (["--where", "hidden_size"], "--where expects KEY=VALUE (e.g. model=gru); got 'hidden_size'."),
    (["--where", "hidden_size=8"], "--where: no column 'hidden_size'. Did you mean"),
])
def test_bad_options_are_one_line(cli, runs_folder, args, message):
    result = cli(["runs", str(runs_folder), *args])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_a_missing_folder_is_one_line(cli, tmp_path):
    result = cli(["runs", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: runs folder '{tmp_path / 'nope'}' does not exist; give the folder your runs are in.\n"
    )

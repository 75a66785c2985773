"""Lifecycle hooks: plugins see a run start, each epoch end and the run end; one that raises
is named in a warning and the run still completes."""

from __future__ import annotations

import json

from conftest import names_csv

RECORDER = '''
import json
from pathlib import Path

import toolkit

LOG = Path({log!r})


def write(entry):
    with LOG.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\\n")


@toolkit.hookimpl
def run_started(plan):
    write({{"hook": "run_started", "model": plan.model.name, "epochs": plan.params["train"]["epochs"]}})


@toolkit.hookimpl
def epoch_ended(epoch):
    write({{"hook": "epoch_ended", "epoch": epoch["epoch"], "val_loss": epoch["val_loss"]}})


@toolkit.hookimpl
def run_ended(run_dir, result):
    write({{"hook": "run_ended", "run_dir": str(run_dir), "accuracy": result.test_accuracy()}})
'''

BROKEN = '''
import toolkit


@toolkit.hookimpl
def epoch_ended(plan, epoch):
    raise ValueError("the tracking server is down")
'''


def test_hooks_see_the_run_and_a_failing_one_does_not_lose_it(cli, tmp_path):
    data = names_csv(tmp_path)
    log = tmp_path / "log.jsonl"
    recorder, broken = tmp_path / "recorder.py", tmp_path / "broken_tracker.py"
    recorder.write_text(RECORDER.format(log=str(log)), encoding="utf-8")
    broken.write_text(BROKEN, encoding="utf-8")

    plugins = ["--plugin", str(recorder), "--plugin", str(broken)]
    result = cli([*plugins, "run", "-d", "csv", "-p", f"path={data}", "-m", "gru", "-p", "hidden_size=12",
                  "-p", "epochs=3", "-p", "threads=1", "-o", str(tmp_path / "run")],
                 plugins=[str(recorder), str(broken)])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "config.json").is_file()
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [  # said once, not once per epoch
        "Warning: plugin 'broken_tracker' failed in its epoch_ended hook (ValueError: the tracking "
        "server is down); the run goes on."
    ]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["hook"] for e in entries] == ["run_started", *["epoch_ended"] * 3, "run_ended"]
    assert entries[0] == {"hook": "run_started", "model": "gru", "epochs": 3}
    assert [e["epoch"] for e in entries[1:4]] == [1, 2, 3]
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    val_losses = [round(float(row.split(",")[4]), 6) for row in history[1:]]
    assert [round(e["val_loss"], 6) for e in entries[1:4]] == val_losses
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert entries[-1] == {"hook": "run_ended", "run_dir": str(tmp_path / "run"),
                           "accuracy": metrics["summary"]["accuracy"]}


def test_a_hook_with_arguments_toolkit_does_not_pass_is_refused_at_load(cli, tmp_path):
    plugin = tmp_path / "wrong.py"
    plugin.write_text("import toolkit\n\n@toolkit.hookimpl\ndef run_ended(run_folder):\n    pass\n")
    result = cli(["--plugin", str(plugin), "datasets"], plugins=[str(plugin)])
    assert result.exit_code == 2
    assert ("its hook run_ended(run_folder) takes 'run_folder', but toolkit passes only plan, run_dir, "
            "result") in result.stderr

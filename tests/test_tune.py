"""`toolkit tune`: real Optuna studies in SQLite files, on a tiny dataset from a real plugin.

The plugin logs what toolkit does with it to a JSON-lines file: every model it builds (with
the parameters it got) and every text it encodes. That is how these tests see which
parameters the trials used and that the search never read the test split.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import ctrl_c_as_in_a_terminal, run_toolkit, sigint_ignored

import toolkit
from toolkit.splits import SplitConfig
from toolkit.tuning import STUDY_NAME

PLUGIN = '''
import json
import os
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

import toolkit

LOG = os.environ["TUNE_TEST_LOG"]


def log(kind, value):
    with open(LOG, "a", encoding="utf-8") as file:
        file.write(json.dumps([kind, value]) + "\\n")


def builds():
    with open(LOG, encoding="utf-8") as file:
        return sum(1 for line in file if json.loads(line)[0] == "built")


def load():
    texts, labels = [], []
    for i in range(300):
        label = "abc"[i % 3]
        texts.append(label * (1 + i % 4) + "xyz"[(i // 3) % 3] + str(i))
        labels.append(label)
    return toolkit.TextDataset.from_pairs(texts, labels)


class LoggingChars:
    produces = toolkit.CHAR_INDICES
    vocab_size = 130

    def fit(self, texts):
        pass

    def encode(self, texts):
        log("encoded", list(texts))
        rows = [torch.tensor([min(ord(c), 127) + 2 for c in text] or [1]) for text in texts]
        lengths = torch.tensor([len(row) for row in rows])
        return pad_sequence(rows, batch_first=True, padding_value=toolkit.PAD), lengths

    def state(self):
        return {}

    def load_state(self, state):
        pass


@dataclass(frozen=True)
class TinyConfig(toolkit.Config):
    owner = "model 'tiny'"
    width: int = toolkit.param_field(8, "Embedding size.", min=1, max=64,
                                     search=toolkit.Space.choice(4, 8, 16))
    scale: float = toolkit.param_field(1.0, "Logit scale.", above=0, max=10)


class Tiny(nn.Module):
    def __init__(self, vocab_size, num_classes, **params):
        super().__init__()
        config = TinyConfig(**params)
        self.skeleton = torch.empty(0).is_meta  # toolkit sizes a model on the meta device first
        if not self.skeleton:
            log("built", params)
        count = builds() if not self.skeleton else -1
        if count == int(os.environ.get("TUNE_TEST_FAIL_AT", "0")):
            raise RuntimeError("out of memory (the test plugin's simulated failure)")
        self.slow = count >= int(os.environ.get("TUNE_TEST_SLOW_FROM", "1000000"))
        self.scale = config.scale
        self.embedding = nn.EmbeddingBag(vocab_size, config.width, mode="mean", padding_idx=toolkit.PAD)
        self.out = nn.Linear(config.width, num_classes)

    def forward(self, indices, lengths):
        if self.slow:
            time.sleep(0.3)
        return self.out(self.embedding(indices)) * self.scale


@toolkit.hookimpl
def register_datasets(register):
    register(toolkit.DatasetSpec(name="tiny-data", help="300 made-up texts in 3 classes.", load=load))


@toolkit.hookimpl
def register_encoders(register):
    register(toolkit.EncoderSpec(name="logging-chars", help="Code points; logs what it encodes.",
                                 factory=LoggingChars))


@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(name="tiny", help="Mean of embeddings, Linear.", factory=Tiny,
                               config=TinyConfig))
'''

FIXED = ["-p", "train.epochs=3", "-p", "train.threads=1", "-p", "model.scale=2.0"]


@pytest.fixture
def plugin(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "tune_plugin.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv("TUNE_TEST_LOG", str(tmp_path / "log.jsonl"))
    (tmp_path / "log.jsonl").write_text("")
    return path


def logged(tmp_path: Path, kind: str) -> list:
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    return [value for k, value in map(json.loads, lines) if k == kind]


def tune_args(plugin: Path, *args: str) -> list[str]:
    return ["--plugin", str(plugin), "tune", *args]


def load_study(path: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path}")


def test_a_study_runs_records_a_failure_resumes_and_never_reads_the_test_split(cli, plugin, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("TUNE_TEST_FAIL_AT", "2")  # the second model built fails, as if out of memory
    out = tmp_path / "tune"
    first = cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "3",
                          *FIXED, "--space", "model.width=4,16", "--space", "train.lr=0.001:0.1:log",
                          "-o", str(out), "--no-final"))
    assert first.exit_code == 0, first.output
    lines = [line for line in first.stderr.splitlines() if line.startswith("trial ")]
    assert [line.split(":")[0] for line in lines] == ["trial 0", "trial 1", "trial 2"]
    assert "trial 1: failed: RuntimeError: out of memory (the test plugin's simulated failure)" in lines[1]
    assert "val_accuracy" in lines[2] and "best " in lines[2]
    assert "toolkit --plugin" in first.stdout and "Train it with:" in first.stdout

    study = load_study(out / "study.db")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and len(states) == 3
    failed = next(t for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert "out of memory" in failed.user_attrs["error"]
    for trial in study.trials[1:]:  # --space replaced the declared spaces of these two
        assert trial.params["model.width"] in (4, 16) and 0.001 <= trial.params["train.lr"] <= 0.1
        assert "model.scale" not in trial.params and "train.epochs" not in trial.params
    built = logged(tmp_path, "built")
    assert len(built) == 3
    assert built[0]["width"] == 8  # trial 0: the default, though --space leaves it out
    assert all(b["scale"] == 2.0 and b["width"] in (4, 16) for b in built[1:])  # --param and --space

    # The second call knows the dataset, model, encoder and the fixed parameters from the file.
    monkeypatch.setenv("TUNE_TEST_FAIL_AT", "0")
    second = cli(tune_args(plugin, "--study", str(out / "study.db"), "-n", "5", "--no-final"))
    assert second.exit_code == 0, second.output
    assert "3 trials done, 2 to run" in second.stderr
    assert len(load_study(out / "study.db").trials) == 5
    built = logged(tmp_path, "built")
    assert len(built) == 5 and all(b["scale"] == 2.0 and b["width"] in (4, 16) for b in built[1:])

    # Only training and validation texts were ever encoded, never a test text.
    data = toolkit.load_dataset("tiny-data", plugins=[str(plugin)])
    # split as a run splits: the calibration part carved out of training is never trained on
    split = toolkit.split_dataset(data, seed=0, calibration_size=SplitConfig().calibration_size)
    encoded = {text for batch in logged(tmp_path, "encoded") for text in batch}
    assert set(split.val.texts) <= encoded and set(split.train.texts) <= encoded
    assert not encoded & set(split.test.texts)


def test_in_a_log_every_epoch_of_every_trial_is_a_plain_line(cli, plugin, tmp_path):
    """stderr is not a terminal here (as in a log or CI): no bar, a line per epoch instead."""
    result = cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "2",
                           *FIXED, "-o", str(tmp_path / "tune"), "--no-final"))
    assert result.exit_code == 0, result.output
    lines = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith(("epoch", "trial"))]
    assert lines == ["epoch 1/3", "epoch 2/3", "epoch 3/3", "trial 0",
                     "epoch 1/3", "epoch 2/3", "epoch 3/3", "trial 1"]


def test_the_printed_command_runs_as_written_and_the_final_run_records_its_study(cli, plugin, tmp_path):
    out = tmp_path / "tune"
    result = cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "2",
                           *FIXED, "-o", str(out)))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    command = lines[lines.index(next(line for line in lines if line.endswith("Train it with:"))) + 1].strip()
    words = shlex.split(command)
    assert words[:3] == ["toolkit", "--plugin", str(plugin)]
    assert "--param" in words and "model.scale=2.0" in words and "train.epochs=3" in words
    again = cli([*words[1:], "-o", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert "Run saved to" in again.stdout

    final = next(out.glob("run-trial-*"))
    record = json.loads((final / "tune.json").read_text())
    study = load_study(out / "study.db")
    assert record["study"] == str((out / "study.db").resolve())
    assert record["trial"] == study.best_trial.number and record["value"] == study.best_value
    assert (final / "model.safetensors").is_file() and "Final run: test accuracy" in result.stdout
    # The final run and the printed command train the same parameters.
    assert json.loads((final / "config.json").read_text())["model"] == json.loads(
        (tmp_path / "again" / "config.json").read_text())["model"]

    shown = cli(["--plugin", str(plugin), "tune", "--study", str(out / "study.db"), "--show"])
    assert shown.exit_code == 0, shown.output
    assert "number" in shown.stdout and "model.width" in shown.stdout and "COMPLETE" in shown.stdout


def test_trial_0_trains_the_real_defaults_even_outside_the_searched_space(cli, plugin, tmp_path):
    """A model's own trainer default (weight_decay 0.01) that the trainer's declared choices
    do not hold, and a model default (width 8) left out by --space: trial 0 trains both."""
    plugin.write_text(plugin.read_text().replace(
        "config=TinyConfig))", "config=TinyConfig,\n train_defaults={'weight_decay': 0.01}))"))
    out = tmp_path / "tune"
    result = cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "1",
                           *FIXED, "--space", "model.width=4,16", "-o", str(out), "--no-final"))
    assert result.exit_code == 0, result.output
    assert ("defaults outside the searched space, which trial 0 trains all the same: model.width=8, "
            "train.weight_decay=0.01") in result.stderr
    trial_line = next(line for line in result.stderr.splitlines() if line.startswith("trial 0:"))
    assert "model.width=8" in trial_line and "train.weight_decay=0.01" in trial_line
    assert [b["width"] for b in logged(tmp_path, "built")] == [8]
    study = load_study(out / "study.db")
    outside = study.trials[0].user_attrs["defaults_outside_space"]
    assert outside == {"model.width": 8, "train.weight_decay": 0.01}
    assert "model.width=8" in result.stdout and "train.weight_decay=0.01" in result.stdout  # the command
    shown = cli(["--plugin", str(plugin), "tune", "--study", str(out / "study.db"), "--show"])
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if "COMPLETE" in line)
    assert "0.01" in row and " 8 " in f" {row} "
    # a study of one trial shows no importances (Optuna would give equal shares and warn), and
    # in a real process, where Python prints warnings (pytest records them), no warning either
    printed = run_toolkit(["--plugin", str(plugin), "tune", "--study", str(out / "study.db"), "--show"])
    assert printed.returncode == 0 and "Warning" not in printed.stderr, printed.stderr
    assert "Parameter importances" not in printed.stdout


def test_tune_from_python_returns_the_study_and_the_best_run(plugin, tmp_path):
    result = toolkit.tune(
        dataset="tiny-data", model="tiny", encoder="logging-chars", trials=2,
        params={"train.epochs": 2, "train.threads": 1}, space={"model.width": toolkit.Space.choice(4, 8)},
        output=tmp_path / "tune", plugins=[str(plugin)], metric="val_macro_f1",
    )
    assert len(result.study.trials) == 2 and result.best_value is not None
    assert result.study.user_attrs["metric"] == "val_macro_f1"
    assert result.best_run is not None and result.best_run.run_dir.parent == tmp_path / "tune"
    assert result.best_params["model.width"] in (4, 8) and result.best_params["train.epochs"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "f1"],
     "unknown metric 'f1'; use one of val_accuracy, val_macro_f1, val_micro_f1, val_loss."),
    (["--space", "split.test_size=0.1:0.3"], "--space cannot search split.test_size"),
    (["--space", "train.max_length=8:16"], "--space cannot search train.max_length"),
    (["--space", "model.width=0:8"], "model 'tiny' parameter 'width' must be at least 1 and at most 64"),
    (["--space", "train.lr=0.1:0.01"], "the search range needs numbers low < high"),
    (["--space", "train.lr=0:0.1:log"], "the trainer parameter 'lr' must be above 0"),
    (["--space", "model.widht=4,8"], "Did you mean 'width'?"),
    (["-p", "model.width=4", "--space", "model.width=4,8"], "model.width is both fixed (--param) and"),
    (["-n", "0"], "--trials must be between 1 and 10,000; got 0."),
    (["--timeout", "-1"], "--timeout must be above 0"),
    (["-p", "train.epochs=0"], "the trainer parameter 'epochs' must be at least 1"),
])
def test_bad_tune_input_is_one_line_before_any_trial(cli, plugin, tmp_path, args, message):
    result = cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars",
                           "-o", str(tmp_path / "tune"), *args))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert logged(tmp_path, "built") == []


def test_a_study_refuses_to_resume_with_another_setup_and_bad_files_are_named(cli, plugin, tmp_path):
    out = tmp_path / "tune"
    assert cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "1",
                         *FIXED, "-o", str(out), "--no-final")).exit_code == 0
    study = str(out / "study.db")
    other = cli(tune_args(plugin, "--study", study, "-m", "ngram", "-n", "2"))
    assert other.exit_code == 2 and "the study was run with model 'tiny', not 'ngram'" in other.stderr
    changed = cli(tune_args(plugin, "--study", study, "-p", "train.epochs=4", "-n", "2"))
    assert changed.exit_code == 2 and "the study was run with --param model.scale=2.0" in changed.stderr
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    for args in (["--study", str(junk), "--show"], ["--study", str(junk), "-n", "2"]):
        result = cli(tune_args(plugin, *args))
        assert result.exit_code == 2 and f"cannot open the study file {junk}" in result.stderr, result.output
    missing = cli(tune_args(plugin, "--study", str(tmp_path / "none.db"), "--show"))
    assert missing.exit_code == 2 and "no study file at" in missing.stderr


def test_ctrl_c_ends_the_study_keeping_the_finished_trials(plugin, tmp_path):
    out = tmp_path / "tune"
    env = {**os.environ, "TUNE_TEST_SLOW_FROM": "2"}  # the second trial is slow enough to interrupt
    with sigint_ignored():  # as under `pytest &`: the child must still take the Ctrl-C
        process = subprocess.Popen(
            [sys.executable, "-m", "toolkit", *tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e",
                                                         "logging-chars", "-n", "5", *FIXED, "-o", str(out))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=ctrl_c_as_in_a_terminal,
        )
    deadline = time.monotonic() + 120
    while len(logged(tmp_path, "built")) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1)  # inside the second trial's training
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted: the study keeps the trials that finished" in stderr
    assert "Traceback" not in stderr
    study = load_study(out / "study.db")
    assert [t.state for t in study.trials][0] == optuna.trial.TrialState.COMPLETE
    assert len(study.trials) == 2
    assert "Train it with:" in stdout and not list(out.glob("run-trial-*"))  # no final run


def test_a_trial_left_running_by_a_killed_process_is_recorded_as_failed_on_resume(cli, plugin, tmp_path):
    out = tmp_path / "tune"
    assert cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "1",
                         *FIXED, "-o", str(out), "--no-final")).exit_code == 0
    load_study(out / "study.db").ask()  # what a process killed in the middle of a trial leaves behind
    resumed = cli(tune_args(plugin, "--study", str(out / "study.db"), "-n", "3", "--no-final"))
    assert resumed.exit_code == 0, resumed.output
    assert "trial 1 was left running by a process that stopped; recorded as failed." in resumed.stderr
    states = [t.state for t in load_study(out / "study.db").trials]
    assert states[1] == optuna.trial.TrialState.FAIL and len(states) == 3  # a failed trial counts too
    assert optuna.trial.TrialState.RUNNING not in states


def start_tune(plugin: Path, out: Path, *args: str, slow_from: int) -> subprocess.Popen:
    """A real `toolkit tune` in its own process, slow from the `slow_from`th model it builds."""
    with sigint_ignored():  # as under `pytest &`: the child must still take a Ctrl-C
        return subprocess.Popen(
            [sys.executable, "-m", "toolkit", *tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e",
                                                         "logging-chars", *FIXED, "-o", str(out), *args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TUNE_TEST_SLOW_FROM": str(slow_from)}, preexec_fn=ctrl_c_as_in_a_terminal,
        )


def wait_for_builds(tmp_path: Path, process: subprocess.Popen, count: int) -> None:
    """Until the process has built `count` models (then it is training the last one)."""
    deadline = time.monotonic() + 120
    while len(logged(tmp_path, "built")) < count and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert len(logged(tmp_path, "built")) >= count, process.communicate(timeout=60)
    time.sleep(1)  # inside that model's training


def test_a_second_tune_on_a_study_in_use_is_refused_in_one_line_and_no_trial_is_lost(plugin, tmp_path):
    out = tmp_path / "tune"
    first = start_tune(plugin, out, "-n", "3", "--no-final", slow_from=2)
    wait_for_builds(tmp_path, first, 2)  # the first is inside its second trial
    second = run_toolkit(tune_args(plugin, "--study", str(out / "study.db"), "-n", "5", "--no-final"),
                         timeout=120)
    assert second.returncode == 2, second.stderr
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    assert (f"the study {out / 'study.db'} is being tuned by another `toolkit tune` (process {first.pid}); "
            "wait for it to finish, or give another --study file.") in second.stderr
    _, stderr = first.communicate(timeout=300)  # the first goes on undisturbed
    assert first.returncode == 0 and "Traceback" not in stderr, stderr
    states = [t.state for t in load_study(out / "study.db").trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 3
    assert not (out / "study.db.lock").exists()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_tune_killed_in_its_final_run_leaves_nothing_that_blocks_the_resume(plugin, tmp_path, how):
    out = tmp_path / "tune"
    killed = start_tune(plugin, out, "-n", "2", slow_from=3)  # the third model built is the final run's
    wait_for_builds(tmp_path, killed, 3)
    killed.send_signal(how)
    _, stderr = killed.communicate(timeout=120)
    assert killed.returncode == (143 if how == signal.SIGTERM else -signal.SIGKILL), stderr
    assert "Traceback" not in stderr
    if how == signal.SIGTERM:  # it unwound: no lock, no unfinished run folder
        assert not (out / "study.db.lock").exists() and not list(out.glob("run-trial-*"))
    resumed = run_toolkit(tune_args(plugin, "--study", str(out / "study.db"), "-n", "2"), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 trials done, 0 to run" in resumed.stderr and "Final run: test accuracy" in resumed.stdout
    final = list(out.glob("run-trial-*"))
    assert len(final) == 1 and (final[0] / "tune.json").is_file() and (final[0] / "config.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted(["study.db", final[0].name])  # no lock left


def test_resuming_a_study_whose_best_trial_did_not_change_keeps_its_run(cli, plugin, tmp_path):
    out = tmp_path / "tune"
    first = cli(tune_args(plugin, "-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "2",
                          *FIXED, "-o", str(out)))
    assert first.exit_code == 0, first.output
    [final] = list(out.glob("run-trial-*"))
    weights = (final / "model.safetensors").read_bytes()
    again = cli(tune_args(plugin, "--study", str(out / "study.db"), "-n", "2"))
    assert again.exit_code == 0, again.output
    assert f"is still the best; its run in {final} is kept, not trained again" in again.stderr
    assert f"Final run: kept from before in {final}" in again.stdout
    assert list(out.glob("run-trial-*")) == [final] and (final / "model.safetensors").read_bytes() == weights


def test_ctrl_c_in_the_final_run_exits_130_and_says_the_run_is_partly_trained(plugin, tmp_path):
    out = tmp_path / "tune"
    process = start_tune(plugin, out, "-n", "2", "-p", "train.epochs=30", slow_from=3)
    wait_for_builds(tmp_path, process, 3)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "INTERRUPTED: the final run completed" in stderr and "of 30 epochs" in stderr
    assert "Final run (interrupted): test accuracy" in stdout and "Traceback" not in stderr
    # The partly trained run is not taken for the best trial's run when the study is resumed.
    resumed = run_toolkit(tune_args(plugin, "--study", str(out / "study.db"), "-n", "2"),
                          env={"TUNE_TEST_SLOW_FROM": "1000000"}, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "Final run: test accuracy" in resumed.stdout and len(list(out.glob("run-trial-*"))) == 2


@pytest.mark.parametrize("show", [True, False])
def test_a_sqlite_file_that_holds_no_study_is_refused_unchanged(plugin, tmp_path, show):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
    before, stamp = other.read_bytes(), other.stat().st_mtime_ns
    args = ["--show"] if show else ["-d", "tiny-data", "-m", "tiny", "-e", "logging-chars", "-n", "1"]
    result = run_toolkit(tune_args(plugin, "--study", str(other), *args), timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{other} holds no toolkit study" in result.stderr
    assert other.read_bytes() == before and other.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", "other.db", "tune_plugin.py"]


def test_show_escapes_control_characters_from_a_study_file(cli, plugin, tmp_path):
    path = tmp_path / "study.db"
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{path}")
    study.add_trial(optuna.trial.create_trial(
        params={"model.width\x1b[8m": 4}, value=0.5,
        distributions={"model.width\x1b[8m": optuna.distributions.IntDistribution(1, 8)},
        user_attrs={"error": "\x1b]0;owned\x07", "note\u202e": "\x9b31m"},
    ))
    shown = run_toolkit(tune_args(plugin, "--study", str(path), "--show"), timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert not any(c in shown.stdout for c in "\x1b\x07\x9b\u202e")
    assert "\\x1b]0;owned\\x07" in shown.stdout and "model.width\\x1b[8m" in shown.stdout


def test_a_failed_data_load_leaves_no_study_to_refuse_the_corrected_command(plugin, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f"{'abc'[i % 3] * (1 + i % 4)}{i},{'abc'[i % 3]}\n"
                                             for i in range(300)))
    out = tmp_path / "tune"
    command = ["-d", "csv", "-m", "tiny", "-e", "logging-chars", *FIXED, "-n", "1", "--no-final",
               "-o", str(out), "-p", f"dataset.path={data}"]
    wrong = run_toolkit(tune_args(plugin, *command, "-p", "dataset.label_column=lable"), timeout=120)
    assert wrong.returncode == 2 and "lable" in wrong.stderr, wrong.stderr
    assert not out.exists()  # no study, no lock, no folder
    right = run_toolkit(tune_args(plugin, *command, "-p", "dataset.label_column=label"), timeout=300)
    assert right.returncode == 0, right.stderr
    assert "0 trials done, 1 to run" in right.stderr and (out / "study.db").is_file()

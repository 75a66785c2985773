"""Data-parallel training with real processes: `toolkit run --nproc 2` (torchrun's launcher,
gloo on the CPU) against one process with the same effective batch, and failing ranks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ctrl_c_as_in_a_terminal, run_toolkit, sigint_ignored

from toolkit.predictor import load_run

#: Small real data: the 421 most frequent words each of English, German and French. Its
#: training part (976 texts) splits into whole batches of 16; otherwise one process would take a
#: last step on the leftover text, which two ranks cannot split, and the runs would differ by it.
# No calibration part: the 976 training texts split into whole batches of 16 (see below).
DATA = ["--dataset", "words-language", "-p", "dataset.languages=en,de,fr", "-p", "dataset.n=421",
        "-p", "encoder.alphabet=auto", "-p", "split.calibration_size=0"]
TRAIN = ["--model", "scratch-rnn", "--device", "cpu", "-p", "train.threads=1", "-p", "train.epochs=2"]
#: Every launch here must end well within this (a hang fails the test instead of the suite).
TIMEOUT = 300

FAILING_PLUGIN = '''
import os
import torch
from torch import nn
import toolkit


class FailsOnRank1(nn.Module):
    """A real model that fails on rank 1 at its fifth training step: {how}."""

    def __init__(self, vocab_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8)
        self.out = nn.Linear(8, num_classes)
        self.calls = 0

    def forward(self, indices, lengths):
        if self.training and os.environ.get("RANK") == "1":
            self.calls += 1
            if self.calls == 5:
                {action}
        return self.out(self.embedding(indices).mean(1))


@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(name="fails-on-rank-1", help="fails", factory=FailsOnRank1))
'''


def plugin_file(tmp_path, how: str, action: str):
    path = tmp_path / f"failing_{abs(hash(action))}.py"
    path.write_text(textwrap.dedent(FAILING_PLUGIN).format(how=how, action=action), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training twice: 2 ranks with batches of 8 (effective 16), 1 process with 16."""
    root = tmp_path_factory.mktemp("distributed")
    two = run_toolkit(["run", *DATA, *TRAIN, "-p", "train.batch_size=8", "--nproc", "2",
                       "--output", str(root / "two" / "run")], timeout=TIMEOUT)
    one = run_toolkit(["run", *DATA, *TRAIN, "-p", "train.batch_size=16",
                       "--output", str(root / "one" / "run")], timeout=TIMEOUT)
    assert two.returncode == 0, two.stderr
    assert one.returncode == 0, one.stderr
    return root, two, one


@pytest.mark.slow
def test_two_ranks_write_one_run_folder_that_loads_and_predicts(runs):
    root, two, _ = runs
    assert os.listdir(root / "two") == ["run"]  # rank 0 alone wrote: no second folder, no staging left
    assert two.stdout.count("Run saved to") == 1 and two.stdout.count("Trained scratch-rnn") == 1
    config = json.loads((root / "two" / "run" / "config.json").read_text(encoding="utf-8"))
    assert config["training"]["world_size"] == 2
    assert config["training"]["effective_batch_size"] == 16 and config["train"]["batch_size"] == 8
    predictor = load_run(root / "two" / "run")
    guesses = predictor.predict(["the", "und", "avec"], top=3)
    assert [g.label for g in guesses] and {guesses[0].label, guesses[1].label} <= {"en", "de", "fr"}


@pytest.mark.slow
def test_two_ranks_learn_like_one_process_with_the_same_effective_batch(runs):
    """Both take the same optimiser steps on the same texts: each step's global batch of 16 is
    one process's batch, or two slices of 8 whose gradients DistributedDataParallel averages.
    They differ only by float32 summation order (two half-batch means averaged by all-reduce
    instead of one mean), which Adam's normalised steps carry from step to step: measured
    1e-8 in loss and no text classified differently after two epochs. The bounds, 1e-3 in
    loss and one validation text in accuracy, leave room for that to grow on another machine
    and are far below what one extra or missing step moves (0.05 in validation loss, measured
    when the training part did not split into whole batches)."""
    root, _, _ = runs
    two = pd.read_csv(root / "two" / "run" / "history.csv")
    one = pd.read_csv(root / "one" / "run" / "history.csv")
    assert list(two["examples"]) == list(one["examples"]) == [976, 1952]  # all ranks' texts, once
    assert two["lr"].tolist() == pytest.approx(one["lr"].tolist())  # the same number of steps
    one_text = 1 / 105 + 1e-9  # the validation part holds 105 texts
    for column, tolerance in (("train_loss", 1e-3), ("val_loss", 1e-3), ("train_acc", 1 / 976 + 1e-9),
                              ("val_acc", one_text)):
        assert (two[column] - one[column]).abs().max() <= tolerance, (column, two[column], one[column])
    assert two["train_loss"].iloc[-1] < two["train_loss"].iloc[0]  # it learned


@pytest.mark.slow
def test_a_rank_that_raises_ends_the_job_with_one_line(tmp_path):
    plugin = plugin_file(tmp_path, "a user error", "raise toolkit.ToolkitError('rank 1 saw a bad batch')")
    started = time.monotonic()
    done = run_toolkit(["--plugin", str(plugin), "run", *DATA, *TRAIN, "--model", "fails-on-rank-1",
                        "--nproc", "2", "--output", str(tmp_path / "run")], timeout=TIMEOUT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: rank 1 of 2 failed: rank 1 saw a bad batch (the other ranks were stopped)"
    ]
    assert not (tmp_path / "run").exists()
    assert time.monotonic() - started < TIMEOUT


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_job_with_one_line(tmp_path):
    """Rank 0 is then waiting for rank 1's gradients: torchrun's agent must stop it."""
    plugin = plugin_file(tmp_path, "the process dies", "os._exit(7)")
    done = run_toolkit(["--plugin", str(plugin), "run", *DATA, *TRAIN, "--model", "fails-on-rank-1",
                        "--nproc", "2", "--output", str(tmp_path / "run")], timeout=TIMEOUT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: rank 1 of 2 exited with code 7 (the other ranks were stopped)"
    ]
    assert not (tmp_path / "run").exists()


def descendant_cpu_seconds(root: int) -> list[float]:
    """CPU seconds used so far by each process below `root`, read from /proc."""
    parents, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current]
        found += [used[pid] for pid in children]
        frontier += children
    return found


def wait_until_ranks_are_training(launcher: int, ranks: int, cpu_seconds: float = 6.0) -> None:
    """Until `ranks` processes below the launcher have each used `cpu_seconds` of CPU: past
    importing torch and loading the small dataset (about 4 s on a quiet machine), so training.
    CPU time, not wall time, so a busy machine waits longer instead of failing."""
    deadline = time.monotonic() + TIMEOUT
    while sum(seconds >= cpu_seconds for seconds in descendant_cpu_seconds(launcher)) < ranks:
        assert time.monotonic() < deadline, "the ranks never started training"
        time.sleep(0.5)


@pytest.mark.slow
def test_ctrl_c_stops_every_rank(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it."""
    args = [sys.executable, "-m", "toolkit", "run", *DATA, *TRAIN, "-p", "train.epochs=10000",
            "--nproc", "2", "--output", str(tmp_path / "run")]
    with sigint_ignored():  # as under `pytest &`: the job must still take the Ctrl-C
        launcher = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True, preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        wait_until_ranks_are_training(launcher.pid, ranks=2)
        assert launcher.poll() is None
        os.killpg(launcher.pid, signal.SIGINT)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 130
    run = tmp_path / "run"
    if (run / "config.json").is_file():  # rank 0 took the Ctrl-C too and saved what it learned
        assert json.loads((run / "config.json").read_text())["training"]["interrupted"] is True
        said = f"Interrupted: every rank was stopped; rank 0 saved the interrupted run to {run}."
    else:
        assert not run.exists()
        said = "Interrupted: every rank was stopped; no run folder was written."
    assert stderr.strip().splitlines()[-1] == said
    with pytest.raises(ProcessLookupError):  # nothing of the job is left running
        os.killpg(launcher.pid, 0)


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_rank_and_exits_143(tmp_path):
    args = [sys.executable, "-m", "toolkit", "run", *DATA, *TRAIN, "-p", "train.epochs=10000",
            "--nproc", "2", "--output", str(tmp_path / "run")]
    launcher = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        wait_until_ranks_are_training(launcher.pid, ranks=2)
        launcher.send_signal(signal.SIGTERM)  # the launcher only, as a service manager stops it
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 143, stderr
    assert "Traceback" not in stderr and not (tmp_path / "run").exists()
    with pytest.raises(ProcessLookupError):  # nothing of the job is left running
        os.killpg(launcher.pid, 0)


def test_nproc_is_bounded(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the default output, runs/..., would go here
    result = cli(["run", *DATA, *TRAIN, "--nproc", "0"])
    assert result.exit_code == 2
    assert "--nproc must be between 1 and 64; got 0." in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before any folder was made


def test_nproc_under_torchrun_is_refused(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = cli(["run", *DATA, *TRAIN, "--nproc", "2"])
    assert result.exit_code == 2
    assert "already runs under torchrun; leave out --nproc" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_torchrun_itself_runs_toolkit_run(tmp_path):
    """`torchrun --standalone --nproc-per-node 2 -m toolkit run ...`, as docs/scale.md shows."""
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "toolkit", "run", *DATA, *TRAIN, "-p", "train.epochs=1", "--output", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Run saved to") == 1  # rank 1 is quiet
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert config["training"]["world_size"] == 2 and os.listdir(tmp_path) == ["run"]


def test_world_size_without_torchrun_is_refused_in_one_line(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    result = cli(["run", *DATA, *TRAIN, "--output", str(tmp_path / "run")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot join the process group described by WORLD_SIZE=2" in lines[0]
    assert not (tmp_path / "run").exists()


def machine_memory_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as file:
        kib = next(int(line.split()[1]) for line in file if line.startswith("MemAvailable:"))
    return kib / 2**20


@pytest.mark.skipif(not Path("/proc/meminfo").is_file() or not shutil.which("taskset"),
                    reason="reads Linux's /proc/meminfo and pins CPUs with taskset")
def test_nproc_is_bounded_by_this_machine_s_cpus_and_memory(tmp_path):
    """Pinned to one CPU, the same command that two CPUs allow is refused: the limit is read
    from the machine, in one line, before any rank starts or any folder is left."""
    one_cpu = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-m", "toolkit", "run", *DATA, *TRAIN, "--nproc", "2",
         "--output", str(tmp_path / "run")], capture_output=True, text=True, timeout=TIMEOUT)
    assert one_cpu.returncode == 2 and one_cpu.stderr.count("\n") == 1, one_cpu.stderr
    assert "--nproc 2 is more than this machine runs: 1 CPU and " in one_cpu.stderr
    shown_gib = float(one_cpu.stderr.split(" and ")[1].split(" GiB")[0])
    assert abs(shown_gib - machine_memory_gib()) < 1.0  # MemAvailable, as the machine has it
    assert "allow at most 1; give --nproc 1 or fewer." in one_cpu.stderr
    assert not (tmp_path / "run").exists()
    cpus = len(os.sched_getaffinity(0))
    over = run_toolkit(["run", *DATA, *TRAIN, "--nproc", str(cpus + 1), "--output", str(tmp_path / "run")],
                       timeout=TIMEOUT)
    assert over.returncode == 2 and f"allow at most {min(cpus, 64)}" in over.stderr, over.stderr

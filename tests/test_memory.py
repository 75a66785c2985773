"""Models that cannot fit in memory: refused before any data is read, naming the estimate
(real processes, a real dataset plugin that records when it is loaded); an allocation that
fails during training all the same is one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_toolkit

from toolkit.limits import available_memory

PLUGIN = '''
import os
from pathlib import Path

import torch
from torch import nn

import toolkit


def load():
    Path(os.environ["MEMORY_TEST_LOADED"]).write_text("loaded")
    texts = [("abc"[i % 3] * (1 + i % 4)) + str(i) for i in range(120)]
    return toolkit.TextDataset.from_pairs(texts, ["abc"[i % 3] for i in range(120)])


class Hog(nn.Module):
    """Small, but its forward pass asks for 16 TiB: an allocation no estimate foresees."""

    def __init__(self, vocab_size, num_classes, **params):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, 4, mode="mean", padding_idx=toolkit.PAD)
        self.out = nn.Linear(4, num_classes)

    def forward(self, indices, lengths):
        torch.empty(2**42, dtype=torch.float32)
        return self.out(self.embedding(indices))


@toolkit.hookimpl
def register_datasets(register):
    register(toolkit.DatasetSpec(name="marked", help="Texts; records that it was loaded.", load=load))


@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(name="hog", help="Asks for 16 TiB in forward.", factory=Hog))
'''


@pytest.fixture
def plugin(tmp_path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "memory_plugin.py"
    path.write_text(PLUGIN)
    return path, {"MEMORY_TEST_LOADED": str(tmp_path / "loaded")}


def test_a_model_that_cannot_fit_is_refused_before_the_data_naming_the_estimate(plugin, tmp_path):
    path, env = plugin
    result = run_toolkit(["--plugin", str(path), "run", "-d", "marked", "-m", "gru",
                          "-p", "model.hidden_size=4096", "-p", "model.num_layers=16",
                          "-o", str(tmp_path / "run")], env=env, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    found = re.search(r"model 'gru' with these parameters needs about ([\d.]+) GiB to train: "
                      r"([\d,]+) parameters \(([\d.]+) GiB\) x4 for weights, gradients and adam's state, "
                      r"plus ([\d.]+) GiB of "
                      r"activations for batch_size 32 x max_length 256; only ([\d.]+) GiB of memory is "
                      r"available on cpu", result.stderr)
    assert found, result.stderr
    total, parameters, parameter_gib, activation_gib, free = found.groups()
    assert int(parameters.replace(",", "")) > 10**9  # sixteen 4096-wide GRU layers, both directions
    # each figure is rounded to 0.1 GiB
    assert float(total) == pytest.approx(4 * float(parameter_gib) + float(activation_gib), abs=0.05)
    assert float(free) == pytest.approx(available_memory() / 2**30, abs=1.5)  # this machine's
    assert not Path(env["MEMORY_TEST_LOADED"]).exists() and not (tmp_path / "run").exists()


def test_an_allocation_that_fails_in_training_is_one_line(plugin, tmp_path):
    path, env = plugin
    result = run_toolkit(["--plugin", str(path), "run", "-d", "marked", "-m", "hog", "-p", "train.epochs=1",
                          "-p", "train.threads=1", "-o", str(tmp_path / "run")], env=env, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert ("ran out of memory while training model 'hog' (an allocation of 16384.00 GiB failed); lower "
            "train.batch_size or train.max_length") in result.stderr
    assert Path(env["MEMORY_TEST_LOADED"]).exists() and not (tmp_path / "run").exists()


@pytest.mark.skipif(not shutil.which("prlimit"), reason="caps the address space with util-linux's prlimit")
def test_the_memory_a_model_may_take_is_read_from_the_process_s_cap(plugin, tmp_path):
    """Under `prlimit --as` (ulimit -v) of 4 GiB, a model estimated above it is refused in one
    line, not killed or a traceback, whatever the machine's own memory."""
    path, env = plugin
    result = subprocess.run(
        ["prlimit", f"--as={4 * 2**30}", sys.executable, "-m", "toolkit", "--plugin", str(path), "run",
         "-d", "marked", "-m", "gru", "-p", "model.hidden_size=2048", "-p", "model.num_layers=4",
         "-o", str(tmp_path / "run")], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    free = float(re.search(r"only ([\d.]+) GiB of memory is available on cpu", result.stderr).group(1))
    assert free < 4  # the cap less what the process already maps
    assert not Path(env["MEMORY_TEST_LOADED"]).exists()

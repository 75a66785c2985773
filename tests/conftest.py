"""Shared fixtures: the real names data from ../shared, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import make_app

REPO = Path(__file__).resolve().parents[1]
NAMES_DIR = REPO.parent / "shared" / "datasets" / "names"


@pytest.fixture(autouse=True)
def isolated_data(monkeypatch, tmp_path_factory):
    """Every test reads the names data from ../shared and caches into a fresh folder, so no
    test downloads anything or touches the user's real cache."""
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(NAMES_DIR))
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def names_dir() -> Path:
    if not NAMES_DIR.is_dir():
        pytest.fail(f"the names data is missing: expected {NAMES_DIR} (../shared beside the repo)")
    return NAMES_DIR


@pytest.fixture
def cli():
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(args: Sequence[str], plugins: Sequence[str] = (), **kwargs):
        return runner.invoke(make_app(plugins), list(args), **kwargs)

    return invoke


def labels_by_text(data) -> dict[str, set[str]]:
    """Every text of a TextDataset with the set of classes it occurs under."""
    found: dict[str, set[str]] = {}
    for text, label in zip(data.texts, data.labels(), strict=True):
        found.setdefault(text, set()).add(label)
    return found


def run_toolkit(args: Sequence[str], env: dict[str, str] | None = None, **kwargs):
    """Run the real `toolkit` console script in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        capture_output=True, text=True, env=full_env, **kwargs,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One small real run on the names data (a GRU, two epochs), shared by the tests that
    read, report on or predict with a run folder. Returns the RunResult."""
    import toolkit

    mp = pytest.MonkeyPatch()
    mp.setenv("TOOLKIT_DATA_DIR", str(NAMES_DIR))
    mp.setenv("TOOLKIT_CACHE_DIR", str(tmp_path_factory.mktemp("run-cache")))
    try:
        return toolkit.run(
            dataset="names", model="gru",
            # One thread: on a busy machine two torch threads made this run 20-60x slower.
            params={"model.hidden_size": 48, "train.epochs": 2, "train.threads": 1},
            output=tmp_path_factory.mktemp("runs") / "names-gru", progress=False,
        )
    finally:
        mp.undo()

"""Shared fixtures: the real names data (the copy bundled with the package), a CLI runner,
and an environment in which no test writes to the user's cache or home."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from toolkit.cli import make_app
from toolkit.datasets.names import bundled_folder

REPO = Path(__file__).resolve().parents[1]
NAMES_DIR = bundled_folder()
#: A second, independent copy of the names data (../shared beside the repo), used only by the
#: tests that compare the bundled copy with it; they are skipped where it is absent.
SHARED_NAMES_DIR = REPO.parent / "shared" / "datasets" / "names"


SCRATCH = pytest.StashKey[Path]()


def pytest_configure(config):
    """Caches that libraries write on import (matplotlib's font list) go to a throwaway folder,
    for this process and every subprocess a test starts, never to the user's home."""
    scratch = Path(tempfile.mkdtemp(prefix="toolkit-tests-"))
    config.stash[SCRATCH] = scratch
    os.environ["MPLCONFIGDIR"] = str(scratch / "matplotlib")
    os.environ["XDG_CACHE_HOME"] = str(scratch / "xdg-cache")
    os.environ["PIP_NO_CACHE_DIR"] = "1"
    os.environ.pop("TOOLKIT_DATA_DIR", None)
    os.environ["TOOLKIT_CACHE_DIR"] = str(scratch / "toolkit-cache")


def pytest_unconfigure(config):
    if SCRATCH in config.stash:
        shutil.rmtree(config.stash[SCRATCH], ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_data(monkeypatch, tmp_path_factory):
    """Every test starts with no TOOLKIT_DATA_DIR (so the names data is the bundled copy) and
    an empty cache folder of its own, so no test downloads anything or touches the user's
    real cache."""
    monkeypatch.delenv("TOOLKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Torch work done inside the test process uses one thread, as toolkit's training and
    prediction do by default. Torch's own default (a thread per core) made forward passes in
    this process collapse whenever another process held a core: test_models.py's padding
    checks took 5-12 s each in a full run at load 3.5, 0.06 s with one thread. Set only once
    something imported torch, so tests that never use it do not pay for the import."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def names_dir() -> Path:
    """The bundled names data: 18 `<Language>.txt` files."""
    return NAMES_DIR


@pytest.fixture(scope="session")
def shared_names_dir() -> Path:
    """The independent copy of the names data in ../shared, with its SHA256SUMS."""
    if not (SHARED_NAMES_DIR / "SHA256SUMS").is_file():
        pytest.skip(f"no independent copy of the names data at {SHARED_NAMES_DIR} (../shared)")
    return SHARED_NAMES_DIR


@pytest.fixture
def cli():
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(args: Sequence[str], plugins: Sequence[str] = (), **kwargs):
        return runner.invoke(make_app(plugins), list(args), **kwargs)

    return invoke


def names_csv(folder, languages=("Greek", "Polish", "Scottish"), per_class=100):
    """A small real CSV: the first names of a few languages from the bundled names data."""
    rows = ["text,label"]
    for language in languages:
        lines = (NAMES_DIR / f"{language}.txt").read_text(encoding="utf-8").split("\n")
        rows += [f"{name.strip()},{language}" for name in lines[:per_class] if name.strip()]
    path = folder / "names.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def names_folder(folder: Path, per_language: int,
                 languages=("Japanese", "Greek", "Polish", "Italian")) -> Path:
    """A small real `folder` dataset: the first distinct names (sorted) of a few languages."""
    for language in languages:
        lines = (NAMES_DIR / f"{language}.txt").read_text(encoding="utf-8").split("\n")
        kept = sorted({n for n in lines if n})[:per_language]
        (folder / f"{language}.txt").write_text("\n".join(kept), encoding="utf-8")
    return folder


def same_weights(first, second) -> bool:
    """Two run folders hold the same weights, tensor by tensor."""
    from safetensors.torch import load_file

    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    return set(a) == set(b) and all((a[k] == b[k]).all() for k in a)


def labels_by_text(data) -> dict[str, set[str]]:
    """Every text of a TextDataset with the set of classes it occurs under."""
    found: dict[str, set[str]] = {}
    for text, label in zip(data.texts, data.labels(), strict=True):
        found.setdefault(text, set()).add(label)
    return found


def run_toolkit(
    args: Sequence[str], env: dict[str, str] | None = None, python: str | Path = sys.executable, **kwargs
):
    """Run the real `toolkit` command in a subprocess (of `python`, by default this one)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(python), "-m", "toolkit", *args],
        capture_output=True, text=True, env=full_env, **kwargs,
    )


def ctrl_c_as_in_a_terminal() -> None:
    """`preexec_fn` for a child a test sends SIGINT to, as a terminal's Ctrl-C would: the
    default disposition, so its Python turns SIGINT into KeyboardInterrupt. A shell starts a
    background job (`pytest ... &`, nohup) with SIGINT ignored, every child inherits that,
    and Python then leaves it ignored, so the child would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process, as in a background job, for the children started
    inside: a test of Ctrl-C then passes in the background, or fails, wherever it runs."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class ThrowawayEnv:
    """A virtual environment in a temporary folder that sees every package of the environment
    running the tests (torch, toolkit itself) but installs into its own folder only: `pip
    install` there never changes the running environment, even when the test is killed."""

    root: Path
    python: Path

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.python), "-m", "pip", "--disable-pip-version-check", *args],
            capture_output=True, text=True,
        )

    def is_installed(self, distribution: str) -> bool:
        check = f"import importlib.metadata as m; m.distribution({distribution!r})"
        return subprocess.run([str(self.python), "-c", check], capture_output=True).returncode == 0


def running_environment_packages() -> str:
    """`pip list` of the environment running the tests, to check that nothing changed it."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    )
    return listed.stdout


@pytest.fixture(scope="session")
def throwaway_env(tmp_path_factory) -> ThrowawayEnv:
    """One throwaway environment per test run for the tests that `pip install` plugins."""
    root = tmp_path_factory.mktemp("throwaway-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    # addsitedir (not a bare path) so the .pth files there run too, e.g. toolkit's editable install.
    parents = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    lines = [f"import site; site.addsitedir({parent!r})" for parent in parents]
    Path(site_packages, "_running_environment.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ThrowawayEnv(root, python)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One small real run on the names data (a GRU, two epochs), shared by the tests that
    read, report on or predict with a run folder. Returns the RunResult."""
    import torch

    import toolkit

    torch.set_num_threads(1)  # as one_torch_thread does, which runs after session fixtures
    mp = pytest.MonkeyPatch()
    mp.setenv("TOOLKIT_CACHE_DIR", str(tmp_path_factory.mktemp("run-cache")))
    try:
        return toolkit.run(
            dataset="names", model="gru",
            # One thread: on a busy machine two torch threads made this run 20-60x slower.
            # A calibration part, so the conformal tests see sets scored on held-out texts.
            params={"model.hidden_size": 48, "train.epochs": 2, "train.threads": 1,
                    "split.calibration_size": 0.1},
            output=tmp_path_factory.mktemp("runs") / "names-gru", progress=False,
        )
    finally:
        mp.undo()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port of 127.0.0.1; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

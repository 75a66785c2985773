"""Plugins as users get them: the example distribution and a generated skeleton, each built
and installed by pip (no network, no build isolation) into a throwaway environment, found
through the `toolkit` entry point by a fresh `toolkit` process there, trained with `toolkit
run`, tested with their own tests, then uninstalled and gone. The environment running the
tests is never changed (its `pip list` is compared before and after)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
from conftest import REPO, ThrowawayEnv, run_toolkit, running_environment_packages

EXAMPLE = REPO / "examples" / "toolkit-charcnn"


@contextmanager
def installed(env: ThrowawayEnv, source: Path, distribution: str) -> Iterator[None]:
    """`pip install` the project at `source` into `env` for the duration of the block."""
    before = running_environment_packages()
    assert not env.is_installed(distribution), f"{distribution} is already in the throwaway environment"
    result = env.pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(source))
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield
    finally:
        removed = env.pip("uninstall", "--yes", distribution)
        assert removed.returncode == 0, removed.stderr
    assert not env.is_installed(distribution)
    assert running_environment_packages() == before


def run_plugin_tests(env: ThrowawayEnv, project: Path) -> None:
    result = subprocess.run(
        [str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)


def run_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["summary"]["accuracy"]


def majority_share(run_dir: Path) -> float:
    per_class = json.loads((run_dir / "metrics.json").read_text())["per_class"]
    supports = [row["support"] for row in per_class.values()]
    return max(supports) / sum(supports)


@pytest.mark.slow
def test_example_plugin_installed_listed_trained_and_uninstalled(tmp_path, throwaway_env):
    env = throwaway_env
    toolkit = partial(run_toolkit, python=env.python)
    project = tmp_path / "toolkit-charcnn"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    run_dir = tmp_path / "run"

    with installed(env, project, "toolkit-charcnn"):
        plugins = toolkit(["plugins"])
        assert plugins.returncode == 0, plugins.stderr
        assert "charcnn (entry point, toolkit-charcnn 0.1.0)" in plugins.stdout
        assert "provides: dataset python-names, model charcnn" in plugins.stdout
        assert "FAILED" not in plugins.stdout and "Warning" not in plugins.stderr
        assert "importing torch" not in plugins.stdout  # its model module loads only when built

        models = toolkit(["models"])
        assert "charcnn: A character CNN" in models.stdout
        assert "widths (str, default '2,3,4,5')" in models.stdout
        assert "python-names:" in toolkit(["datasets"]).stdout

        trained = toolkit([
            "run", "--dataset", "python-names", "--model", "charcnn", "--param", "train.epochs=3",
            "--param", "model.channels=64", "--param", "train.threads=1", "--output", str(run_dir),
        ])
        assert trained.returncode == 0, trained.stderr
        config = json.loads((run_dir / "config.json").read_text())
        assert config["model"]["distribution"] == "toolkit-charcnn"
        assert config["dataset"]["plugin"] == "charcnn"
        assert run_accuracy(run_dir) > majority_share(run_dir) + 0.2

        predicted = toolkit(["predict", "--run", str(run_dir), "--top", "1", "SEEK_SET"])
        assert predicted.returncode == 0, predicted.stderr
        assert "constant" in predicted.stdout

        run_plugin_tests(env, project)

    plugins = toolkit(["plugins"])
    assert "charcnn" not in plugins.stdout + plugins.stderr
    gone = toolkit(["run", "--dataset", "names", "--model", "charcnn"])
    assert gone.returncode == 2
    assert "unknown model 'charcnn'" in gone.stderr
    assert "Traceback" not in gone.stderr
    # The run folder stays readable, and says what to install to use it again.
    orphan = toolkit(["predict", "--run", str(run_dir), "SEEK_SET"])
    assert orphan.returncode == 2
    assert "charcnn" in orphan.stderr and "Traceback" not in orphan.stderr


@pytest.mark.slow
def test_skeleton_is_generated_installed_and_run(tmp_path, throwaway_env):
    env = throwaway_env
    toolkit = partial(run_toolkit, python=env.python)
    created = toolkit(["plugins", "new", "tiny-bag", "--directory", str(tmp_path)])
    assert created.returncode == 0, created.stderr
    project = tmp_path / "toolkit-tiny-bag"
    assert f"Created {project}" in created.stdout
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == [
        "README.md", "pyproject.toml", "tests/test_plugin.py",
        "toolkit_tiny_bag/__init__.py", "toolkit_tiny_bag/config.py", "toolkit_tiny_bag/data.py",
        "toolkit_tiny_bag/model.py",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["toolkit-tiny-bag"]  # no staging left behind
    # Linted as its own project, where toolkit is a third-party import.
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--line-length", "110",
         "--select", "E,F,W,I,UP,B,SIM", "."], cwd=project, capture_output=True, text=True,
    )
    assert lint.returncode == 0, lint.stdout
    # A data file of any extension in the package's data/ folder ships with a regular install.
    (project / "toolkit_tiny_bag" / "data").mkdir()
    (project / "toolkit_tiny_bag" / "data" / "words.tsv").write_text("word\tstyle\n", encoding="utf-8")

    with installed(env, project, "toolkit-tiny-bag"):
        listed = toolkit(["plugins"]).stdout
        assert "tiny-bag (entry point, toolkit-tiny-bag 0.1.0)\n  imported in " in listed
        assert "importing torch" not in listed
        shipped = subprocess.run(
            [str(env.python), "-c", "import pathlib, toolkit_tiny_bag as p; "
             "f = pathlib.Path(p.__file__).with_name('data') / 'words.tsv'; print(f); print(f.read_text())"],
            cwd=tmp_path, capture_output=True, text=True,
        )
        where, text = shipped.stdout.split("\n", 1)
        assert text == "word\tstyle\n\n", shipped.stderr
        assert not Path(where).is_relative_to(project)  # the installed copy, not the source folder
        trained = toolkit([
            "run", "--dataset", "tiny-bag-demo", "--model", "tiny-bag", "--param", "train.epochs=3",
            "--param", "train.threads=1", "--output", str(tmp_path / "run"),
        ])
        assert trained.returncode == 0, trained.stderr
        assert run_accuracy(tmp_path / "run") > 0.8  # three balanced classes
        run_plugin_tests(env, project)

    assert "tiny-bag" not in toolkit(["models"]).stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Bad_Name", "must be lower-case letters and digits"),
        ("2fast", "must be lower-case letters and digits"),
        ("gru", "a model named 'gru' is already registered by plugin 'toolkit.plugins.torch_rnn'"),
        ("names", None),  # its dataset would be names-demo, which is free
    ],
)
def test_skeleton_names_are_checked(cli, tmp_path, name, message):
    result = cli(["plugins", "new", name, "--directory", str(tmp_path)])
    if message is None:
        assert result.exit_code == 0, result.output
        assert (tmp_path / "toolkit-names" / "toolkit_names" / "model.py").is_file()
    else:
        assert result.exit_code == 2
        assert message in result.stderr
        assert list(tmp_path.iterdir()) == []


def test_skeleton_never_overwrites(cli, tmp_path):
    (tmp_path / "toolkit-mine").mkdir()
    (tmp_path / "toolkit-mine" / "keep.txt").write_text("mine")
    result = cli(["plugins", "new", "mine", "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert [p.name for p in (tmp_path / "toolkit-mine").iterdir()] == ["keep.txt"]
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    refused = cli(["plugins", "new", "mine", "--directory", str(not_a_folder)])
    assert refused.exit_code == 2 and f"'{not_a_folder}' is not a folder" in refused.stderr


def test_skeleton_creates_a_folder_that_is_not_there_yet(cli, tmp_path):
    result = cli(["plugins", "new", "mine", "-d", str(tmp_path / "new" / "folder")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "folder" / "toolkit-mine" / "toolkit_mine" / "__init__.py").is_file()


def test_skeleton_refuses_a_name_a_loaded_plugin_file_registers(cli, tmp_path):
    plugin = tmp_path / "mine.py"
    plugin.write_text(
        "import toolkit\n\n@toolkit.hookimpl\ndef register_models(register):\n"
        "    register(toolkit.ModelSpec(name='mine', help='h',\n"
        "                               factory=lambda vocab_size, num_classes: None))\n",
        encoding="utf-8",
    )
    target = tmp_path / "out"
    target.mkdir()
    result = cli(["--plugin", str(plugin), "plugins", "new", "mine", "--directory", str(target)])
    assert result.exit_code == 2
    assert "a model named 'mine' is already registered by plugin 'mine'" in result.stderr
    assert list(target.iterdir()) == []

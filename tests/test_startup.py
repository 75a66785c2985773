"""The command line starts without torch, pandas or matplotlib.

Listing commands and every refused parameter answer from the plugins' registrations alone;
the heavy libraries load only when data is read or a model is built. `python -X importtime`
lists every module a command imported, so the guard sees imports however deep they happen.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

from toolkit.scaffold import new_plugin

HEAVY = {"torch", "pandas", "matplotlib", "onnx", "onnxruntime", "numba"}

TRIPWIRE_DATASET = '''
from pathlib import Path

import toolkit


def load():
    Path(__file__).with_name("loaded").touch()
    raise toolkit.ToolkitError("the tripwire dataset was loaded")


@toolkit.hookimpl
def register_datasets(register):
    register(toolkit.DatasetSpec(name="tripwire", help="Fails when loaded.", load=load))
'''


def importtime(*args: str, path: Path | None = None) -> subprocess.CompletedProcess:
    """`python -X importtime ARGS` in a fresh process of this interpreter (`path` first on
    its module search path)."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-X", "importtime", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def heavy_imports(stderr: str) -> set[str]:
    """The heavy top-level packages among the modules `-X importtime` reported."""
    modules = {
        line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")
    }
    assert "toolkit" in modules, "no import times reported; did -X importtime change its format?"
    return {module.split(".")[0] for module in modules} & HEAVY


@pytest.mark.parametrize(
    "args",
    [["--version"], ["--help"], ["plugins"], ["models"], ["encoders"], ["datasets"], ["run", "--help"],
     ["export", "--help"]],
    ids=" ".join,
)
def test_listing_commands_import_no_heavy_library(args):
    result = importtime("-m", "toolkit", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert heavy_imports(result.stderr) == set()


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("train.epochz=1", "the trainer has no parameter 'epochz'"),
        ("model.hidden_size=abc", "parameter 'hidden_size' expects an integer"),
        ("model.nonlinearity=relu", "parameter 'nonlinearity' must be one of"),
    ],
)
def test_a_bad_parameter_is_refused_before_data_loads_and_without_heavy_imports(tmp_path, param, message):
    plugin = tmp_path / "tripwire.py"
    plugin.write_text(textwrap.dedent(TRIPWIRE_DATASET), encoding="utf-8")
    result = importtime(
        "-m", "toolkit", "--plugin", str(plugin), "run", "--dataset", "tripwire", "--param", param,
        "--output", str(tmp_path / "run"),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "loaded").exists(), "the dataset was loaded before the parameter was checked"
    assert not (tmp_path / "run").exists()
    assert heavy_imports(result.stderr) == set()


def test_the_guard_sees_a_heavy_import():
    """The same check on code that imports a model reports torch: the guard can fail."""
    result = importtime("-c", "import toolkit.plugins.scratch_model")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "torch" in heavy_imports(result.stderr)



def skeleton(folder: Path) -> tuple[Path, str]:
    return new_plugin("quick-start", folder), "toolkit_quick_start"


def example(folder: Path) -> tuple[Path, str]:
    return REPO / "examples" / "toolkit-charcnn", "toolkit_charcnn"


@pytest.mark.parametrize("plugin", [skeleton, example], ids=["plugins new", "examples/toolkit-charcnn"])
@pytest.mark.parametrize("args", [["--version"], ["plugins"], ["models"]], ids=" ".join)
def test_the_plugin_kit_s_plugins_load_without_torch(tmp_path, plugin, args):
    """The skeleton `toolkit plugins new` writes and the example distribution register their
    model as the built-ins do, so installing one keeps every command free of torch."""
    project, module = plugin(tmp_path)
    result = importtime("-m", "toolkit", "--plugin", module, *args, path=project)
    assert result.returncode == 0, result.stderr[-2000:]
    assert heavy_imports(result.stderr) == set()
    if args == ["plugins"]:
        assert re.search(rf"{module} \(--plugin\)\n  imported in \d+ ms\n  provides: ", result.stdout)


def test_toolkit_plugins_names_a_plugin_that_imports_torch(tmp_path):
    (tmp_path / "eager.py").write_text("import torch\nimport toolkit\n")
    result = importtime("-m", "toolkit", "--plugin", str(tmp_path / "eager.py"), "plugins")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    line = lines[lines.index("eager (--plugin)") + 2]
    assert re.fullmatch(
        r"  imported in [\d.]+ m?s, importing torch: every command pays for it; import it only where "
        r"a model is built \(docs/writing-plugins.md, \"Start-up\"\)", line)
    assert "importing" not in " ".join(lines[:lines.index("eager (--plugin)")])  # no built-in imports it


@pytest.mark.parametrize(
    "command", [["predict", "Hinton"], ["predict", "Hinton", "--runtime", "onnx"], ["interactive"],
                ["serve", "--port", "0"], ["export"], ["export", "--quantize", "int8"]], ids=" ".join
)
def test_a_missing_or_incomplete_run_folder_is_refused_before_any_heavy_import(tmp_path, command):
    for folder, message in ((tmp_path / "nope", "does not exist; give a folder made by `toolkit run`."),
                            (tmp_path, "is not a complete toolkit run folder (missing config.json")):
        result = importtime("-m", "toolkit", command[0], "--run", str(folder), *command[1:])
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
        assert len(errors) == 1 and errors[0].startswith("Error: ") and message in errors[0], errors
        assert heavy_imports(result.stderr) == set()


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "{tmp}/missing.txt"], "input file '{tmp}/missing.txt' does not exist."),
    (["--input", "{tmp}/people.csv"], "'{tmp}/people.csv' looks like a CSV file; name the text column with "
     "--column (its first line: id,surname)."),
    (["--input", "{tmp}"],
     "--input '{tmp}' is a folder; give a file with a text a line (or a CSV with --column)."),
    (["--input", "{tmp}/latin.csv", "--column", "surname"], "input file '{tmp}/latin.csv' is not UTF-8"),
    (["--input", "{tmp}/people.parquet", "--column", "surname"], "'{tmp}/people.parquet' is a Parquet file, "
     "which the batch engine reads: give --output a folder (a trailing slash, e.g. --output preds/)"),
    (["--run", "{tmp}/people.csv", "Hinton"],
     "'{tmp}/people.csv' is a file, not a run folder; give a folder made by `toolkit run`."),
])
def test_a_bad_input_file_is_refused_before_the_model_loads(trained_run, tmp_path, args, message):
    (tmp_path / "people.csv").write_text("id,surname\n1,Hinton\n", encoding="utf-8")
    (tmp_path / "latin.csv").write_bytes("id,surname\n1,Müller\n".encode("latin-1"))  # decoded at the header
    (tmp_path / "people.parquet").write_bytes(b"PAR1")
    args = [a.format(tmp=tmp_path) for a in args]
    result = importtime("-m", "toolkit", "predict", "--run", str(trained_run.run_dir), *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message.format(tmp=tmp_path) in result.stderr
    assert heavy_imports(result.stderr) == set()

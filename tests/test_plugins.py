"""Plugin discovery, registration errors and the listing commands."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import run_toolkit

from toolkit.errors import ToolkitError
from toolkit.registry import Registry

TINY_MODEL = '''
import toolkit

@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(
        name="{name}",
        help="A tiny test model.",
        factory=lambda vocab_size, num_classes, width: None,
        params=(toolkit.Param("width", int, 8, "Width of the tiny model."),),
    ))
'''

COMMAND_PLUGIN = '''
import toolkit
import typer

@toolkit.hookimpl
def register_commands(cli):
    @cli.command()
    def hello(name: str):
        """Say hello."""
        typer.echo(f"hello {name}")
'''


def write_plugin(folder: Path, filename: str, source: str) -> Path:
    path = folder / filename
    path.write_text(textwrap.dedent(source))
    return path


def test_builtin_plugins_are_ordinary_plugins(cli):
    result = cli(["plugins"])
    assert result.exit_code == 0, result.output
    assert "toolkit.plugins.onehot (built-in, toolkit" in result.stdout
    assert "provides: encoder onehot" in result.stdout


def test_plugin_file_registers_a_model(cli, tmp_path):
    path = write_plugin(tmp_path, "tiny_one.py", TINY_MODEL.format(name="tiny-one"))
    result = cli(["--plugin", str(path), "models"])
    assert result.exit_code == 0, result.output
    assert "tiny-one: A tiny test model." in result.stdout
    assert "width (int, default 8): Width of the tiny model." in result.stdout
    listing = cli(["--plugin", str(path), "plugins"])
    assert "tiny_one (--plugin)" in listing.stdout
    assert "provides: model tiny-one" in listing.stdout


def test_plugin_module_name_from_environment(cli, tmp_path, monkeypatch):
    write_plugin(tmp_path, "env_plugin_mod.py", TINY_MODEL.format(name="from-env"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TOOLKIT_PLUGINS", " env_plugin_mod , ")
    result = cli(["models"])
    assert result.exit_code == 0, result.output
    assert "from-env: A tiny test model." in result.stdout
    assert "env_plugin_mod (TOOLKIT_PLUGINS)" in cli(["plugins"]).stdout


def test_entry_point_discovery_in_a_real_interpreter(tmp_path):
    """A distribution's metadata with a `toolkit` entry point is found by a fresh process."""
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site, "ep_tiny.py", TINY_MODEL.format(name="ep-tiny"))
    dist = site / "ep_tiny_dist-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-tiny-dist\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[toolkit]\nep_tiny = ep_tiny\n")
    env = {"PYTHONPATH": str(site)}
    plugins = run_toolkit(["plugins"], env=env)
    assert plugins.returncode == 0, plugins.stderr
    assert "ep_tiny (entry point, ep-tiny-dist 1.2.3)" in plugins.stdout
    assert "provides: model ep-tiny" in plugins.stdout
    assert "ep-tiny: A tiny test model." in run_toolkit(["models"], env=env).stdout


def test_plugin_can_add_a_command(tmp_path):
    path = write_plugin(tmp_path, "greeter.py", COMMAND_PLUGIN)
    result = run_toolkit(["--plugin", str(path), "hello", "world"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello world"


def test_duplicate_names_are_an_error_naming_both(cli, tmp_path):
    first = write_plugin(tmp_path, "first.py", TINY_MODEL.format(name="twin"))
    second = write_plugin(tmp_path, "second.py", TINY_MODEL.format(name="twin"))
    with pytest.raises(ToolkitError, match="model 'twin' is registered by two plugins: 'first' and 'second'"):
        Registry([str(first), str(second)], env_plugins="")
    result = run_toolkit(["--plugin", str(first), "--plugin", str(second), "models"])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: model 'twin' is registered by two plugins: 'first' and 'second'. "
        "Uninstall or rename one of them."
    )
    assert "Traceback" not in result.stderr


def test_broken_requested_plugin_is_an_error_naming_it(tmp_path):
    """A plugin asked for with --plugin must load (issue 14); tests/test_plugin_contract.py has
    every way to break one, and the installed plugin that only warns."""
    broken = write_plugin(tmp_path, "broken.py", "import no_such_module_xyz\n")
    good = write_plugin(tmp_path, "good.py", TINY_MODEL.format(name="still-here"))
    result = run_toolkit(["--plugin", str(broken), "--plugin", str(good), "models"])
    assert result.returncode == 2
    assert "Error: plugin 'broken' (--plugin " in result.stderr
    assert "failed to load: ModuleNotFoundError: No module named 'no_such_module_xyz'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_plugin_file_is_a_user_error(cli, tmp_path):
    result = cli(["--plugin", str(tmp_path / "nope.py"), "models"])
    assert result.exit_code == 2
    assert "plugin file" in result.stderr and "does not exist" in result.stderr


def test_listing_encoders_shows_parameters_and_output(cli):
    result = cli(["encoders"])
    assert result.exit_code == 0
    assert "onehot: " in result.stdout
    assert "produces: char-indices" in result.stdout
    assert "alphabet (str, default" in result.stdout


def test_version_and_help(cli):
    assert cli(["--version"]).stdout.strip().startswith("toolkit 0.")
    help_text = cli(["--help"]).stdout
    for command in ("run", "plugins", "datasets", "models", "encoders"):
        assert command in help_text


def test_python_api_lists_what_the_cli_lists(tmp_path):
    import toolkit

    path = write_plugin(tmp_path, "py_api.py", TINY_MODEL.format(name="py-api"))
    models = toolkit.list_models([str(path)])
    assert models["py-api"].params[0].name == "width"
    assert "onehot" in toolkit.list_encoders()
    names = [info.name for info in toolkit.list_plugins([str(path)])]
    assert "py_api" in names and "toolkit.plugins.onehot" in names


def test_params_lists_split_and_train_and_a_part_s_own(cli):
    listing = cli(["params"]).stdout
    assert "split.* (how the data is split):" in listing and "train.* (the trainer):" in listing
    assert "    epochs (int, default 8; at least 1 and at most 10,000):" in listing
    assert "model.*" not in listing
    with_model = cli(["params", "--model", "gru"]).stdout
    assert with_model.startswith("model.* (model 'gru'):\n    embedding_dim (int, default 64; at least 1")
    with_ngram = cli(["params", "--model", "ngram"]).stdout  # the model's own trainer defaults and spaces
    assert "    lr (float, default 0.1; above 0; tune searches 0.03:1.0:log):" in with_ngram
    assert cli(["params", "--model", "gruu"]).exit_code == 2

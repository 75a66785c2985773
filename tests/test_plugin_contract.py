"""Issue 14: the plugin contract, strict. Each failure a plugin author can make is refused
with one line naming the plugin (exit code 2 on the command line, a ToolkitError in Python),
and the checkers of `toolkit.testing` catch what training cannot see."""

from __future__ import annotations

import json
import textwrap
import traceback
from pathlib import Path

import pytest
import torch
from conftest import run_toolkit

import toolkit
from toolkit import registry as registry_module
from toolkit.registry import Registry, load_registry
from toolkit.testing import ContractError, check_encoder, check_model

HEADER = "import toolkit\nimport torch\nfrom torch import nn\n"

GOOD_MODEL = '''
class Mean(nn.Module):
    def __init__(self, vocab_size, num_classes, width=8):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=0)
        self.out = nn.Linear(width, num_classes)

    def forward(self, indices, lengths):
        return self.out(self.embedding(indices).sum(1) / lengths.unsqueeze(1))

@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(name="{name}", help="Mean of embeddings.", factory=Mean,
                               params=(toolkit.Param("width", int, 8, "Embedding size."),)))
'''

COMMAND = '''
import toolkit

@toolkit.hookimpl
def register_commands(cli):
    @cli.command("{name}")
    def command():
        """A plugin command."""
        print("plugin command ran")
'''

#: A tiny two-class dataset in a plugin, so runs that reach training take a second.
TINY_DATASET = '''
@toolkit.hookimpl
def register_datasets(register):
    def load():
        texts = [a + b for a in "abcdefgh" for b in "xyz"] + [a + b for a in "ABCDEFGH" for b in "XYZ"]
        return toolkit.TextDataset.from_pairs(texts, ["lower"] * 24 + ["upper"] * 24, {{"source": "test"}})
    register(toolkit.DatasetSpec(name="{name}", help="Tiny test data.", load=load))
'''

#: An encoder with nothing to fit or save, whose `encode` is the test's.
STATELESS_ENCODER = '''
class Stateless:
    produces = toolkit.CHAR_INDICES
    vocab_size = {vocab_size}
    def fit(self, texts): pass
    def encode(self, texts): {encode}
    def state(self): return {{}}
    def load_state(self, state): pass

@toolkit.hookimpl
def register_encoders(register):
    register(toolkit.EncoderSpec(name="{encoder}", help="A test encoder.", factory=Stateless))
'''

QUICK = {"train.epochs": 1, "train.threads": 1}


def plugin(folder: Path, filename: str, *parts: str, **names: str) -> Path:
    path = folder / filename
    path.write_text(HEADER + "".join(textwrap.dedent(p).format(**names) for p in parts))
    return path


def one_error_line(result) -> str:
    """The CLI's stderr for a user error: exactly one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture(autouse=True)
def fresh_registries(monkeypatch):
    """Registries are cached by arguments and environment; these tests change sys.path too."""
    monkeypatch.setattr(registry_module, "_CACHE", {})
    monkeypatch.delenv("TOOLKIT_PLUGINS", raising=False)
    monkeypatch.delenv("TOOLKIT_DISABLE", raising=False)
    monkeypatch.delenv("TOOLKIT_DEBUG", raising=False)


def installed(monkeypatch, site: Path, module: str, source: str, entry_name: str | None = None) -> None:
    """Install `module` as a distribution with a `toolkit` entry point, in this process."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(source)
    dist = site / f"{module}_dist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-dist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[toolkit]\n{entry_name or module} = {module}\n")
    monkeypatch.syspath_prepend(str(site))


# -- 1. commands clash ---------------------------------------------------------------------


def test_1_a_plugin_command_cannot_replace_a_built_in(cli, tmp_path):
    path = plugin(tmp_path, "shadow.py", COMMAND, name="predict")
    error = one_error_line(cli(["--plugin", str(path), "models"], plugins=[str(path)]))
    assert error == (
        "Error: command 'predict' of plugin 'shadow' clashes with the command 'predict' of "
        "toolkit (built-in); rename the plugin's command."
    )
    with pytest.raises(toolkit.ToolkitError, match="command 'predict' of plugin 'shadow' clashes"):
        from toolkit.cli import new_typer

        app = new_typer()
        app.command("predict")(lambda: None)
        Registry([str(path)], "", "").add_commands(app)


def test_1_two_plugin_commands_of_one_name_are_refused_naming_both(tmp_path):
    first = plugin(tmp_path, "first_cmd.py", COMMAND, name="hello")
    second = plugin(tmp_path, "second_cmd.py", COMMAND, name="hello")
    result = run_toolkit(["--plugin", str(first), "--plugin", str(second), "hello"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "Error: command 'hello' of plugin 'second_cmd' clashes with the command 'hello' of "
        "plugin 'first_cmd'; rename the plugin's command."
    )
    alone = run_toolkit(["--plugin", str(first), "hello"])
    assert alone.returncode == 0 and alone.stdout.strip() == "plugin command ran"


# -- 2. a plugin asked for by name that fails to load is an error ------------------------------

BROKEN = {
    "syntax": ("def broken(:\n", "SyntaxError: "),
    "import": ("import no_such_module_xyz\n", "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    "typo_hook": (
        "@toolkit.hookimpl\ndef register_model(register):\n    pass\n",
        "it defines the hook register_model(), which toolkit does not have. "
        "Did you mean 'register_models'?",
    ),
    "renamed_argument": (
        "@toolkit.hookimpl\ndef register_models(reg):\n    pass\n",
        "its hook register_models(reg) takes 'reg', but toolkit passes only register; "
        "write register_models(register)",
    ),
    "raising_hook": (
        "@toolkit.hookimpl\ndef register_models(register):\n    raise RuntimeError('boom')\n",
        "register_models() raised RuntimeError: boom (broken_raising_hook.py, line 6)",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_2_a_requested_plugin_that_fails_is_an_error_naming_it_and_the_cause(cli, tmp_path, case):
    source, cause = BROKEN[case]
    path = tmp_path / f"broken_{case}.py"
    path.write_text(HEADER + source)
    error = one_error_line(cli(["--plugin", str(path), "models"]))
    assert error.startswith(f"Error: plugin 'broken_{case}' (--plugin {path}) failed to load: ")
    assert cause in error
    assert error.endswith("Fix the plugin or leave it out; --traceback (or TOOLKIT_DEBUG=1) shows where.")
    with pytest.raises(toolkit.ToolkitError, match=f"plugin 'broken_{case}'") as raised:
        load_registry([str(path)])
    assert cause in str(raised.value)
    assert raised.value.__cause__ is not None  # the plugin's own exception, with its traceback
    assert str(path) in "".join(traceback.format_exception(raised.value))
    with pytest.raises(toolkit.ToolkitError, match=f"plugin 'broken_{case}'"):
        toolkit.run(dataset="names", model="gru", plugins=[str(path)], output=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_2_toolkit_plugins_variable_is_as_strict(cli, tmp_path, monkeypatch):
    path = tmp_path / "env_broken.py"
    path.write_text("def broken(:\n")
    monkeypatch.setenv("TOOLKIT_PLUGINS", str(path))
    error = one_error_line(cli(["models"]))
    assert f"plugin 'env_broken' (TOOLKIT_PLUGINS {path}) failed to load: SyntaxError" in error
    with pytest.raises(toolkit.ToolkitError, match="plugin 'env_broken'"):
        toolkit.list_models()


def test_2_a_broken_installed_plugin_is_a_warning_and_listed_as_failed(cli, tmp_path, monkeypatch):
    installed(monkeypatch, tmp_path / "site", "ep_broken", "import no_such_module_xyz\n")
    result = cli(["models"])
    assert result.exit_code == 0, result.output
    assert "gru: " in result.stdout  # the rest of toolkit still works
    assert ("Warning: plugin 'ep_broken' (entry point, ep_broken-dist 1.0) failed to load: "
            "ModuleNotFoundError: No module named 'no_such_module_xyz'") in result.stderr
    listing = cli(["plugins"]).stdout
    assert "ep_broken (entry point, ep_broken-dist 1.0)\n  FAILED: ModuleNotFoundError" in listing
    failed = [p for p in toolkit.list_plugins() if p.error]
    assert [p.name for p in failed] == ["ep_broken"]


# -- 3. two plugins of one name ----------------------------------------------------------------


def test_3_two_files_of_one_name_are_refused_naming_both(cli, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = plugin(tmp_path / "a", "plug.py", GOOD_MODEL, name="first-model")
    second = plugin(tmp_path / "b", "plug.py", GOOD_MODEL, name="second-model")
    message = (f"two plugins are named 'plug': --plugin {first} and --plugin {second}. Rename one "
               "(a plugin is named after its file, module or entry point), or --disable one.")
    result = cli(["--plugin", str(first), "--plugin", str(second), "models"])
    assert one_error_line(result) == f"Error: {message}"
    with pytest.raises(toolkit.ToolkitError) as raised:
        load_registry([str(first), str(second)])
    assert str(raised.value) == message
    twice = load_registry([str(first), str(first)])  # the same file twice is fine
    assert "first-model" in twice.specs["model"]


def test_3_9_a_file_stands_in_for_the_installed_plugin_of_its_name(cli, tmp_path, monkeypatch):
    installed(monkeypatch, tmp_path / "site", "devplug", HEADER + GOOD_MODEL.format(name="installed-model"))
    work = tmp_path / "work"
    work.mkdir()
    local = plugin(work, "devplug.py", GOOD_MODEL, name="local-model")
    result = cli(["--plugin", str(local), "models"])
    assert result.exit_code == 0, result.output
    assert "local-model: " in result.stdout and "installed-model" not in result.stdout
    warning = (f"Warning: plugin 'devplug' from --plugin {local} stands in for the installed entry point, "
               "devplug-dist 1.0, which is not loaded; drop the --plugin to use the installed one.")
    assert warning in result.stderr
    registry = load_registry([str(local)])
    assert registry.owner("model", "local-model").source == "--plugin"
    assert registry.warnings == [warning.removeprefix("Warning: ")]
    assert "installed-model" in load_registry().specs["model"]


# -- 4. encoder state that JSON cannot hold ---------------------------------------------------

SET_STATE_ENCODER = '''
class SetEncoder:
    produces = toolkit.CHAR_INDICES

    def __init__(self):
        self.alphabet = set()

    @property
    def vocab_size(self):
        return len(self.alphabet) + 1

    def fit(self, texts):
        self.alphabet = {{c for t in texts for c in t}}

    def encode(self, texts):
        order = sorted(self.alphabet)
        rows = [torch.tensor([order.index(c) + 1 for c in t]) for t in texts]
        lengths = torch.tensor([len(r) for r in rows])
        return nn.utils.rnn.pad_sequence(rows, batch_first=True), lengths

    def state(self):
        return {{"alphabet": self.alphabet}}

    def load_state(self, state):
        self.alphabet = set(state["alphabet"])

@toolkit.hookimpl
def register_encoders(register):
    register(toolkit.EncoderSpec(name="{name}", help="Keeps its alphabet as a set.", factory=SetEncoder))
'''


def test_4_encoder_state_that_is_not_json_is_refused_naming_the_key(cli, tmp_path):
    path = plugin(tmp_path, "set_state.py", SET_STATE_ENCODER, TINY_DATASET, name="set-encoder")
    path.write_text(path.read_text().replace('name="set-encoder", help="Tiny', 'name="tiny", help="Tiny'))
    message = (
        "encoder 'set-encoder' (plugin 'set_state'): state['alphabet'] is a set, which JSON cannot "
        "store; state() must return plain JSON (dict, list, str, int, float, bool, None), as it is "
        "saved in encoder.json."
    )
    args = ["--plugin", str(path), "run", "--dataset", "tiny", "--encoder", "set-encoder",
            "--model", "gru", "--param", "train.epochs=1", "--output", str(tmp_path / "run")]
    assert one_error_line(cli(args)) == f"Error: {message}"
    with pytest.raises(toolkit.ToolkitError) as raised:
        toolkit.run(dataset="tiny", model="gru", encoder="set-encoder", params=QUICK,
                    plugins=[str(path)], output=tmp_path / "run", progress=False)
    assert str(raised.value) == message
    assert not (tmp_path / "run").exists()  # refused before training, nothing written


# -- 5. what load() and encode() return, Params against the factory, names and help ---------


def test_5_load_returning_a_list_is_one_line(cli, tmp_path):
    path = plugin(tmp_path, "list_data.py", '''
        @toolkit.hookimpl
        def register_datasets(register):
            register(toolkit.DatasetSpec(name="listed", help="Returns a list.", load=lambda: ["a", "b"]))
    ''')
    message = ("dataset 'listed' (plugin 'list_data'): load() returned list; it must return a "
               "toolkit.TextDataset (build one with "
               "toolkit.TextDataset.from_pairs(texts, labels, provenance)).")
    assert one_error_line(cli(["--plugin", str(path), "datasets", "show", "listed"])) == f"Error: {message}"
    assert one_error_line(cli(["--plugin", str(path), "run", "--dataset", "listed",
                               "--output", str(tmp_path / "run")])) == f"Error: {message}"
    with pytest.raises(toolkit.ToolkitError) as raised:
        toolkit.load_dataset("listed", plugins=[str(path)])
    assert str(raised.value) == message


def test_5_encode_returning_lists_is_one_line(cli, tmp_path):
    encode = "return [[ord(c) % 200 for c in t] for t in texts], [len(t) for t in texts]"
    path = plugin(tmp_path, "list_encoder.py", STATELESS_ENCODER, TINY_DATASET,
                  name="tiny", encoder="lists", vocab_size="200", encode=encode)
    message = ("encoder 'lists' (plugin 'list_encoder'): encode() returned a tuple of 2 (list, list); it "
               "must return (indices, lengths): a LongTensor (texts, time) padded with 0 and a LongTensor "
               "(texts,) of lengths.")
    args = ["--plugin", str(path), "run", "--dataset", "tiny", "--encoder", "lists",
            "--output", str(tmp_path / "r")]
    assert one_error_line(cli(args)) == f"Error: {message}"
    with pytest.raises(toolkit.ToolkitError) as raised:
        toolkit.run(dataset="tiny", model="gru", encoder="lists", params=QUICK, plugins=[str(path)],
                    output=tmp_path / "r", progress=False)
    assert str(raised.value) == message
    with pytest.raises(ContractError, match="encode\\(\\) returned a tuple of 2 \\(list, list\\)"):
        check_encoder("lists", plugins=[str(path)])


REGISTRATION_MISTAKES = {
    "param_name": (
        'name="ok-model", help="Fine.", factory=lambda vocab_size, num_classes, width=8: None, '
        'params=(toolkit.Param("widht", int, 8, "Width."),)',
        "model 'ok-model': factory() has no argument 'widht', which toolkit passes (a declared Param). "
        "Did you mean 'width'? Its arguments: vocab_size, num_classes, width",
    ),
    "param_default_type": (
        'name="ok-model", help="Fine.", factory=lambda vocab_size, num_classes, width=8: None, '
        'params=(toolkit.Param("width", int, "8", "Width."),)',
        "model 'ok-model' parameter 'width': the default '8' is not an integer, the declared type",
    ),
    "spec_name": (
        'name="My Model", help="Fine.", factory=lambda vocab_size, num_classes: None',
        "model name 'My Model' must be lower-case letters, digits and hyphens, starting with a letter "
        "(e.g. 'my-model')",
    ),
    "empty_help": (
        'name="ok-model", help=" ", factory=lambda vocab_size, num_classes: None',
        "model 'ok-model' has an empty help; give a one-line description",
    ),
    "undeclared_argument": (
        'name="ok-model", help="Fine.", factory=lambda vocab_size, num_classes, depth: None',
        "model 'ok-model': factory() requires argument 'depth', which no Param declares; declare it "
        "or give it a default",
    ),
}


@pytest.mark.parametrize("case", REGISTRATION_MISTAKES)
def test_5_registration_is_checked_naming_the_plugin(cli, tmp_path, case):
    arguments, problem = REGISTRATION_MISTAKES[case]
    path = tmp_path / f"mistake_{case}.py"
    path.write_text(HEADER + f"@toolkit.hookimpl\ndef register_models(register):\n"
                             f"    register(toolkit.ModelSpec({arguments}))\n")
    message = (f"plugin 'mistake_{case}' (--plugin {path}) failed to load: {problem}. "
               "Fix the plugin or leave it out; --traceback (or TOOLKIT_DEBUG=1) shows where.")
    assert one_error_line(cli(["--plugin", str(path), "models"])) == f"Error: {message}"
    with pytest.raises(toolkit.ToolkitError) as raised:
        toolkit.list_models([str(path)])
    assert str(raised.value) == message


def test_5_registering_one_name_twice_in_a_plugin_is_refused(tmp_path):
    path = plugin(tmp_path, "twice.py", GOOD_MODEL.replace(
        "    register(toolkit.ModelSpec", "    for _ in range(2):\n        register(toolkit.ModelSpec"),
        name="same")
    with pytest.raises(toolkit.ToolkitError, match="plugin 'twice' registers model 'same' twice"):
        load_registry([str(path)])


# -- 6. an encoder whose vocab_size is too small ------------------------------------------------


def test_6_a_too_small_vocab_size_is_named(cli, tmp_path):
    encode = ("return nn.utils.rnn.pad_sequence([torch.tensor([ord(c) for c in t]) for t in texts], "
              "batch_first=True), torch.tensor([len(t) for t in texts])")
    path = plugin(tmp_path, "small_vocab.py", STATELESS_ENCODER, TINY_DATASET,
                  name="tiny", encoder="codes", vocab_size="10", encode=encode)
    args = ["--plugin", str(path), "run", "--dataset", "tiny", "--encoder", "codes",
            "--output", str(tmp_path / "r")]
    error = one_error_line(cli(args))
    assert error.startswith("Error: encoder 'codes' (plugin 'small_vocab'): encode() returned index 1")
    assert "but the encoder's vocab_size is 10; vocab_size must be larger than every index" in error
    with pytest.raises(toolkit.ToolkitError, match="vocab_size is 10"):
        toolkit.run(dataset="tiny", model="gru", encoder="codes", params=QUICK, plugins=[str(path)],
                    output=tmp_path / "r", progress=False)


# -- 7. the traceback on request ---------------------------------------------------------------


def test_7_traceback_on_request(tmp_path):
    path = tmp_path / "raises.py"
    # No torch import, unlike HEADER: each of the three processes would spend a second on it.
    path.write_text("import toolkit\n\n\n@toolkit.hookimpl\ndef register_models(register):\n    1 / 0\n")
    quiet = run_toolkit(["--plugin", str(path), "models"])
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    for args, env in ((["--traceback", "--plugin", str(path), "models"], {}),
                      (["--plugin", str(path), "models"], {"TOOLKIT_DEBUG": "1"})):
        loud = run_toolkit(args, env=env)
        assert loud.returncode == 2
        assert "Traceback (most recent call last)" in loud.stderr
        assert f'File "{path}", line 6, in register_models' in loud.stderr  # the plugin's own line
        assert loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()


# -- 9. switching plugins off -------------------------------------------------------------------


def test_9_disable_skips_a_built_in_or_an_installed_plugin(cli, tmp_path, monkeypatch):
    result = cli(["--disable", "toolkit.plugins.scratch", "models"])
    assert result.exit_code == 0
    assert "gru: " in result.stdout and "scratch-rnn" not in result.stdout
    listing = cli(["--disable", "toolkit.plugins.scratch", "plugins"]).stdout
    assert "toolkit.plugins.scratch (built-in, toolkit 0.1.0)\n  disabled" in listing
    installed(monkeypatch, tmp_path / "site", "ep_broken2", "import no_such_module_xyz\n")
    monkeypatch.setenv("TOOLKIT_DISABLE", "ep_broken2")
    quiet = cli(["models"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert "ep_broken2 (entry point, ep_broken2-dist 1.0)\n  disabled" in cli(["plugins"]).stdout
    registry = load_registry(["no:toolkit.datasets.names"])
    assert "names" not in registry.specs["dataset"] and "ep_broken2" in [p.name for p in registry.plugins]


def test_9_disabling_an_unknown_plugin_is_an_error_with_a_suggestion(cli):
    error = one_error_line(cli(["--disable", "scratch", "models"]))
    assert error == ("Error: no plugin named 'scratch' to disable (from --disable). Did you mean "
                     "'toolkit.plugins.scratch'? `toolkit plugins` lists the plugins by name.")
    with pytest.raises(toolkit.ToolkitError, match="no plugin named 'scratch' to disable"):
        load_registry(["no:scratch"])


# -- a file plugin's run records the file ------------------------------------------------------


def test_a_file_plugin_run_records_the_file_and_its_sha256(tmp_path):
    import hashlib

    path = plugin(tmp_path, "recorded.py", GOOD_MODEL, TINY_DATASET, name="recorded")
    path.write_text(path.read_text().replace('name="recorded", help="Tiny', 'name="tiny", help="Tiny'))
    result = toolkit.run(dataset="tiny", model="recorded", params=QUICK, plugins=[str(path)],
                         output=tmp_path / "run", progress=False)
    config = json.loads((result.run_dir / "config.json").read_text())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert config["model"]["plugin_file"] == str(path.resolve())
    assert config["model"]["plugin_sha256"] == config["dataset"]["plugin_sha256"] == digest
    assert "plugin_file" not in config["encoder"]  # the built-in onehot is identified by its version


# -- 10. the checkers catch what training cannot see -------------------------------------------

BAD_MODELS = '''
class Probabilities(nn.Module):
    def __init__(self, vocab_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8, padding_idx=0)
        self.out = nn.Linear(8, num_classes)

    def forward(self, indices, lengths):
        return torch.softmax(self.out(self.embedding(indices).sum(1)), dim=1)


class PaddingDependent(nn.Module):
    def __init__(self, vocab_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8)  # no padding_idx, and a mean over all positions
        self.out = nn.Linear(8, num_classes)

    def forward(self, indices, lengths):
        return self.out(self.embedding(indices).mean(1))

@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(name="probabilities", help="Softmax output.", factory=Probabilities))
    register(toolkit.ModelSpec(name="padding-dependent", help="Mean over padding.", factory=PaddingDependent))
'''


def test_10_check_model_catches_probabilities_and_padding_dependence(tmp_path):
    path = plugin(tmp_path, "bad_models.py", BAD_MODELS)
    with pytest.raises(ContractError, match=r"'probabilities': forward returns probabilities \(every row"):
        check_model("probabilities", plugins=[str(path)])
    with pytest.raises(ContractError, match="model 'padding-dependent': a text's logits change in a batch"):
        check_model("padding-dependent", plugins=[str(path)])
    good = plugin(tmp_path, "good_model.py", GOOD_MODEL, name="good")
    check_model("good", plugins=[str(good)])
    # The same models train without a word: that is why the checkers exist.
    registry = load_registry([str(path)])
    assert isinstance(registry.model("probabilities").factory(vocab_size=5, num_classes=2), torch.nn.Module)


def test_10_check_encoder_catches_state_json_cannot_hold(tmp_path):
    path = plugin(tmp_path, "set_state2.py", SET_STATE_ENCODER, name="set-encoder")
    with pytest.raises(ContractError, match=r"state\['alphabet'\] is a set, which JSON cannot store"):
        check_encoder("set-encoder", plugins=[str(path)])


# -- issue 23, item 10: more plugin mistakes, each one clear line -------------------------------

RETURNS_ITS_SPEC = '''
@toolkit.hookimpl
def register_models(register):
    return toolkit.ModelSpec(name="returned", help="Returned, not registered.",
                             factory=lambda vocab_size, num_classes: None)
'''


def test_23_a_hook_returning_its_spec_instead_of_registering_it_is_refused(cli, tmp_path):
    path = plugin(tmp_path, "returns.py", RETURNS_ITS_SPEC)
    error = one_error_line(cli(["--plugin", str(path), "models"]))
    assert ("its hook register_models() returned ModelSpec(name='returned') instead of registering it, "
            "so toolkit would not see it; call register(toolkit.ModelSpec(...)) inside the hook") in error
    listed = plugin(tmp_path, "returns_list.py", RETURNS_ITS_SPEC.replace(
        "return toolkit.ModelSpec(", "return [toolkit.ModelSpec(").replace("None)\n", "None)]\n"))
    assert "returned ModelSpec(name='returned') instead" in one_error_line(
        cli(["--plugin", str(listed), "models"]))


def test_23_a_root_option_after_the_command_says_where_it_goes(tmp_path):
    loaded = tmp_path / "loaded"
    path = tmp_path / "marker.py"
    path.write_text(f"from pathlib import Path\nPath({str(loaded)!r}).touch()\n")
    result = run_toolkit(["run", "--plugin", str(path), "--dataset", "names"])
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "Error: --plugin is an option of toolkit itself and goes before the command: "
        "toolkit --plugin PATH_OR_MODULE run ..."
    )
    assert not loaded.exists()  # read only before the command, so not loaded here
    nested = run_toolkit(["datasets", "show", "names", "--disable", "toolkit.plugins.cnn"])
    assert nested.returncode == 2
    assert "toolkit --disable NAME datasets show ..." in nested.stderr
    assert "No such option: --bogus" in run_toolkit(["run", "--bogus"]).stderr  # others as before


@pytest.mark.parametrize(("args", "line"), [
    (["frobnicate"], "Error: No such command 'frobnicate'; see 'toolkit --help'."),
    (["run", "--bogus"], "Error: No such option: --bogus; see 'toolkit run --help'."),
    (["run", "--seed", "abc"], "Error: Invalid value for '--seed': Input should be a valid integer, unable "
     "to parse string as an integer; see 'toolkit run --help'."),
    (["predict", "Nakamura"], "Error: Missing option '--run' / '-r'; see 'toolkit predict --help'."),
    (["report"], "Error: Missing argument 'run_dir'; see 'toolkit report --help'."),
    ([], "Error: Missing command; see 'toolkit --help'."),
])
def test_usage_errors_of_the_command_line_itself_are_one_line(args, line):
    """What click finds before a command runs (an unknown command or option, a value of the wrong
    type, a missing argument) is one line and exit code 2, as toolkit's own errors are."""
    result = run_toolkit(args)
    assert result.returncode == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_23_a_module_that_is_not_there_is_one_line_not_a_line_of_importlib(cli, tmp_path, monkeypatch):
    error = one_error_line(cli(["--plugin", "no_such_module_xyz", "models"]))
    assert ("Error: plugin 'no_such_module_xyz' (--plugin no_such_module_xyz) failed to load: no module "
            "named 'no_such_module_xyz' on the Python path; give the path of a plugin's .py file, or the "
            "name of an installed module") in error
    assert "__init__.py" not in error and "importlib" not in error
    # A module that is there but imports a missing one still names that import and its line.
    (tmp_path / "needs_missing.py").write_text("import toolkit\nimport missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    error = one_error_line(cli(["--plugin", "needs_missing", "models"]))
    assert "No module named 'missing_dependency_xyz' (needs_missing.py, line 2)" in error


def test_23_help_with_a_clashing_plugin_command_is_refused(tmp_path):
    path = plugin(tmp_path, "clash.py", COMMAND, name="run")
    result = run_toolkit(["--plugin", str(path), "--help"])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "Error: command 'run' of plugin 'clash' clashes with the command 'run' of toolkit "
        "(built-in); rename the plugin's command."
    )
    assert run_toolkit(["--plugin", str(path), "run", "--help"]).returncode == 2
    assert run_toolkit(["--help"]).returncode == 0


FILTERED_DATASET = '''
def load(min_length):
    record = toolkit.Provenance("made up")
    pairs = record.normalize_pairs([("ab", "x"), ("   ", "y"), ("abc", "y")])
    kept = [(text, label) for text, label in pairs if len(text) >= min_length]
    record.drop("too short", len(pairs) - len(kept))
    return record.dataset([text for text, _ in kept], [label for _, label in kept])

@toolkit.hookimpl
def register_datasets(register):
    register(toolkit.DatasetSpec(name="filtered", help="Texts of at least min_length.", load=load,
                                 params=(toolkit.Param("min_length", int, 2, "Shortest text kept."),)))
'''


def test_23_an_empty_dataset_is_named_with_the_parameters_that_filtered_it(cli, tmp_path):
    path = plugin(tmp_path, "filtered.py", FILTERED_DATASET)
    expected = (
        "dataset 'filtered' (plugin 'filtered') with min_length=9 is empty: no labelled texts were "
        "found (left out: 1 blank line, 2 too short); loosen the parameters that leave texts out"
    )
    error = one_error_line(cli(["--plugin", str(path), "datasets", "show", "filtered", "-p", "min_length=9"]))
    assert expected in error
    run = cli(["--plugin", str(path), "run", "--dataset", "filtered", "-p", "min_length=9",
               "--output", str(tmp_path / "run")])
    assert expected in one_error_line(run)
    with pytest.raises(toolkit.ToolkitError, match="with min_length=9 is empty"):
        toolkit.load_dataset("filtered", {"min_length": 9}, plugins=[str(path)])
    assert len(toolkit.load_dataset("filtered", plugins=[str(path)])) == 2


def test_23_a_run_that_needs_a_file_plugin_names_the_file_it_recorded(cli, tmp_path):
    path = plugin(tmp_path, "recorded2.py", GOOD_MODEL, TINY_DATASET, name="recorded2")
    path.write_text(path.read_text().replace('name="recorded2", help="Tiny', 'name="tiny2", help="Tiny'))
    toolkit.run(dataset="tiny2", model="recorded2", params=QUICK, plugins=[str(path)],
                output=tmp_path / "run", progress=False)
    error = one_error_line(cli(["predict", "--run", str(tmp_path / "run"), "Abc"]))
    assert (f"needs the model 'recorded2' from the plugin 'recorded2'; the run was trained with the file "
            f"{path.resolve()}: load it with toolkit --plugin {path.resolve()} ...") in error
    path.rename(tmp_path / "moved.py")
    error = one_error_line(cli(["predict", "--run", str(tmp_path / "run"), "Abc"]))
    assert f"the file {path.resolve()}, which is no longer there: load that plugin with --plugin" in error


# -- issue 23, item 7: the padding checks hold for every padded-index format --------------------

WORD_IDS = '''
class WordIds:
    """Word ids (a format of its own): 1 for an unknown word, 0 only as padding."""
    produces = "word-ids"

    def __init__(self):
        self.vocabulary = {{}}

    @property
    def vocab_size(self):
        return len(self.vocabulary) + 2

    def fit(self, texts):
        words = sorted({{word for text in texts for word in text.lower().split()}})
        self.vocabulary = {{word: i + 2 for i, word in enumerate(words)}}

    def encode(self, texts):
        from torch.nn.utils.rnn import pad_sequence
        rows = [torch.tensor([self.vocabulary.get(w, 1) for w in text.lower().split()] or [1])
                for text in texts]
        return pad_sequence(rows, batch_first=True, padding_value={pad}), torch.tensor([len(r) for r in rows])

    def state(self):
        return {{"vocabulary": self.vocabulary}}

    def load_state(self, state):
        self.vocabulary = dict(state["vocabulary"])


class MeanOverEverything(nn.Module):
    def __init__(self, vocab_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8)  # no padding_idx, and a mean over all positions
        self.out = nn.Linear(8, num_classes)

    def forward(self, indices, lengths):
        return self.out(self.embedding(indices).mean(1))


@toolkit.hookimpl
def register_encoders(register):
    register(toolkit.EncoderSpec(name="word-ids", help="Word ids.", factory=WordIds, produces="word-ids"))


@toolkit.hookimpl
def register_models(register):
    register(toolkit.ModelSpec(name="word-mean", help="Mean over every position.",
                               factory=MeanOverEverything, consumes=("word-ids",)))
'''


def test_23_check_model_checks_padding_in_a_format_of_the_plugin_s_own(tmp_path):
    path = plugin(tmp_path, "word_ids.py", WORD_IDS, pad="toolkit.PAD")
    check_encoder("word-ids", plugins=[str(path)])
    with pytest.raises(ContractError, match="model 'word-mean': a text's logits change"):
        check_model("word-mean", encoder="word-ids", plugins=[str(path)])


def test_23_check_encoder_checks_the_padding_value_in_every_format(tmp_path):
    path = plugin(tmp_path, "word_ids_padded_with_1.py", WORD_IDS, pad="1")
    with pytest.raises(ContractError, match=r"every format pads with toolkit.PAD \(0\) after the text"):
        check_encoder("word-ids", plugins=[str(path)])

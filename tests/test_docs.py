"""docs/writing-plugins.md, executed: every file it shows is written, every command it shows
is run in order in a fresh folder, and the output it shows must appear in the real output.

The guide marks a code block as a file with `<!-- file: PATH -->` on the line before it, and
a console block whose commands must fail with `<!-- exit: N -->`. Commands run as the guide
shows them, with two changes for a test machine: `toolkit`, `python`, `pytest` and `pip` are
those of a throwaway environment (so `pip install` never changes the environment running the
tests), and `pip install` gets `--no-deps --no-build-isolation --no-index` (no network);
`pip uninstall` gets `--yes`.

Also checked here: the README's facts that code can check (its `pip install` advice, its
counts of the names data) and the help every command prints.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO, running_environment_packages

import toolkit
from toolkit.registry import BUILTIN_PLUGINS

GUIDE = REPO / "docs" / "writing-plugins.md"
BLOCK = re.compile(
    r"(?:<!-- (?P<marker>file|exit): (?P<argument>[^>]+?) -->\n)?```(?P<language>\w*)\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)


@dataclass
class Command:
    line: str
    expected_output: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class FileSample:
    path: str
    text: str


def samples(markdown: str) -> list[Command | FileSample]:
    """The guide's files and commands, in the order a reader meets them."""
    found: list[Command | FileSample] = []
    for block in BLOCK.finditer(markdown):
        marker, argument, language, body = block.group("marker", "argument", "language", "body")
        if marker == "file":
            found.append(FileSample(argument.strip(), body))
        elif language == "console":
            exit_code = int(argument) if marker == "exit" else 0
            for line in body.splitlines():
                if line.startswith("$ "):
                    found.append(Command(line[2:], exit_code=exit_code))
                elif line.strip():
                    found[-1].expected_output.append(line.strip())
        else:
            assert language not in ("python", "toml", "bash"), (
                f"a {language} block in {GUIDE.name} is neither a file nor a console sample, "
                f"so no test runs it:\n{body[:200]}"
            )
    return found


def argv(command: str, python: str) -> list[str]:
    words = shlex.split(command)
    program, rest = words[0], words[1:]
    if program == "toolkit":
        return [python, "-m", "toolkit", *rest]
    if program == "python":
        return [python, *rest]
    if program == "pytest":
        return [python, "-m", "pytest", "-p", "no:cacheprovider", *rest]
    if program == "pip" and rest[:1] == ["install"]:
        return [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", *rest[1:]]
    if program == "pip" and rest[:1] == ["uninstall"]:
        return [python, "-m", "pip", "uninstall", "--yes", *rest[1:]]
    if program in ("mkdir", "cp"):
        return words
    raise AssertionError(f"the guide runs '{program}', which this test does not know how to run")


def installed_distribution(command: str, cwd: Path) -> str | None:
    """The distribution a `pip install -e PATH` command installs, for cleaning up."""
    words = shlex.split(command)
    if words[:2] != ["pip", "install"]:
        return None
    project = cwd / words[-1] / "pyproject.toml"
    return tomllib.loads(project.read_text())["project"]["name"]


def test_every_sample_is_run():
    found = samples(GUIDE.read_text(encoding="utf-8"))
    files = {s.path for s in found if isinstance(s, FileSample)}
    commands = [s.line for s in found if isinstance(s, Command)]
    assert {"regions.py", "notebook.py", "test_regions.py", "toolkit-regions/pyproject.toml"} <= files
    assert any(c.startswith("toolkit --plugin regions.py run") for c in commands)
    assert "pip install ./toolkit-regions" in commands  # not -e, which hides a missing data file
    assert any(c.startswith("toolkit plugins new") for c in commands)


def test_the_guide_s_package_ships_every_data_file_and_imports_torch_lazily():
    """The package the guide builds ships each file its plugin reads (package-data matches
    it: a missed .tsv installs without a word and fails at run time), and only its model
    module imports torch."""
    found = samples(GUIDE.read_text(encoding="utf-8"))
    files = {s.path: s.text for s in found if isinstance(s, FileSample)}
    commands = [s.line for s in found if isinstance(s, Command)]
    data_files = [path for path in files if path.startswith("data/")]
    assert data_files, "the guide shows no data file"
    assert "cp -r data toolkit-regions/toolkit_regions/data" in commands
    config = tomllib.loads(files["toolkit-regions/pyproject.toml"])["tool"]["setuptools"]
    patterns = config["package-data"]["toolkit_regions"]
    for path in data_files:
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), f"{path} is not shipped"
    package = [path for path in files if path.startswith("toolkit-regions/toolkit_regions/")]
    heavy = sorted(path for path in package if re.search(r"^(import|from) torch", files[path], re.M))
    assert heavy == ["toolkit-regions/toolkit_regions/networks.py"]


@pytest.mark.slow
def test_the_guide_runs_as_written(tmp_path, throwaway_env):
    before = running_environment_packages()
    python = str(throwaway_env.python)
    cwd = tmp_path
    installed: list[str] = []
    try:
        for sample in samples(GUIDE.read_text(encoding="utf-8")):
            if isinstance(sample, FileSample):
                path = cwd / sample.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(sample.text, encoding="utf-8")
                continue
            if sample.line.startswith("cd "):
                cwd = cwd / sample.line[3:].strip()
                continue
            distribution = installed_distribution(sample.line, cwd)
            result = subprocess.run(argv(sample.line, python), cwd=cwd, capture_output=True, text=True)
            output = result.stdout + result.stderr
            assert result.returncode == sample.exit_code, f"$ {sample.line}\n{output[-3000:]}"
            assert "Traceback" not in result.stderr, f"$ {sample.line}\n{result.stderr[-3000:]}"
            if distribution:
                installed.append(distribution)
            shown = [line.strip() for line in output.splitlines()]
            for expected in sample.expected_output:
                assert any(expected in line for line in shown), (
                    f"$ {sample.line}\nexpected a line with {expected!r}; got:\n{output[-3000:]}"
                )
    finally:
        for distribution in installed:
            throwaway_env.pip("uninstall", "--yes", distribution)
    assert running_environment_packages() == before


#: Every module of the built-in plugins: the registration modules `BUILTIN_PLUGINS` names and
#: the modules beside each named after it (`ngram_model` with its torch code, which the
#: registration imports lazily; `ngram_numpy`, its forward pass on numpy arrays...).
BUILTIN_MODULES = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts)
    for folder in ("plugins", "datasets") for path in (REPO / "toolkit" / folder).glob("*.py")
    if path.name != "__init__.py"
)


def plugin_of(module: str) -> str:
    """The built-in plugin (its registration module) a module belongs to: its name's start."""
    return max((p for p in BUILTIN_PLUGINS if module == p or module.startswith(f"{p}_")), key=len)


def test_the_public_api_check_covers_every_builtin_module():
    assert set(BUILTIN_PLUGINS) <= set(BUILTIN_MODULES)
    assert {plugin_of(m) for m in BUILTIN_MODULES} == set(BUILTIN_PLUGINS)


@pytest.mark.parametrize("module", BUILTIN_MODULES)
def test_builtin_plugins_use_only_the_public_api(module):
    """The built-ins are the reference examples: they import `toolkit` and use only what
    `toolkit.__all__` exports, as a third-party plugin would (a plugin's modules may also import
    each other, as a plugin package imports its own modules)."""
    source = Path(REPO, *module.split(".")).with_suffix(".py").read_text(encoding="utf-8")
    own = {m for m in BUILTIN_MODULES if plugin_of(m) == plugin_of(module)}
    imports = re.findall(r"^\s*(?:from|import) (toolkit[\w.]*)", source, re.MULTILINE)
    assert set(imports) - own <= {"toolkit"}, f"{module} imports toolkit internals: {imports}"
    for name in sorted(own, key=len, reverse=True):
        source = source.replace(name, "")
    used = set(re.findall(r"\btoolkit\.(\w+)", source))
    assert used <= set(toolkit.__all__), f"{module} uses non-public {sorted(used - set(toolkit.__all__))}"


# -- the README and the help the CLI prints ------------------------------------------------------

README = REPO / "README.md"
#: The pages and messages that may tell a reader to `pip install` something.
ADVICE = [README, *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("examples/*/README.md")),
          *sorted((REPO / "toolkit").rglob("*.py"))]


def test_pip_install_advice_installs_toolkit_from_its_folder():
    """toolkit is installed from its folder (`pip install -e .`): `pip install 'toolkit[tune]'`
    would ask the package index for a project of that name, which is not this one."""
    from_an_index = []
    for path in ADVICE:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for advice in re.findall(r"pip install ([^`\n]*)", line):
                command = re.split(r"&&|\|\||[#;|]", advice)[0]  # not what follows it on the line
                words = [w.strip("'\"()`.,").replace("\\", "") for w in command.split()]
                if any(re.fullmatch(r"toolkit(\[[\w,]+\])?", word) for word in words):
                    from_an_index.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert from_an_index == []


def test_the_readme_counts_shared_names_under_the_normalisation_it_names():
    text = " ".join(README.read_text(encoding="utf-8").split())
    data = toolkit.load_dataset("names")
    assert data.provenance["normalization"] == "ascii"  # the default the README names
    default = toolkit.describe_dataset(data)
    raw = toolkit.describe_dataset(toolkit.load_dataset("names", {"normalization": "raw"}))
    assert (f"{default.loc['(all)', 'shared']} names under more than one language once the dataset's "
            "default normalisation, the tutorial's `ascii`, has dropped the accents") in text
    assert f"; {raw.loc['(all)', 'shared']} in the raw lines, `--param dataset.normalization=raw`" in text
    assert f"2,000 Arabic lines but only {default.loc['Arabic', 'distinct']} distinct names" in text


def every_command(group, path=()) -> list[tuple[str, ...]]:
    """The command paths under a typer group, the group's own included."""
    import typer

    found = [path]
    context = typer.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if hasattr(command, "list_commands"):  # a group
            found += every_command(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_help_at_80_columns_shows_no_value_placeholder_on_flags(cli):
    """Typer shows a flag's type as `<bool>`, as if `--json` or `--help` took a value."""
    import typer

    from toolkit.cli import make_app

    commands = every_command(typer.main.get_command(make_app()))
    assert {("run",), ("predict",), ("tune",), ("datasets", "show")} <= set(commands)
    for command in commands:
        result = cli([*command, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        assert "--help" in result.stdout and "<bool>" not in result.stdout, (command, result.stdout)

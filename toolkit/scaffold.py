"""`toolkit plugins new NAME`: write a plugin skeleton that installs and runs at once.

The skeleton is a distribution `toolkit-NAME` with a package `toolkit_NAME` that registers
the model `NAME` and the dataset `NAME-demo` through the `toolkit` entry point, a README
and tests. The templates live in `toolkit/templates/plugin/`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from string import Template

from toolkit.contracts import NAME_PATTERN
from toolkit.errors import ToolkitError
from toolkit.registry import Registry, load_registry
from toolkit.safe_files import shown

#: The longest plugin name: it becomes folder and file names (toolkit-NAME, toolkit_NAME),
#: which most filesystems cap at 255 bytes, and a name people type.
MAX_NAME_LENGTH = 64

#: Template file -> where it goes in the skeleton (paths are templates too).
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "${package}/__init__.py",
    "config.py.tmpl": "${package}/config.py",
    "model.py.tmpl": "${package}/model.py",
    "data.py.tmpl": "${package}/data.py",
    "test_plugin.py.tmpl": "tests/test_plugin.py",
}


def new_plugin(name: str, directory: str | Path = ".", registry: Registry | None = None) -> Path:
    """Write the skeleton of plugin `name` to `directory/toolkit-NAME` and return that path.

    `name` becomes the model's name, `NAME-demo` the dataset's. Refuses a name that
    `registry` (default: the plugins loaded as `load_registry()` loads them) already has a
    model or dataset for, and never overwrites an existing folder.
    """
    _check_name(name, registry or load_registry())
    from toolkit import __version__

    package = "toolkit_" + name.replace("-", "_")
    distribution = f"toolkit-{name}"
    parent = Path(directory).expanduser()
    target = parent / distribution
    if os.path.lexists(target):
        raise ToolkitError(f"'{shown(target)}' already exists; choose another NAME or --directory.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ToolkitError(f"'{shown(parent)}' is not a folder; choose another --directory.") from None
    except OSError as exc:
        raise ToolkitError(
            f"cannot create the folder '{shown(parent)}' ({exc.strerror}); choose another --directory."
        ) from None
    values = {"name": name, "package": package, "distribution": distribution, "toolkit_version": __version__}
    templates = resources.files("toolkit") / "templates" / "plugin"
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{distribution}-", dir=parent))
    except OSError as exc:  # a read-only folder, a full disk
        raise ToolkitError(
            f"cannot write into '{shown(parent)}' ({exc.strerror}); choose another --directory."
        ) from None
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the skeleton is an ordinary folder
        for template, relative in FILES.items():
            path = staging / Template(relative).substitute(values)
            path.parent.mkdir(parents=True, exist_ok=True)
            text = Template((templates / template).read_text(encoding="utf-8")).substitute(values)
            path.write_text(text, encoding="utf-8")
        os.rename(staging, target)  # all or nothing: a half-written skeleton never appears
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ToolkitError(
            f"cannot write the skeleton into '{shown(parent)}' ({exc.strerror}); nothing was left "
            "there. Choose another --directory."
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _check_name(name: str, registry: Registry) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise ToolkitError(
            f"plugin name '{shown(name[:20])}...' has {len(name)} characters; give at most "
            f"{MAX_NAME_LENGTH} (it names a folder, a package and a distribution)."
        )
    if not NAME_PATTERN.fullmatch(name):
        raise ToolkitError(
            f"plugin name {name!r} must be lower-case letters and digits, words joined by '-', "
            "starting with a letter (e.g. charcnn or my-model)."
        )
    for kind, taken in (("model", name), ("dataset", f"{name}-demo")):
        if taken in registry.specs[kind]:
            owner = registry.owner(kind, taken).name
            raise ToolkitError(
                f"a {kind} named '{taken}' is already registered by plugin '{owner}'; "
                "choose another plugin name."
            )

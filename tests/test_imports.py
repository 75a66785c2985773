"""No import circles among toolkit's modules: data flows one way.

Read from the source with `ast`, not by importing, so the check sees every import statement:
module level, under TYPE_CHECKING, and inside functions (imports deferred so the CLI starts
without torch still make one module depend on another). One pattern is allowed: a built-in
plugin's registration module (`toolkit/plugins/cnn.py`) imports its model module
(`cnn_model.py`, which loads torch) inside the factory, and the model module reads its config
from the registration module.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import toolkit

PACKAGE = Path(toolkit.__file__).parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path) -> dict[str, dict[str, bool]]:
    """module -> {imported module of the same package: True when imported only lazily}."""
    files = {module_name(path, root): path for path in root.rglob("*.py")}
    graph: dict[str, dict[str, bool]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy = {
            id(node) for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
        }
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: dict[str, bool] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                if target in files and target != name:
                    found[target] = found.get(target, True) and id(node) in lazy
        graph[name] = found
    return graph


def plugin_model_import(source: str, target: str) -> bool:
    """A plugin's registration module importing its own model module (lazily, see above)."""
    return source.startswith("toolkit.plugins.") and target == f"{source}_model"


def circles(graph: dict[str, dict[str, bool]], allowed=lambda source, target: False) -> list[list[str]]:
    """Import circles, each as the modules along it (first == last); a lazy import that
    `allowed(source, target)` accepts is left out."""
    edges = {
        source: sorted(t for t, only_lazy in targets.items() if not (only_lazy and allowed(source, t)))
        for source, targets in graph.items()
    }
    found: list[list[str]] = []
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in edges[module]:
            if state.get(target) == "open":
                found.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    return found


def test_toolkit_has_no_import_circle():
    found = circles(imports(PACKAGE), allowed=plugin_model_import)
    assert found == [], "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_check_sees_circles_made_by_lazy_and_type_checking_imports(tmp_path):
    """Two modules that reach each other only through a function-level import and a
    TYPE_CHECKING one (as toolkit.api and toolkit.rundir once did) form a circle."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "api.py").write_text(textwrap.dedent("""
        def run():
            from pkg.rundir import write_run
            return write_run
    """))
    (package / "rundir.py").write_text(textwrap.dedent("""
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from pkg.api import RunResult
    """))
    (package / "cli.py").write_text("from . import api\n")
    assert circles(imports(package)) == [["pkg.api", "pkg.rundir", "pkg.api"]]

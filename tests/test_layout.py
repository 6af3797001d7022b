"""The package's shape (docs/architecture.md): imports run down the layers, never in a circle,
nothing inside the package imports ``colmax`` itself, and no module grows past ~600 lines."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import colmax

ROOT = Path(colmax.__file__).parent

# Rank of each top-level part; a module may import its own sub-package or lower ranks.
LAYERS = {
    "_core": 0,
    "_version": 0,
    "_validate": 0,
    "_progress": 0,
    "ragged": 0,
    "scoring": 1,
    "encoding": 2,
    "index": 3,
    "evaluation": 3,
    "server": 4,
    "integrations": 4,
    "distributed": 4,
    "cli": 5,
    "__main__": 6,
}
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["colmax", *parts])


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _known() -> set[str]:
    """Every importable colmax module: the Python ones and the compiled extension (``_core``)."""
    # an editable install keeps the extension beside the installed package, not in the sources
    compiled = {f"colmax.{p.name.split('.')[0]}" for d in colmax.__path__ for p in Path(d).glob("*.so")}
    return set(_modules()) | compiled


def _resolve(name: str, known: set[str]) -> str:
    """The module an import names: itself, else its longest known parent (``from x import f``)."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every colmax module ``module`` imports, at top level or inside functions."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found.update(_resolve(n, known) for n in names if n == "colmax" or n.startswith("colmax."))
    return found - {module}


def _graph() -> dict[str, set[str]]:
    known = _known()
    return {m: _imports(m, p, known) for m, p in _modules().items()}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_nothing_inside_imports_the_package_root():
    offenders = {m for m, deps in _graph().items() if "colmax" in deps}
    assert not offenders, f"import from the defining module, not from colmax: {sorted(offenders)}"


def test_imports_point_down_the_layers():
    wrong = []
    for module, deps in _graph().items():
        if module == "colmax":
            continue
        part = _part(module)
        assert part in LAYERS, (
            f"{module}: a new top-level part needs a layer in LAYERS and docs/architecture.md"
        )
        for dep in deps:
            if dep != "colmax" and _part(dep) != part and LAYERS[_part(dep)] >= LAYERS[part]:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports must point down the layers: " + ", ".join(sorted(wrong))


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, set())):
            if state.get(dep) == 1:  # on the path being walked: a circle
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(dep) :], dep]))
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_modules_stay_small():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_the_check_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    # the checks above must be able to fail: a fake package with both faults
    pkg = tmp_path / "colmax"
    (pkg / "index").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "scoring.py").write_text("from .index import facade\n")
    (pkg / "index" / "__init__.py").write_text("")
    (pkg / "index" / "facade.py").write_text("from ..scoring import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    graph = _graph()
    assert graph["colmax.scoring"] == {"colmax.index.facade"}
    assert graph["colmax.index.facade"] == {"colmax.scoring"}
    for check in (test_imports_point_down_the_layers, test_no_import_cycles):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} missed the fault")

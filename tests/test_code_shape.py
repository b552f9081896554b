"""The code keeps a shape a newcomer can change: no import circle, no module reaching into
another's private names, no function in export/ or runtime/ with more than 8 parameters.

Read from the source with the standard library's `ast` alone, nothing imported: every .py of
the packages pyproject.toml lists (its package-dir table maps them to module names), and every
import in it, at module level or inside a function (a function-local import that only hides a
circle is still a circle). Each check is also run on a few synthetic modules, to show it can fail.
"""
from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_PARAMETERS = 8
# Where the parameter limit holds: the export pipeline and the runtime, whose functions users call.
LIMITED_PACKAGES = ("bokehlite.export", "bokehlite.runtime")


@dataclass(frozen=True)
class Import:
    importer: str
    module: str            # the module imported (one of ours)
    name: str | None       # the name taken from it, None when the module itself is imported
    line: int


def package_dirs(pyproject: Path) -> dict[str, Path]:
    """Package name -> its folder, from [tool.setuptools.package-dir]."""
    table = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-dir"]
    return {package: pyproject.parent / folder for package, folder in table.items()}


def find_modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Module name -> file, for every .py directly in each package's folder."""
    modules = {}
    for package, folder in packages.items():
        for path in sorted(folder.glob("*.py")):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def _base(importer: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name `from <...> import` names."""
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    if path.stem != "__init__":
        parts = parts[:-1]                 # a module's own package
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def imports_of(importer: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of one of `modules` in the file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(importer, a.name, None, node.lineno) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = _base(importer, path, node)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:          # from pkg import module
                    found.append(Import(importer, f"{base}.{alias.name}", None, node.lineno))
                elif base in modules:
                    found.append(Import(importer, base, alias.name, node.lineno))
    return found


def all_imports(modules: dict[str, Path]) -> list[Import]:
    return [i for name, path in modules.items() for i in imports_of(name, path, modules)]


def cycles(imports: list[Import]) -> list[list[str]]:
    """One import circle per strongly connected group of modules, as a path a -> ... -> a."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        if i.module != i.importer:
            graph.setdefault(i.importer, set()).add(i.module)
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v: str) -> None:                 # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_within(graph, group) for group in groups]


def _path_within(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest circle through the group's first module, staying inside the group."""
    start = min(group)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph.get(path[-1], ()) & group):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    raise AssertionError(f"no circle in {sorted(group)}")          # a strongly connected group has one


def private_imports(imports: list[Import]) -> list[str]:
    """`from .x import _y`: a name another module keeps to itself."""
    return [f"{i.importer} (line {i.line}) imports {i.module}.{i.name}" for i in imports
            if i.name and i.name.startswith("_") and not i.name.startswith("__") and i.module != i.importer]


def wide_functions(modules: dict[str, Path], packages: tuple[str, ...],
                   limit: int = MAX_PARAMETERS) -> list[str]:
    """Functions of those packages' modules with more than `limit` parameters (self and cls
    aside; *args and **kwargs count one each)."""
    out = []
    for name, path in modules.items():
        if not any(name == p or name.startswith(p + ".") for p in packages):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                params += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
                if params and params[0] in ("self", "cls"):
                    params = params[1:]
                if len(params) > limit:
                    out.append(f"{name}.{node.name} (line {node.lineno}) has {len(params)} parameters")
    return out


@pytest.fixture(scope="module")
def ours() -> dict[str, Path]:
    modules = find_modules(package_dirs(ROOT / "pyproject.toml"))
    assert {"bokehlite.contract", "bokehlite.export.pipeline", "bokehlite.runtime.renderer",
            "bokehlite.model.bokehnet", "bokehlite.benchmarks.suite"} <= set(modules)
    return modules


def test_no_module_imports_itself_back_in_a_circle(ours):
    found = cycles(all_imports(ours))
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_no_module_imports_another_modules_private_name(ours):
    found = private_imports(all_imports(ours))
    assert not found, found


def test_no_export_or_runtime_function_takes_more_than_eight_parameters(ours):
    found = wide_functions(ours, LIMITED_PACKAGES)
    assert not found, found


# The checks themselves, on synthetic packages: each reports what it is there to catch.

def _package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    """A package `pkg` in `root` holding `files` (name -> source), as find_modules reads it."""
    folder = root / "src"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, source in files.items():
        (folder / name).write_text(source)
    (root / "pyproject.toml").write_text('[tool.setuptools.package-dir]\n"pkg" = "src"\n')
    return find_modules(package_dirs(root / "pyproject.toml"))


def test_a_circle_hidden_in_a_function_local_import_is_reported(tmp_path):
    modules = _package(tmp_path, {
        "a.py": "from .b import helper\n",
        "b.py": "from . import c\nhelper = 1\n",
        "c.py": "def later():\n    from pkg.a import something\n",
        "d.py": "from .a import helper\n",            # imports into the circle, is not part of it
    })
    found = cycles(all_imports(modules))
    assert found == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_imports_without_a_circle_pass(tmp_path):
    modules = _package(tmp_path, {"a.py": "from .b import helper\nimport pkg.c\n", "b.py": "helper = 1\n",
                                  "c.py": "from . import b\n"})
    assert cycles(all_imports(modules)) == []


def test_a_private_name_import_is_reported(tmp_path):
    modules = _package(tmp_path, {
        "a.py": "def _secret():\n    pass\n\n\ndef public():\n    pass\n",
        "b.py": "from .a import public\n\n\ndef f():\n    from .a import _secret as s\n",
        "c.py": "from __future__ import annotations\nfrom . import a\n",
    })
    assert private_imports(all_imports(modules)) == ["pkg.b (line 5) imports pkg.a._secret"]


def test_a_function_of_nine_parameters_is_reported_and_eight_pass(tmp_path):
    modules = _package(tmp_path, {
        "a.py": "def nine(a, b, c, d, e, f, g, h, i):\n    pass\n\n\n"
                "def eight_and_keywords(a, b, c, d, *, e, f, g, h):\n    pass\n\n\n"
                "def starred(a, b, c, d, e, f, g, *args, **kwargs):\n    pass\n\n\n"
                "class C:\n    def method(self, a, b, c, d, e, f, g, h):\n        pass\n",
    })
    assert wide_functions(modules, ("pkg",)) == ["pkg.a.nine (line 1) has 9 parameters",
                                                 "pkg.a.starred (line 9) has 9 parameters"]
    assert wide_functions(modules, ("other",)) == []

"""The package's dependencies point one way: no module imports, directly or through others, a module
that imports it back, and the lower packages do not load what is built on top of them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mixlib import bench
from mixlib.chapters.contents import chapter_modules
from mixlib.code_keys import import_graph

REPOSITORY = Path(__file__).resolve().parents[1]
# modules each package must not load on import: (package, prefixes of modules above it)
LAYERS = [
    (
        "mixlib.mixing",
        ("pytorch_grad_cam", "mixlib.config", "mixlib.training", "mixlib.proxy", "mixlib.runs"),
    ),
    (
        "mixlib.training",
        (
            "mixlib.proxy",
            "mixlib.runs",
            "mixlib.profiles",
            "mixlib.chapters",
            "mixlib.sweep",
            "mixlib.latency",
            "mixlib.bench",
        ),
    ),
    ("mixlib.runs", ("mixlib.profiles", "mixlib.chapters", "mixlib.sweep", "mixlib.latency", "mixlib.bench")),
    ("mixlib.profiles", ("mixlib.chapters", "mixlib.sweep")),
    # the sweep runs the chapters and reads their list; a chapter never loads the sweep (or Dask with it)
    ("mixlib.chapters", ("mixlib.sweep",)),
]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` as [a, b, ..., a], or None (depth-first search)."""
    finished: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        path.append(name)
        for target in sorted(graph[name]):
            if target in path:
                return path[path.index(target) :] + [target]
            if target not in finished and (cycle := visit(target)):
                return cycle
        path.pop()
        finished.add(name)
        return None

    return next((cycle for name in sorted(graph) if name not in finished and (cycle := visit(name))), None)


def test_a_circle_through_a_lazy_import_is_found(tmp_path):
    package = tmp_path / "mixlib"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("from mixlib.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from mixlib import a\n")
    assert find_cycle(import_graph(package)) == ["mixlib.a", "mixlib.sub.b", "mixlib.a"]
    (package / "sub" / "b.py").write_text("def f():\n    return 1\n")
    assert find_cycle(import_graph(package)) is None


def test_mixlib_has_no_import_cycle():
    graph = import_graph()
    assert "mixlib.runs.recipes" in graph["mixlib.runs.train"]  # the walk sees the package's imports
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through other modules."""
    seen: set[str] = set()
    waiting = [start]
    while waiting:
        for target in graph[waiting.pop()] - seen:
            seen.add(target)
            waiting.append(target)
    return seen


def test_no_chapter_module_imports_another():
    """What two chapters share lives in a module of its own, so a chapter is edited without reading
    another."""
    graph = import_graph()
    modules = set(chapter_modules())
    assert modules <= set(graph), modules - set(graph)
    for module in sorted(modules):
        others = sorted(reachable(graph, module) & (modules - {module}))
        assert not others, f"{module} imports {others}"


def test_the_bench_targets_are_edges_from_mixlib_bench():
    """`python -m mixlib bench` imports its targets with import statements, which the graph sees."""
    targets = {module.__name__ for module in bench.targets().values()}
    assert targets <= import_graph()["mixlib.bench"], targets - import_graph()["mixlib.bench"]


def test_no_chapter_loads_the_sweep():
    """An import also runs the `__init__` of each package above the module, which the graph leaves
    out: a chapter that imports `mixlib.bench.mixing` runs `mixlib/bench/__init__.py` first."""
    modules = ", ".join(chapter_modules())
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.startswith('mixlib.sweep')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


@pytest.mark.parametrize(("module", "above"), LAYERS, ids=[module for module, _ in LAYERS])
def test_a_package_does_not_load_what_is_built_on_it(module, above):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({above!r})))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


def readme_layers() -> list[list[str]]:
    """The package rows of the README's layout table, in order: each row's paths, e.g.
    ["mixlib/registry.py", "mixlib/checks.py"] or ["mixlib/runs/"]."""
    section = (REPOSITORY / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cell = line.split("|")[1].strip() if line.startswith("| `mixlib/") else ""
        paths = re.findall(r"`([^`]+)`", cell)
        if paths and not paths[0].endswith(".yml"):
            rows.append([path if path.startswith("mixlib/") else f"mixlib/{path}" for path in paths])
    return rows


def readme_row(module: str, layers: list[list[str]]) -> int:
    """The index of the row that lists `module`'s file or one of its packages."""
    path = module.replace(".", "/")
    for index, paths in enumerate(layers):
        if any(entry == f"{path}.py" or f"{path}/".startswith(entry) for entry in paths):
            return index
    raise AssertionError(f"{module} is not in the README's layout table")


def test_the_readme_layout_lists_every_module_below_what_imports_it():
    layers = readme_layers()
    for paths in layers:
        for path in paths:
            assert (REPOSITORY / path).exists(), f"the README lists {path}, which does not exist"
    for module, imported in import_graph().items():
        for target in imported:
            assert readme_row(target, layers) <= readme_row(module, layers), f"{module} imports {target}"

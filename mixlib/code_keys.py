"""Keys of the code a stage executes: what is reused follows the code's meaning, not its bytes.

A run's training, its evaluation and each chapter are reused for as long as the code they execute is
unchanged. Two choices make "unchanged" mean what a researcher expects:

- *Which code*: the package modules that the stage's entry module imports, directly or through other
  modules (`import_graph`, read off the source with `ast`, imports inside functions included), not the
  whole package. A caller can leave modules out of the walk (`imported_closure`'s `leave_out`): a
  CutMix run walks past the other mixing methods' modules, which the mixing package imports to
  register them but which a CutMix run never executes.
- *What counts as a change*: each module is hashed as its syntax tree with every docstring removed
  (`normalised_source`). Comments never reach the tree and the dump leaves out line numbers, so
  rewording a docstring or a comment, or reflowing code, changes no key; renaming a variable does.

Everything here reads source files only (nothing is imported), so a key can be computed for a copy of
the package in a test, and each file's digest is cached by its size and modification time.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).parent


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """`mixlib/runs/train.py` -> `mixlib.runs.train`; a package's `__init__.py` is the package."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def imported_names(tree: ast.AST, modules: Iterable[str]) -> set[str]:
    """The modules among `modules` that the code of `tree` imports anywhere, inside functions too.
    `from a import b` imports `a.b` where that is a module, else `a`."""
    known = set(modules)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                imported.add(submodule if submodule in known else node.module)
    return imported & known


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports (`imported_names` of its source); cached while no file
    of the package changes size or modification time (a report asks once per run and chapter)."""
    files = tuple((str(path), *file_stamp(path)) for path in package_modules(package).values())
    return {name: set(imported) for name, imported in cached_import_graph(str(package), files).items()}


@lru_cache(maxsize=8)
def cached_import_graph(package: str, files: tuple) -> dict[str, frozenset[str]]:
    modules = package_modules(Path(package))
    return {
        name: frozenset(imported_names(ast.parse(path.read_text()), modules))
        for name, path in modules.items()
    }


def imported_closure(
    entries: Iterable[str], graph: dict[str, set[str]], leave_out: Iterable[str] = ()
) -> set[str]:
    """`entries` and every module they import through the graph, never entering `leave_out`."""
    excluded = set(leave_out)
    found: set[str] = set()
    waiting = [name for name in entries if name not in excluded]
    while waiting:
        name = waiting.pop()
        if name not in found:
            found.add(name)
            waiting.extend(graph[name] - excluded - found)
    return found


def normalised_source(source: str) -> str:
    """The syntax tree of `source` without docstrings, as text: equal for two sources that differ only
    in docstrings, comments and layout."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def code_key(modules: Iterable[str], package: Path = PACKAGE) -> str:
    """One hash of the named modules' normalised source, with their names."""
    paths = package_modules(package)
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode())
        digest.update(module_digest(paths[name]).encode())
    return digest.hexdigest()[:16]


def module_digest(path: Path) -> str:
    return cached_module_digest(str(path), *file_stamp(path))


def file_stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4096)
def cached_module_digest(path: str, mtime_ns: int, size: int) -> str:
    """A module's digest, recomputed whenever the file's size or modification time moves."""
    return hashlib.sha256(normalised_source(Path(path).read_text()).encode()).hexdigest()

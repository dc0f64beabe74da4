"""The key the report executes a notebook again by: its parameters, its template, the package code
the template executes, and the records and files it reads.

The package code is that of `mixlib.code_keys`: the modules the template's code cells import and what
they import in turn, each hashed without docstrings and comments. A run notebook walks past the other
methods' modules (`mixlib.runs.keys.other_methods_modules`), so an edit of FMix executes no CutMix
run notebook again; a chapter is keyed by everything its template reaches, and by the content of
the records it reads (each run's metrics.json, which carries the run's training and evaluation
keys), so an edit of one chapter's module executes that chapter only.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from mixlib.code_keys import (
    code_key,
    file_stamp,
    import_graph,
    imported_closure,
    imported_names,
    package_modules,
)
from mixlib.config import fingerprint
from mixlib.runs.keys import file_digest

MISSING = "missing"


def notebook_fingerprint(
    parameters: dict, template: Path, code: str, inputs: Iterable[Path], root: Path
) -> str:
    """The key of one executed notebook (`code` from `template_code`). Inputs are named relative to
    `root`, the repository the report runs in, so a moved or cloned repository keeps its keys."""
    return fingerprint(
        {
            "parameters": parameters,
            "template": file_digest(template),
            "code": code,
            "inputs": {relative_name(path, root): content_digest(path) for path in inputs},
        }
    )


def relative_name(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def template_code(template: Path, leave_out: frozenset[str] = frozenset()) -> str:
    """The key of the package code `template` executes, never entering the modules of `leave_out`."""
    imported = template_imports(str(template), *file_stamp(template))
    return code_key(imported_closure(imported, import_graph(), leave_out))


@lru_cache(maxsize=64)
def template_imports(template: str, mtime_ns: int, size: int) -> frozenset[str]:
    """The package modules the template's code cells import (IPython's magics turned into Python
    first, as the kernel does); cached while the file is unchanged."""
    notebook = nbformat.read(template, as_version=4)
    to_python = TransformerManager().transform_cell
    modules = package_modules()
    imported: set[str] = set()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            imported |= imported_names(ast.parse(to_python(cell.source)), modules)
    return frozenset(imported)


def content_digest(path: Path) -> str:
    """A file's SHA-256, a folder's over every file below it with their names, or MISSING."""
    if path.is_file():
        return file_digest(path)
    if not path.is_dir():
        return MISSING
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file_digest(file).encode())
    return digest.hexdigest()

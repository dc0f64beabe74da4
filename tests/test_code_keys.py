"""Code keys follow meaning, not bytes: a docstring, comment or layout edit changes no key; a run's
training key changes with its own method's code and the shared code, not another method's; the
evaluation key changes with evaluation code only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mixlib.code_keys import PACKAGE, code_key, import_graph, imported_closure, normalised_source
from mixlib.config import RunConfig
from mixlib.runs.keys import evaluation_code, training_code

SOURCE = '''"""A module."""

import math


def area(radius):
    """The area."""
    # pi r squared
    return math.pi * radius**2
'''


@pytest.mark.parametrize(
    ("edited", "same"),
    [
        (SOURCE.replace('"""A module."""', '"""A reworded module docstring."""'), True),
        (SOURCE.replace('"""The area."""', '"""The area of a circle,\n    over two lines."""'), True),
        (SOURCE.replace("# pi r squared", "# the disc's area"), True),
        (
            SOURCE.replace(
                "return math.pi * radius**2", "return (\n        math.pi\n        * radius**2\n    )"
            ),
            True,
        ),
        (SOURCE.replace("radius**2", "radius**3"), False),
        (SOURCE.replace("def area(radius)", "def area(r)").replace("radius**2", "r**2"), False),
        (SOURCE.replace('"""The area."""', '"""The area."""\n    x = "a string statement"'), False),
    ],
    ids=["module docstring", "function docstring", "comment", "layout", "constant", "rename", "statement"],
)
def test_a_module_is_keyed_by_its_syntax_without_docstrings(edited, same):
    assert (normalised_source(edited) == normalised_source(SOURCE)) == same


def write_package(root: Path, modules: dict[str, str]) -> Path:
    for name, source in modules.items():
        path = root / Path(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "mixlib"


def test_the_closure_follows_imports_inside_functions_and_never_enters_what_is_left_out(tmp_path):
    package = write_package(
        tmp_path,
        {
            "mixlib.__init__": "",
            "mixlib.entry": "import mixlib.methods\ndef f():\n    from mixlib.methods import a\n",
            "mixlib.methods.__init__": "from mixlib.methods import a, b\n",
            "mixlib.methods.shared": "",
            "mixlib.methods.a": "from mixlib.methods import shared\n",
            "mixlib.methods.b": "import mixlib.lower\n",
            "mixlib.lower": "",
        },
    )
    graph = import_graph(package)
    assert imported_closure(["mixlib.entry"], graph) == {
        "mixlib.entry",
        "mixlib.methods",
        "mixlib.methods.shared",
        "mixlib.methods.a",
        "mixlib.methods.b",
        "mixlib.lower",
    }
    assert imported_closure(["mixlib.entry"], graph, leave_out={"mixlib.methods.b"}) == {
        "mixlib.entry",
        "mixlib.methods",
        "mixlib.methods.shared",
        "mixlib.methods.a",
    }
    before = code_key(imported_closure(["mixlib.entry"], graph), package)
    (package / "lower.py").write_text("X = 1\n")
    assert code_key(imported_closure(["mixlib.entry"], import_graph(package)), package) != before


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    return shutil.copytree(PACKAGE, tmp_path / "mixlib", ignore=shutil.ignore_patterns("__pycache__"))


def reword_docstring(path: Path) -> None:
    text = path.read_text()
    start = text.index('"""') + 3
    path.write_text(text[:start] + "Reworded for a test. " + text[start:] + "\n# and a comment\n")


def add_code(path: Path) -> None:
    path.write_text(path.read_text() + "\nEDITED_FOR_A_TEST = 1\n")


CONFIGURATIONS = {
    "baseline": RunConfig(),
    "cutmix": RunConfig(method="cutmix"),
    "fmix": RunConfig(method="fmix"),
    "proxy on cutmix": RunConfig(method="proxy", epochs=40, method_params={"mixing": "cutmix"}),
    "seam": RunConfig(lambda_eq=0.1),
}
EVALUATION = "evaluation"
EVERY_RUN = set(CONFIGURATIONS)
# (edited file, how it is edited, the keys that change)
EDITS = [
    ("mixing/cutmix.py", reword_docstring, set()),
    ("mixing/base.py", reword_docstring, set()),
    ("runs/train.py", reword_docstring, set()),
    ("mixing/cutmix.py", add_code, {"cutmix", "proxy on cutmix"}),
    ("mixing/fmix.py", add_code, {"fmix"}),
    ("proxy/rules.py", add_code, {"proxy on cutmix"}),
    # evaluation imports the engine, which imports the mixing package for its types: a shared-code edit
    # retrains every run, so its evaluation would be redone anyway
    ("mixing/base.py", add_code, EVERY_RUN | {EVALUATION}),
    ("training.py", add_code, EVERY_RUN | {EVALUATION}),
    ("cams/losses.py", add_code, EVERY_RUN | {EVALUATION}),
    ("evaluation.py", add_code, {EVALUATION}),
    ("runs/evaluate.py", add_code, {EVALUATION}),
    ("chapters/findings.py", add_code, set()),
    ("sweep/runner.py", add_code, set()),
    ("profiles/__init__.py", add_code, set()),
    ("latency/measure.py", add_code, set()),
]


def keys(package: Path) -> dict[str, str]:
    found = {name: training_code(config, package) for name, config in CONFIGURATIONS.items()}
    return {**found, EVALUATION: evaluation_code(package)}


@pytest.mark.parametrize(
    ("edited", "edit", "changed"), EDITS, ids=[f"{path} {edit.__name__}" for path, edit, _ in EDITS]
)
def test_an_edit_changes_the_keys_of_the_stages_that_execute_it(package_copy, edited, edit, changed):
    before = keys(package_copy)
    edit(package_copy / edited)
    after = keys(package_copy)
    assert {name for name in before if before[name] != after[name]} == changed

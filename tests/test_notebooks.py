"""The templates are papermill templates: a `parameters` cell that covers every run parameter."""

from dataclasses import fields
from pathlib import Path

import pytest

from mixlib.config import RunConfig

from helpers import parameters_cell

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_every_template_has_one_parameters_cell(path):
    assert parameters_cell(path)


def test_train_template_exposes_every_run_parameter():
    defaults = parameters_cell(NOTEBOOKS / "train.ipynb")
    missing = {f.name for f in fields(RunConfig)} - {"seed"} - set(defaults)
    assert not missing, f"train.ipynb parameters cell lacks {sorted(missing)}"
    RunConfig.from_namespace(defaults)  # and its defaults are valid


def test_train_template_fails_on_a_misspelt_parameter(tmp_path):
    papermill = pytest.importorskip("papermill")
    with pytest.raises(
        papermill.PapermillExecutionError, match=r"unknown notebook parameter\(s\) \['epoch'\]"
    ):
        papermill.execute_notebook(
            str(NOTEBOOKS / "train.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"epoch": 3, "runs_dir": str(tmp_path / "runs")},
            cwd=str(tmp_path),
            progress_bar=False,
        )

"""Runs: what a configuration trains with (`recipes`), training one run (`train_run`), reading a
finished one back without training or touching global state (`load_run`), and the run-folder
contract the runner and every chapter go through (`folder`).
"""

from mixlib.runs.folder import (
    FinishedRun,
    RunFolder,
    configuration_folder,
    finished_runs,
    run_folder,
)
from mixlib.runs.load import RunResult, load_run
from mixlib.runs.recipes import RECIPES, Recipe, application_probability, check_recipe, create_recipe
from mixlib.runs.train import build_trainer, train_run

__all__ = [
    "RECIPES",
    "FinishedRun",
    "Recipe",
    "RunFolder",
    "RunResult",
    "application_probability",
    "build_trainer",
    "check_recipe",
    "configuration_folder",
    "create_recipe",
    "finished_runs",
    "load_run",
    "run_folder",
    "train_run",
]

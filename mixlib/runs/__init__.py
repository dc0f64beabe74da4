"""Runs: what a configuration trains with (`recipes`), a run's two stages, training and evaluation,
each reused by its own key (`train_run`, `keys`), reading a finished run back without training or
touching global state (`load_run`), and the run-folder contract the runner and every chapter go
through (`folder`).
"""

from mixlib.runs.folder import (
    FinishedRun,
    RunFolder,
    configuration_folder,
    finished_runs,
    run_folder,
)
from mixlib.runs.load import RunResult, load_run, next_stage
from mixlib.runs.recipes import RECIPES, Recipe, application_probability, check_recipe, create_recipe
from mixlib.runs.stages import train_run
from mixlib.runs.train import build_trainer

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
    "next_stage",
    "run_folder",
    "train_run",
]

"""Reading a finished run back: its model, splits, history and metrics, without training anything;
and which of a run's two stages, if any, must run again (`next_stage`).

`load_run` touches no global state: it neither switches deterministic algorithms on nor seeds or
draws from the global random number generators, so a chapter or a latency measurement that loads a
run works exactly as it would without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from mixlib.config import RunConfig
from mixlib.data import DataSplits
from mixlib.files import load_torch
from mixlib.models import create_model
from mixlib.run_data import load_config_splits
from mixlib.runs.folder import CHECKPOINT, METRICS, RunFolder
from mixlib.runs.keys import evaluation_fingerprint, training_fingerprint
from mixlib.training import select_device

# what a call of `mixlib.runs.stages.train_run` did to a run, and which stage `next_stage` says is due
TRAINED, EVALUATED, REUSED = "trained", "re-evaluated", "reused"
TRAINING_STAGE, EVALUATION_STAGE = "training", "evaluation"


@dataclass
class RunResult:
    config: RunConfig
    run_dir: Path
    model: nn.Module  # in eval mode
    splits: DataSplits
    history: pd.DataFrame
    metrics: dict
    outcome: str = REUSED  # TRAINED, EVALUATED (its checkpoint reused) or REUSED as it was

    @property
    def reused(self) -> bool:
        """Neither trained nor evaluated by this call."""
        return self.outcome == REUSED

    @property
    def trained(self) -> bool:
        return self.outcome == TRAINED


def next_stage(folder: RunFolder, config: RunConfig) -> str | None:
    """TRAINING_STAGE when the run's training records are not whole under its training key, else EVALUATION
    when its evaluation records are not whole under its evaluation key, else None (finished).
    A damaged record is set aside on the way, so that its stage runs again."""
    if folder.training_records(config, training_fingerprint(config)) is None:
        return TRAINING_STAGE
    if folder.evaluation_records(config, evaluation_fingerprint(config, folder.path / CHECKPOINT)) is None:
        return EVALUATION_STAGE
    return None


def finished_state(folder: RunFolder, config: RunConfig) -> tuple[dict, dict] | None:
    """(metrics, last checkpoint) of a run folder whose two stages are both current for `config` and the
    current code, with whole records (`next_stage`), else None."""
    training = folder.training_records(config, training_fingerprint(config))
    if training is None:
        return None
    evaluation = folder.evaluation_records(config, evaluation_fingerprint(config, folder.path / CHECKPOINT))
    return None if evaluation is None else (evaluation[METRICS], training[CHECKPOINT])


def build_model(config: RunConfig, num_classes: int) -> nn.Module:
    """The configuration's network with fresh weights (drawn from the global generator)."""
    return create_model(
        config.model, num_classes, config.image_size, config.small_input, config.min_feature_size
    )


def model_from_checkpoint(
    config: RunConfig, folder: RunFolder, num_classes: int, state: dict | None = None
) -> nn.Module:
    """The network with the weights of the folder's checkpoint (or of `state`, already read), in eval
    mode on the CPU; the global random stream is left as it was (the initial weights are overwritten)."""
    state = load_torch(folder.path / CHECKPOINT) if state is None else state
    with torch.random.fork_rng(devices=[]):
        model = build_model(config, num_classes)
    model.load_state_dict(state["model"])
    return model.eval()


def load_run(run_dir: str | Path, expected: RunConfig | None = None, outcome: str = REUSED) -> RunResult:
    """A finished run folder as a RunResult (weights loaded, eval mode, on the config's device).

    Fails clearly when the folder is unfinished, was made by other code, or (given `expected`) was
    trained with other parameters. `outcome` is what the caller did to the run before reading it.
    """
    folder = RunFolder(Path(run_dir))
    config = folder.read_config()
    if expected is not None and config != expected:
        raise ValueError(f"{folder.path} was trained with other parameters than {expected}")
    finished = finished_state(folder, config)
    if finished is None:
        raise FileNotFoundError(
            f"{folder.path} has no finished run for the current code; run the report first"
        )
    metrics, state = finished
    splits = load_config_splits(config)
    model = model_from_checkpoint(config, folder, len(splits.classes), state)
    model = model.to(select_device(config.device))
    return RunResult(config, folder.path, model, splits, folder.read_history(), metrics, outcome)

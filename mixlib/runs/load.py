"""Reading a finished run back: its model, splits, history and metrics, without training anything.

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
from mixlib.models import create_model
from mixlib.run_data import load_config_splits
from mixlib.runs.folder import METRICS, RunFolder
from mixlib.training import CHECKPOINT, run_fingerprint, select_device


@dataclass
class RunResult:
    config: RunConfig
    run_dir: Path
    model: nn.Module  # in eval mode
    splits: DataSplits
    history: pd.DataFrame
    metrics: dict
    reused: bool  # read from a finished folder rather than trained by this call


def finished_state(folder: RunFolder, config: RunConfig) -> tuple[dict, dict] | None:
    """(metrics, last checkpoint) of a run folder finished with `config` and the current code, whose
    records are all whole (`RunFolder.whole_records`), else None.

    A damaged record is set aside (the run resumes or trains again); a checkpoint of an earlier epoch
    than the last, or of other parameters or code, does not count.
    """
    records = folder.whole_records(config)
    if records is None:
        return None
    state = records[CHECKPOINT]
    if state["fingerprint"] != run_fingerprint(config) or len(state["history"]) != config.epochs:
        return None
    return records[METRICS], state


def build_model(config: RunConfig, num_classes: int) -> nn.Module:
    """The configuration's network with fresh weights (drawn from the global generator)."""
    return create_model(
        config.model, num_classes, config.image_size, config.small_input, config.min_feature_size
    )


def load_run(run_dir: str | Path, expected: RunConfig | None = None) -> RunResult:
    """A finished run folder as a RunResult (weights loaded, eval mode, on the config's device).

    Fails clearly when the folder is unfinished, was made by other code, or (given `expected`) was
    trained with other parameters.
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
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the caller's stream
        model = build_model(config, len(splits.classes))
    model.load_state_dict(state["model"])
    model = model.to(select_device(config.device)).eval()
    return RunResult(config, folder.path, model, splits, folder.read_history(), metrics, reused=True)

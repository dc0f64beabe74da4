"""A run as two stages, each redone only when its own key no longer holds (`mixlib.runs.keys`):
training writes the checkpoint and the training record (`mixlib.runs.train`), evaluation scores that
checkpoint and writes the metrics and per-image predictions (`mixlib.runs.evaluate`).

`train_run` is what the training template and `python -m mixlib tune` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from mixlib.config import RunConfig
from mixlib.losses import LossTerm
from mixlib.runs.evaluate import evaluate_checkpoint
from mixlib.runs.folder import TRAINING, RunFolder
from mixlib.runs.keys import evaluation_fingerprint, training_fingerprint
from mixlib.runs.load import EVALUATED, REUSED, TRAINED, RunResult, load_run
from mixlib.runs.recipes import create_recipe
from mixlib.runs.train import train_checkpoint
from mixlib.training import CHECKPOINT, Callback


def train_run(
    config: RunConfig,
    run_dir: str | Path,
    loss_terms: Sequence[LossTerm] = (),
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> RunResult:
    """Train (or resume, or reuse) one seed of one configuration, evaluate it (or reuse its evaluation),
    and return it read back from its run folder (`RunResult.outcome` says which stages ran).

    The configuration's recipe (`mixlib.runs.recipes`) gives the batch transform, the CAM loss terms
    and the method's callbacks; `loss_terms` and `callbacks` add others. A stage whose records are whole
    under its key is reused; a matching `checkpoint.pt` is resumed; anything else starts from scratch.
    The folder is locked meanwhile: another process training the same run waits for this one and then
    reuses its result.
    """
    recipe = create_recipe(config)  # a bad method fails before anything is read or written
    recipe = replace(
        recipe, loss_terms=(*recipe.loss_terms, *loss_terms), callbacks=(*recipe.callbacks, *callbacks)
    )
    folder = RunFolder(Path(run_dir))
    with folder.lock():
        outcome = REUSED
        records = folder.training_records(config, training_fingerprint(config))
        if records is None:
            training = train_checkpoint(config, folder, recipe, progress)
            outcome = TRAINED
        else:
            training = records[TRAINING]
        evaluation_key = evaluation_fingerprint(config, folder.path / CHECKPOINT)
        if folder.evaluation_records(config, evaluation_key) is None:
            evaluate_checkpoint(config, folder, training, evaluation_key)
            outcome = EVALUATED if outcome == REUSED else outcome
        return load_run(folder.path, config, outcome)

"""Training one run: compose the engine for a configuration, train, evaluate, write the run folder.

`train_run` is what the training template and `python -m mixlib tune` call; `build_trainer` is the
engine built exactly as `train_run` builds it, which `python -m mixlib bench training` times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from mixlib.config import RunConfig
from mixlib.evaluation import localisation_scores
from mixlib.losses import LossTerm
from mixlib.metrics import classification_metrics
from mixlib.run_data import build_datasets, build_eval_dataset, load_config_splits
from mixlib.runs.folder import RunFolder
from mixlib.runs.load import RunResult, build_model, finished_state, load_run
from mixlib.runs.recipes import Recipe, create_recipe
from mixlib.training import (
    Callback,
    Trainer,
    find_batch_size,
    predict,
    read_checkpoint,
    run_fingerprint,
    seed_everything,
    select_device,
    set_deterministic,
)


def train_run(
    config: RunConfig,
    run_dir: str | Path,
    loss_terms: Sequence[LossTerm] = (),
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> RunResult:
    """Train (or resume, or reuse) one seed of one configuration and write its run folder.

    The configuration's recipe (`mixlib.runs.recipes`) gives the batch transform, the CAM loss terms
    and the method's callbacks; `loss_terms` and `callbacks` add others.

    A folder whose records are whole (`RunFolder.whole_records`) and carry this config's and code's
    fingerprint is reused as it is (`load_run`); a matching `checkpoint.pt` is resumed; anything else
    starts from scratch. The folder is locked meanwhile: another process training the same run waits
    for this one and then reuses its result.
    """
    recipe = create_recipe(config)  # a bad method fails before anything is read or written
    folder = RunFolder(Path(run_dir))
    with folder.lock():
        if finished_state(folder, config) is not None:
            return load_run(folder.path, config)
        return train_new(config, folder, recipe, loss_terms, callbacks, progress)


def train_new(
    config: RunConfig,
    folder: RunFolder,
    recipe: Recipe,
    loss_terms: Sequence[LossTerm],
    callbacks: Sequence[Callback],
    progress: bool,
) -> RunResult:
    """`train_run` for a folder with no finished run: train from its checkpoint or from scratch."""
    set_deterministic(config.deterministic)
    seed_everything(config.seed)
    recipe = replace(
        recipe,
        loss_terms=(*recipe.loss_terms, *loss_terms),
        callbacks=(*recipe.callbacks, *callbacks),
    )
    trainer = build_trainer(config, folder, recipe, progress)
    history = pd.DataFrame(trainer.fit())
    metrics, predictions = evaluate(trainer, history)
    folder.write_predictions(predictions)  # before metrics.json, whose presence marks the run finished
    folder.write_metrics(metrics)
    model = trainer.model.eval()
    return RunResult(config, folder.path, model, trainer.splits, history, metrics, reused=False)


def build_trainer(config: RunConfig, folder: RunFolder, recipe: Recipe, progress: bool = True) -> Trainer:
    """The engine for `config` in `folder`: its splits, a fresh model (drawn from the global generator,
    so seed it first), the stored training images, the batch size and the recipe; writes config.json."""
    device = select_device(config.device)
    splits = load_config_splits(config)
    model = build_model(config, len(splits.classes)).to(device)
    datasets = build_datasets(config, splits, device)
    folder.write_config(config)
    classes, images = len(splits.classes), len(datasets["train"])
    batch_size = resolve_batch_size(config, model, classes, device, images, folder)
    return Trainer(
        config,
        folder.path,
        model,
        splits,
        datasets["train"],
        datasets["val"],
        device,
        batch_size,
        recipe.batch_transform,
        recipe.loss_terms,
        recipe.callbacks,
        progress,
    )


def resolve_batch_size(
    config: RunConfig,
    model: nn.Module,
    num_classes: int,
    device: torch.device,
    dataset_size: int,
    folder: RunFolder,
) -> int:
    """An explicit batch size, the one a checkpoint was trained with, or the finder's answer."""
    if config.batch_size != "auto":
        return int(config.batch_size)
    state = read_checkpoint(folder.path, run_fingerprint(config))
    if state is not None:
        return int(state["batch_size"])
    return find_batch_size(
        model, (3, config.image_size, config.image_size), num_classes, device, dataset_size
    )


def evaluate(trainer: Trainer, history: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """The run's metrics.json (test metrics, localisation scores, the callbacks' entries and what the
    run was: fingerprint, seed, batch size, device, threads, images, skipped files) and its
    predictions.csv (one row per test image)."""
    config, splits = trainer.config, trainer.splits
    test_set = build_eval_dataset(config, splits.test)
    logits, labels = predict(trainer.model, trainer.eval_loader(test_set), trainer.device)
    metrics = classification_metrics(logits, labels, len(splits.classes))
    metrics["localisation"], localisation = localisation_scores(
        trainer.model, trainer.val_set, test_set, config.cam_method
    )
    for callback in trainer.callbacks:
        metrics.update(callback.run_metrics(trainer))
    datasets = (trainer.train_set, trainer.val_set, test_set)
    metrics.update(
        fingerprint=trainer.fingerprint,
        seed=config.seed,
        batch_size=trainer.batch_size,
        device=str(trainer.device),
        threads=torch.get_num_threads(),
        train_images=len(trainer.train_set),
        epoch_seconds=float(history["epoch_seconds"].mean()),
        corrupt_images_skipped=len(splits.skipped) + sum(len(d.skipped) for d in datasets),
        skipped_files=[*splits.skipped, *(path for d in datasets for path in d.skipped)],
        dropped_classes=splits.dropped_classes,
    )
    return metrics, pd.concat([test_predictions(logits, labels), localisation], axis=1)


def test_predictions(logits: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """One row per test image: true class, predicted class, its softmax confidence and the logits."""
    logits = logits.float()
    confidence, predicted = logits.softmax(dim=1).max(dim=1)
    frame = pd.DataFrame(
        {"label": labels.numpy(), "predicted": predicted.numpy(), "confidence": confidence.numpy()}
    )
    logit_columns = pd.DataFrame(logits.numpy(), columns=[f"logit_{k}" for k in range(logits.shape[1])])
    return pd.concat([frame, logit_columns], axis=1)

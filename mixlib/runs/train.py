"""The training stage of a run: compose the engine for a configuration, train (or resume) it, and
write the training record. Evaluation is the next stage, in `mixlib.runs.evaluate`, and
`mixlib.runs.stages.train_run` runs both.

`build_trainer` is the engine built exactly as training builds it, which `python -m mixlib bench
training` times. What this module imports is the code a run's training key hashes
(`mixlib.runs.keys`), so it imports nothing of evaluation.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from mixlib.config import RunConfig
from mixlib.run_data import build_datasets, load_config_splits
from mixlib.runs.folder import RunFolder
from mixlib.runs.keys import training_fingerprint
from mixlib.runs.load import build_model
from mixlib.runs.recipes import Recipe
from mixlib.training import (
    Trainer,
    find_batch_size,
    read_checkpoint,
    seed_everything,
    select_device,
    set_deterministic,
)


def train_checkpoint(config: RunConfig, folder: RunFolder, recipe: Recipe, progress: bool = True) -> dict:
    """Train `config` in `folder` from its last whole checkpoint under the run's training key, or from
    scratch, and write training.json last; returns that record."""
    folder.training_file.unlink(missing_ok=True)  # a stage under way has no record, so none can look whole
    set_deterministic(config.deterministic)
    seed_everything(config.seed)
    trainer = build_trainer(config, folder, recipe, progress)
    history = pd.DataFrame(trainer.fit())
    record = training_record(trainer, history)
    folder.write_training(record)
    return record


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
        training_fingerprint(config),
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
    state = read_checkpoint(folder.path, training_fingerprint(config))
    if state is not None:
        return int(state["batch_size"])
    return find_batch_size(
        model, (3, config.image_size, config.image_size), num_classes, device, dataset_size
    )


def training_record(trainer: Trainer, history: pd.DataFrame) -> dict:
    """training.json: the training key, what the run was (seed, batch size, device, threads, images,
    mean epoch time, the files skipped as unreadable) and the callbacks' entries."""
    config, splits = trainer.config, trainer.splits
    record = {
        "fingerprint": trainer.fingerprint,
        "seed": config.seed,
        "batch_size": trainer.batch_size,
        "device": str(trainer.device),
        "threads": torch.get_num_threads(),
        "train_images": len(trainer.train_set),
        "epoch_seconds": float(history["epoch_seconds"].mean()),
        "skipped_files": [*splits.skipped, *trainer.train_set.skipped, *trainer.val_set.skipped],
        "dropped_classes": splits.dropped_classes,
    }
    for callback in trainer.callbacks:
        record.update(callback.run_metrics(trainer))
    return record

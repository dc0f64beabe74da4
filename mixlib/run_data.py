"""A run's data, read from its RunConfig: the fixed splits, the stored training images and the
evaluation sets.

The engine, the Proxy Attention callback, the run recipes and the chapters all need the same data of
one configuration; this module is the one place that turns the configuration's data fields into it.
"""

from __future__ import annotations

import torch

from mixlib.config import RunConfig
from mixlib.data import (
    AnnotatedImageDataset,
    DataSplits,
    ImageRecord,
    TrainingImages,
    eval_transform,
    load_splits,
    load_training_images,
)


def load_config_splits(config: RunConfig) -> DataSplits:
    """The configuration's train/validation/test split (fixed by `split_seed`, not by the run's seed)."""
    return load_splits(
        config.dataset,
        config.data_root,
        config.images_per_class,
        config.val_per_class,
        config.test_per_class,
        config.image_size,
        config.split_seed,
        config.short_classes,
    )


def build_eval_dataset(config: RunConfig, records: list[ImageRecord]) -> AnnotatedImageDataset:
    """Validation/test images, resized to the training size; large sources are cached at twice that."""
    return AnnotatedImageDataset(records, eval_transform(config.image_size), 2 * config.image_size)


def build_datasets(
    config: RunConfig, splits: DataSplits, device: torch.device
) -> dict[str, TrainingImages | AnnotatedImageDataset]:
    """The training split as stored tensors on `device`; the validation and test sets."""
    return {
        "train": load_training_images(
            splits.train, config.image_size, device, config.memory_budget_gib, config.num_workers
        ),
        "val": build_eval_dataset(config, splits.val),
        "test": build_eval_dataset(config, splits.test),
    }

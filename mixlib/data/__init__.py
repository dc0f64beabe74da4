"""Datasets: sources by name, fixed seeded splits, the stored training tensors and their batched
augmentation (boxes and masks follow it), the evaluation transform."""

from __future__ import annotations

from mixlib.data.augment import AugmentedBatch, BatchAugment
from mixlib.data.dataset import AnnotatedImageDataset
from mixlib.data.records import DataSplits, ImageRecord, SourceData
from mixlib.data.sources import DATASETS, default_cache_dir
from mixlib.data.splits import stratified_split, stratified_subsample
from mixlib.data.stored import (
    DEFAULT_MEMORY_BUDGET_GIB,
    ImageTensors,
    ResidentImages,
    StreamedImages,
    TrainingImages,
    load_training_images,
)
from mixlib.data.transforms import denormalise, eval_transform

__all__ = [
    "DATASETS",
    "DEFAULT_MEMORY_BUDGET_GIB",
    "AnnotatedImageDataset",
    "AugmentedBatch",
    "BatchAugment",
    "DataSplits",
    "ImageRecord",
    "ImageTensors",
    "ResidentImages",
    "SourceData",
    "StreamedImages",
    "TrainingImages",
    "default_cache_dir",
    "denormalise",
    "eval_transform",
    "load_splits",
    "load_training_images",
    "stratified_split",
    "stratified_subsample",
]


def load_splits(
    dataset: str,
    data_root: str | None = None,
    images_per_class: int = 300,
    val_per_class: int = 50,
    test_per_class: int | None = None,
    image_size: int = 64,
    split_seed: int = 0,
) -> DataSplits:
    """Read a dataset and draw its fixed splits; `split_seed` is independent of the training seed."""
    source = DATASETS.get(dataset, "dataset")(
        data_root=data_root,
        images_per_class=images_per_class,
        val_per_class=val_per_class,
        test_per_class=test_per_class,
        image_size=image_size,
        seed=split_seed,
    )
    train, val = stratified_split(
        source.train_pool, len(source.classes), images_per_class, val_per_class, split_seed
    )
    test = stratified_subsample(source.test, test_per_class, split_seed)
    return DataSplits(
        train=train,
        val=val,
        test=test,
        classes=source.classes,
        class_names=source.class_names or source.classes,
        has_boxes=source.has_boxes,
        has_masks=source.has_masks,
    )

"""Datasets: sources by name, fixed seeded splits, transforms that carry boxes and masks."""

from __future__ import annotations

from mixlib.data.dataset import AnnotatedImageDataset
from mixlib.data.records import DataSplits, ImageRecord, SourceData
from mixlib.data.sources import DATASETS, check_data_root, default_cache_dir
from mixlib.data.splits import stratified_split, stratified_subsample
from mixlib.data.transforms import denormalise, eval_transform, train_transform

__all__ = [
    "DATASETS",
    "AnnotatedImageDataset",
    "DataSplits",
    "ImageRecord",
    "SourceData",
    "check_data_root",
    "default_cache_dir",
    "denormalise",
    "eval_transform",
    "load_splits",
    "stratified_split",
    "stratified_subsample",
    "train_transform",
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

"""Datasets: sources by name, fixed seeded splits, the stored training tensors and their batched
augmentation (boxes and masks follow it), the evaluation transform."""

from __future__ import annotations

import warnings
from dataclasses import replace

from mixlib.data.augment import AugmentedBatch, BatchAugment
from mixlib.data.dataset import AnnotatedImageDataset
from mixlib.data.records import DataSplits, ImageRecord, SourceData
from mixlib.data.sources import DATASETS, check_data_root, default_cache_dir
from mixlib.data.splits import readable, stratified_split, stratified_subsample
from mixlib.data.stored import (
    DEFAULT_MEMORY_BUDGET_GIB,
    ImageTensors,
    ResidentImages,
    StreamedImages,
    TrainingImages,
    load_training_images,
)
from mixlib.data.transforms import denormalise, eval_transform

# an image file declaring more than this many pixels per pixel of the run's image_size x image_size is
# refused unread (a few KB of PNG can declare 100 megapixels, gigabytes once decoded)
MAX_PIXELS_PER_PIXEL = 64

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
    "check_data_root",
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
    short_classes: str = "fail",
) -> DataSplits:
    """Read a dataset and draw its fixed splits; `split_seed` is independent of the training seed.

    Unreadable images, and images of more than `MAX_PIXELS_PER_PIXEL` times image_size x image_size
    pixels (refused from their header, before decoding), are left out while drawing
    (`DataSplits.skipped`). A class with fewer readable
    training images than images_per_class + val_per_class fails the call, naming every such class
    (`short_classes="fail"`), or leaves the data set with its test images (`"drop"`, then listed in
    `DataSplits.dropped_classes` and the other classes renumbered).
    """
    source = DATASETS.get(dataset, "dataset")(
        data_root=data_root,
        images_per_class=images_per_class,
        val_per_class=val_per_class,
        test_per_class=test_per_class,
        image_size=image_size,
        seed=split_seed,
    )
    skipped: list[str] = []

    def usable(record: ImageRecord) -> bool:
        if readable(record, max_pixels=MAX_PIXELS_PER_PIXEL * image_size**2):
            return True
        skipped.append(str(record.path))
        return False

    train, val, short = stratified_split(
        source.train_pool, len(source.classes), images_per_class, val_per_class, split_seed, usable
    )
    test = stratified_subsample(source.test, test_per_class, split_seed, usable)
    splits = DataSplits(
        train=train,
        val=val,
        test=test,
        classes=source.classes,
        class_names=source.class_names or source.classes,
        has_boxes=source.has_boxes,
        has_masks=source.has_masks,
        skipped=skipped,
    )
    if not short:
        return splits
    needed = images_per_class + val_per_class
    listing = ", ".join(f"{source.classes[label]!r} ({count})" for label, count in short.items())
    problem = (
        f"{len(short)} class folder(s) of {dataset!r} have fewer readable training images than "
        f"images_per_class + val_per_class = {needed}: {listing}"
    )
    if short_classes == "fail":
        raise ValueError(
            f"{problem}; add images, lower images_per_class or val_per_class, or set "
            "short_classes: drop to leave these classes out"
        )
    return drop_classes(splits, set(short), problem)


def drop_classes(splits: DataSplits, labels: set[int], problem: str) -> DataSplits:
    """`splits` without the classes `labels`, the other classes renumbered 0..k-1 in their order."""
    kept = [label for label in range(len(splits.classes)) if label not in labels]
    if len(kept) < 2:
        raise ValueError(
            f"{problem}; short_classes: drop would leave {len(kept)} class(es), at least 2 are needed"
        )
    warnings.warn(f"{problem}; dropped (short_classes: drop)", stacklevel=3)
    number = {old: new for new, old in enumerate(kept)}

    def renumber(records: list[ImageRecord]) -> list[ImageRecord]:
        return [replace(r, label=number[r.label]) for r in records if r.label in number]

    return replace(
        splits,
        train=renumber(splits.train),
        val=renumber(splits.val),
        test=renumber(splits.test),
        classes=[splits.classes[label] for label in kept],
        class_names=[splits.class_names[label] for label in kept],
        dropped_classes=[splits.classes[label] for label in sorted(labels)],
    )

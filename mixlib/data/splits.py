"""Stratified, seeded subsampling: the same records for every run and every method."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from mixlib.data.records import ImageRecord


def group_by_label(records: list[ImageRecord]) -> dict[int, list[ImageRecord]]:
    groups: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: str(r.path)):
        groups[record.label].append(record)
    return dict(sorted(groups.items()))


def stratified_split(
    pool: list[ImageRecord], num_classes: int, images_per_class: int, val_per_class: int, seed: int
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Draw `images_per_class` training and `val_per_class` validation records per class, disjoint.

    Sorting by path before the seeded shuffle makes the split independent of file-system order.
    """
    train: list[ImageRecord] = []
    val: list[ImageRecord] = []
    rng = np.random.default_rng(seed)
    groups = group_by_label(pool)
    for label in range(num_classes):
        records = groups.get(label, [])
        needed = images_per_class + val_per_class
        if len(records) < needed:
            raise ValueError(
                f"class {label} has {len(records)} training images, fewer than images_per_class + "
                f"val_per_class = {needed}; lower images_per_class or val_per_class"
            )
        order = rng.permutation(len(records))
        train += [records[i] for i in order[:images_per_class]]
        val += [records[i] for i in order[images_per_class:needed]]
    return train, val


def stratified_subsample(records: list[ImageRecord], per_class: int | None, seed: int) -> list[ImageRecord]:
    """At most `per_class` records of each class (all of them when `per_class` is None)."""
    if per_class is None:
        return sorted(records, key=lambda r: str(r.path))
    rng = np.random.default_rng(seed)
    kept: list[ImageRecord] = []
    for group in group_by_label(records).values():
        order = rng.permutation(len(group))[:per_class]
        kept += [group[i] for i in sorted(order)]
    return kept

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


def stratified_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Sorted indices of `count` items (all when there are fewer), spread as evenly over classes as
    their sizes allow, drawn with a seeded generator: with `count` >= the number of classes, every
    class is in.

    Classes take turns: a random member of every class, then a second of every class, and so on, the
    classes of the last, incomplete turn chosen at random. Hand-written because scikit-learn's
    stratified splits allocate in proportion to class size and need two members per class.
    """
    labels = np.asarray(labels).reshape(-1)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if count >= len(labels):
        return np.arange(len(labels))
    order = np.random.default_rng(seed).permutation(len(labels))
    turn = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = order[labels[order] == label]
        turn[members] = np.arange(len(members))
    return np.sort(order[np.argsort(turn[order], kind="stable")][:count])

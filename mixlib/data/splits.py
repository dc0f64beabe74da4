"""Stratified, seeded subsampling: the same records for every run and every method.

Unreadable images are left out while the records are drawn, so they never take a place in a split:
each class walks its seeded permutation and takes the first images that decode.
"""

from __future__ import annotations

import functools
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from mixlib.data.records import ImageRecord

Usable = Callable[[ImageRecord], bool]


def group_by_label(records: list[ImageRecord]) -> dict[int, list[ImageRecord]]:
    groups: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: str(r.path)):
        groups[record.label].append(record)
    return dict(sorted(groups.items()))


def readable(record: ImageRecord, max_pixels: int | None = None) -> bool:
    """Whether the image file decodes and, given `max_pixels`, declares no more pixels than that; a
    file that does not is reported with a warning."""
    path = Path(record.path)
    try:
        stamp = path.stat()
    except OSError as error:
        problem = str(error)
    else:
        problem = _problem(path, stamp.st_mtime_ns, stamp.st_size, max_pixels)
    if problem is None:
        return True
    warnings.warn(f"skipping unreadable image {path}: {problem}", stacklevel=2)
    return False


@functools.cache
def _problem(path: Path, modified_ns: int, size: int, max_pixels: int | None) -> str | None:
    """Why the file is unusable, or None; decoded once per file version (seeds of one configuration
    share a process). The size is read from the header and checked before decoding, so a small file
    declaring a huge image costs no memory. JPEGs decode at reduced scale (`draft`), which still
    reads the whole compressed stream, so truncation shows."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                return f"it declares {width}x{height} pixels, more than the {max_pixels} allowed"
            image.draft("RGB", (1, 1))
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"it does not decode ({error})"
    return None


def take_usable(
    records: list[ImageRecord], order: np.ndarray, count: int | None, usable: Usable
) -> list[int]:
    """Indices of the first `count` usable records in `order` (all usable ones when `count` is None)."""
    taken: list[int] = []
    for index in order:
        if count is not None and len(taken) == count:
            break
        if usable(records[index]):
            taken.append(int(index))
    return taken


def stratified_split(
    pool: list[ImageRecord],
    num_classes: int,
    images_per_class: int,
    val_per_class: int,
    seed: int,
    usable: Usable = readable,
) -> tuple[list[ImageRecord], list[ImageRecord], dict[int, int]]:
    """Draw `images_per_class` training and `val_per_class` validation records per class, disjoint.

    Returns train, validation and the short classes: label -> usable images, for every class with
    fewer than images_per_class + val_per_class (those classes contribute nothing). Every class
    draws its permutation whether or not it is short, so dropping one never changes another's split.
    Sorting by path before the seeded shuffle makes the split independent of file-system order.
    """
    train: list[ImageRecord] = []
    val: list[ImageRecord] = []
    short: dict[int, int] = {}
    rng = np.random.default_rng(seed)
    groups = group_by_label(pool)
    needed = images_per_class + val_per_class
    for label in range(num_classes):
        records = groups.get(label, [])
        taken = take_usable(records, rng.permutation(len(records)), needed, usable)
        if len(taken) < needed:
            short[label] = len(taken)
            continue
        train += [records[i] for i in taken[:images_per_class]]
        val += [records[i] for i in taken[images_per_class:]]
    return train, val, short


def stratified_subsample(
    records: list[ImageRecord], per_class: int | None, seed: int, usable: Usable = readable
) -> list[ImageRecord]:
    """At most `per_class` usable records of each class (all usable ones when `per_class` is None)."""
    rng = np.random.default_rng(seed)
    kept: list[ImageRecord] = []
    for group in group_by_label(records).values():
        order = rng.permutation(len(group)) if per_class is not None else np.arange(len(group))
        kept += [group[i] for i in sorted(take_usable(group, order, per_class, usable))]
    return kept if per_class is not None else sorted(kept, key=lambda r: str(r.path))


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

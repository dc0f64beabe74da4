"""Plain records describing a dataset on disk, shared by every dataset source."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ImageRecord:
    """One image file with its label and, where the dataset has them, a box and a mask file.

    `box` is (x0, y0, x1, y1) in pixels of the file as stored, x1/y1 exclusive.
    """

    path: Path
    label: int
    box: tuple[float, float, float, float] | None = None
    mask_path: Path | None = None


@dataclass
class SourceData:
    """What a dataset source yields: a training pool, a held-out test set and the class names."""

    train_pool: list[ImageRecord]
    test: list[ImageRecord]
    classes: list[str]
    class_names: list[str] = field(default_factory=list)

    @property
    def has_boxes(self) -> bool:
        return all(r.box is not None for r in self.train_pool + self.test)

    @property
    def has_masks(self) -> bool:
        return all(r.mask_path is not None for r in self.train_pool + self.test)


@dataclass
class DataSplits:
    """Fixed train/validation/test records. Validation is carved from the training pool, never from test."""

    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]
    classes: list[str]
    class_names: list[str]
    has_boxes: bool
    has_masks: bool
    skipped: list[str] = field(default_factory=list)  # unreadable files left out while drawing
    dropped_classes: list[str] = field(default_factory=list)  # short classes left out (short_classes: drop)

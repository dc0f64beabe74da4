"""An in-memory image dataset that returns boxes and masks transformed together with the image."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from mixlib.data.records import ImageRecord


class AnnotatedImageDataset(Dataset):
    """Decodes every image once (small-data regime: a few thousand images fit in memory easily).

    Images larger than `max_side` are downscaled at load time, with their boxes and masks.
    Corrupt or unreadable files are skipped with a warning and listed in `skipped`.
    """

    def __init__(self, records: list[ImageRecord], transform: Callable, max_side: int | None = None) -> None:
        self.transform = transform
        self.records: list[ImageRecord] = []
        self.samples: list[dict] = []
        self.skipped: list[str] = []
        shrink = v2.Resize(max_side, max_size=None, antialias=True) if max_side else None
        for record in records:
            sample = self._load(record)
            if sample is None:
                continue
            if shrink is not None and max(sample["image"].shape[-2:]) > max_side:
                sample = shrink(sample)
            self.records.append(record)
            self.samples.append(sample)
        self.labels = torch.tensor([r.label for r in self.records], dtype=torch.long)

    def _load(self, record: ImageRecord) -> dict | None:
        try:
            with Image.open(record.path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as error:
            warnings.warn(f"skipping unreadable image {record.path}: {error}", stacklevel=3)
            self.skipped.append(str(record.path))
            return None
        height, width = pixels.shape[:2]
        sample: dict = {"image": tv_tensors.Image(torch.from_numpy(pixels.copy()).permute(2, 0, 1))}
        if record.box is not None:
            sample["box"] = tv_tensors.BoundingBoxes(
                torch.tensor([record.box], dtype=torch.float32), format="XYXY", canvas_size=(height, width)
            )
        if record.mask_path is not None:
            with Image.open(record.mask_path) as mask:
                sample["mask"] = tv_tensors.Mask(
                    torch.from_numpy(np.asarray(mask, dtype=np.uint8).copy())[None]
                )
        return sample

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.transform(dict(self.samples[index]))
        out = {
            "image": sample["image"].as_subclass(torch.Tensor),
            "label": int(self.labels[index]),
            "index": index,
        }
        if "box" in sample:
            out["box"] = sample["box"].as_subclass(torch.Tensor)[0]
        if "mask" in sample:
            out["mask"] = sample["mask"].as_subclass(torch.Tensor)
        return out

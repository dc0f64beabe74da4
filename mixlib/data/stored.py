"""The training split as uint8 tensors at one stored size, resident on the training device or streamed.

The training loop draws batches by a seeded index permutation and augments them on the device
(`mixlib.data.augment`), so no image passes through Python one at a time while training:

- `ResidentImages`: the split decoded once into uint8 tensors (images, labels, boxes, masks) on the
  device; a batch is one gather.
- `StreamedImages`: for sources larger than the memory budget, uint8 batches decoded by a `DataLoader`
  (with workers) in the same permutation order; the same device augmentation follows, so both give
  the same batches.

Images are stored at one square side (`stored_side`): the common side of a source whose images all
share one square size up to twice the training size (Tiny ImageNet, the synthetic set), else twice the
training size, every image resized to it (non-square images are squeezed, as the evaluation transform
squeezes them to the training size). Both modes can grow by in-memory images (`with_extra`), which
Proxy Attention uses to add its proxies between epochs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from mixlib.data.records import ImageRecord

DECODE_BATCH = 256
DEFAULT_MEMORY_BUDGET_GIB = 4.0  # Tiny ImageNet's 100k images at 64 px take 1.2 GiB; ImageNet streams


@dataclass
class ImageTensors:
    """Images as uint8 (N, 3, S, S) with labels, and boxes (N, 4; x1/y1 exclusive) and masks where known."""

    images: Tensor
    labels: Tensor
    boxes: Tensor | None = None
    masks: Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: Tensor) -> ImageTensors:
        return ImageTensors(*(None if t is None else t[index.to(t.device)] for t in self.parts()))

    def to(self, device: torch.device) -> ImageTensors:
        return ImageTensors(*(None if t is None else t.to(device, non_blocking=True) for t in self.parts()))

    def parts(self) -> tuple[Tensor | None, ...]:
        return self.images, self.labels, self.boxes, self.masks

    def resized(self, side: int) -> ImageTensors:
        """The images at `side` x `side` (bilinear, antialiased), boxes scaled, masks nearest."""
        height, width = self.images.shape[-2:]
        if (height, width) == (side, side):
            return self
        images = F.interpolate(self.images.float(), (side, side), mode="bilinear", antialias=True)
        scale = torch.tensor([side / width, side / height] * 2, device=self.images.device)
        return ImageTensors(
            images.round().clamp(0, 255).to(torch.uint8),
            self.labels,
            None if self.boxes is None else self.boxes * scale,
            None if self.masks is None else F.interpolate(self.masks.float(), (side, side)).to(torch.uint8),
        )

    @classmethod
    def concat(cls, parts: list[ImageTensors]) -> ImageTensors:
        """One set from several with the same keys (a part without boxes drops the boxes of all)."""
        columns = zip(*(p.parts() for p in parts), strict=True)
        return cls(*(None if any(t is None for t in c) else torch.cat(c) for c in columns))


def stored_side(sizes: list[tuple[int, int]], image_size: int) -> int:
    """The side images are stored at: their common square side if it is at most 2 x image_size."""
    limit = 2 * image_size
    common = set(sizes)
    if len(common) == 1:
        width, height = common.pop()
        if width == height <= limit:
            return width
    return limit


class RecordImages(Dataset):
    """Records decoded one at a time to uint8 at a fixed side; unreadable files are skipped up front.

    Only the file headers are read at construction (size and format), so building it is cheap and
    the decoding happens in `DataLoader` workers.
    """

    def __init__(self, records: list[ImageRecord], image_size: int) -> None:
        self.records: list[ImageRecord] = []
        self.skipped: list[str] = []
        sizes = []
        for record in records:
            try:
                with Image.open(record.path) as image:
                    image.verify()
                    sizes.append(image.size)
            except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
                warnings.warn(f"skipping unreadable image {record.path}: {error}", stacklevel=3)
                self.skipped.append(str(record.path))
                continue
            self.records.append(record)
        self.side = stored_side(sizes, image_size)
        self.labels = torch.tensor([r.label for r in self.records], dtype=torch.long)
        self.has_boxes = bool(self.records) and all(r.box is not None for r in self.records)
        self.has_masks = bool(self.records) and all(r.mask_path is not None for r in self.records)

    def __len__(self) -> int:
        return len(self.records)

    def nbytes(self) -> int:
        """Memory of the whole split as uint8 tensors."""
        return len(self) * self.side * self.side * (3 + self.has_masks)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        with Image.open(record.path) as image:
            pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        sample = {
            "images": torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None],
            "labels": self.labels[index : index + 1],
        }
        if self.has_boxes:
            sample["boxes"] = torch.tensor([record.box], dtype=torch.float32)
        if self.has_masks:
            with Image.open(record.mask_path) as mask:
                sample["masks"] = torch.from_numpy(np.asarray(mask, dtype=np.uint8).copy())[None, None]
        return tensors_of(ImageTensors(**sample).resized(self.side))


def tensors_of(images: ImageTensors) -> dict:
    """A sample of one image as the dict a DataLoader collates (no None values)."""
    keys = ("images", "labels", "boxes", "masks")
    return {k: t[0] for k, t in zip(keys, images.parts(), strict=True) if t is not None}


def collated(batch: dict) -> ImageTensors:
    return ImageTensors(batch["images"], batch["labels"], batch.get("boxes"), batch.get("masks"))


class TensorImages(Dataset):
    """In-memory images as a map-style dataset (the extra images of a streamed set)."""

    def __init__(self, images: ImageTensors) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return tensors_of(self.images.take(torch.tensor([index])))


# --------------------------------------------------------------------------- the two storage modes


def batch_chunks(order: Tensor, batch_size: int) -> list[Tensor]:
    return list(order.split(batch_size))


class ResidentImages:
    """The whole split as tensors on the training device; a batch is a gather."""

    def __init__(
        self, images: ImageTensors, records: list[ImageRecord], skipped: list[str], side: int
    ) -> None:
        self.images = images
        self.records = records
        self.skipped = skipped
        self.side = side

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, order: Tensor, batch_size: int, device: torch.device) -> Iterator[ImageTensors]:
        index = order.to(self.images.labels.device)
        for chunk in batch_chunks(index, batch_size):
            yield self.images.take(chunk)

    def with_extra(self, extra: ImageTensors) -> ResidentImages:
        moved = extra.resized(self.side).to(self.images.images.device)
        return ResidentImages(
            ImageTensors.concat([self.images, moved]), self.records, self.skipped, self.side
        )


class StreamedImages:
    """Batches decoded by a DataLoader (`num_workers` processes) in the order given, moved to the device."""

    def __init__(self, source: RecordImages, num_workers: int, extra: ImageTensors | None = None) -> None:
        self.source = source
        self.num_workers = num_workers
        self.extra = extra
        self.records = source.records
        self.skipped = source.skipped
        self.side = source.side

    def __len__(self) -> int:
        return len(self.source) + (len(self.extra) if self.extra is not None else 0)

    def batches(self, order: Tensor, batch_size: int, device: torch.device) -> Iterator[ImageTensors]:
        dataset = (
            self.source if self.extra is None else ConcatDataset([self.source, TensorImages(self.extra)])
        )
        loader = DataLoader(
            dataset,
            batch_sampler=[chunk.tolist() for chunk in batch_chunks(order, batch_size)],
            num_workers=self.num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )
        for batch in loader:
            yield collated(batch).to(device)

    def with_extra(self, extra: ImageTensors) -> StreamedImages:
        resized = extra.resized(self.side).to(torch.device("cpu"))
        parts = [resized] if self.extra is None else [self.extra, resized]
        return StreamedImages(self.source, self.num_workers, ImageTensors.concat(parts))


TrainingImages = ResidentImages | StreamedImages


def load_training_images(
    records: list[ImageRecord],
    image_size: int,
    device: torch.device,
    memory_budget_gib: float = DEFAULT_MEMORY_BUDGET_GIB,
    num_workers: int = 0,
) -> TrainingImages:
    """The training split, resident on `device` when it fits the budget, else streamed."""
    source = RecordImages(records, image_size)
    if source.nbytes() > memory_budget_gib * 2**30:
        return StreamedImages(source, num_workers)
    if not len(source):
        raise ValueError("the training split has no readable image")
    order = torch.arange(len(source))
    decoded = list(StreamedImages(source, num_workers).batches(order, DECODE_BATCH, device))
    return ResidentImages(ImageTensors.concat(decoded), source.records, source.skipped, source.side)

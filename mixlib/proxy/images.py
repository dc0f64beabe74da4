"""The image side of a proxy step: choose misclassified images, alter them where the CAM is hot, and
hold the resulting proxy images as uint8 tensors that join the stored training images.

Proxies are kept in pixel space as uint8 (what the reference code wrote to disk as image files, here
rounded instead of truncated and never JPEG-compressed), so a proxy read back from the run's cache is
bit-identical to the one made in memory and a resumed run replays exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import Tensor

from mixlib.data import ImageTensors
from mixlib.proxy.rules import REPLACEMENTS, SELECTIONS
from mixlib.proxy.settings import ProxySettings

# -- choosing and altering -----------------------------------------------------------------------


def select_misclassified(
    logits: Tensor, labels: Tensor, settings: ProxySettings, generator: torch.Generator
) -> Tensor:
    """Indices of the training images that become proxies: a `fraction` of the misclassified ones."""
    wrong = logits.argmax(dim=1) != labels
    losses = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")
    count = settings.chosen_count(int(wrong.sum()))
    return SELECTIONS.get(settings.selection, "selection")(wrong, losses, count, generator)


def alter_images(originals: Tensor, cams: Tensor, settings: ProxySettings) -> Tensor:
    """Proxy images: uint8 (N,3,H,W) originals changed where the CAM (N,H,W) exceeds the threshold.

    One vectorised pass in pixel space ([0, 1], as the reference, which un-normalises first). Pixels at
    or below the threshold keep their exact value; the rest follow the replacement rule, e.g. the
    reference's default "blended" x' = (1 - weight * cam) * x.
    """
    pixels = originals.float() / 255
    cams = cams.to(pixels.device, torch.float32).unsqueeze(1)
    rule = REPLACEMENTS.get(settings.replacement, "replacement")
    altered = torch.where(cams > settings.threshold, rule(pixels, cams, settings.weight), pixels)
    return (altered * 255).round().clamp(0, 255).to(torch.uint8)


def to_uint8(pixels: Tensor) -> Tensor:
    """[0, 1] float pixels to uint8, rounding (un-normalised eval images round back to their exact bytes)."""
    return (pixels * 255).round().clamp(0, 255).to(torch.uint8)


# -- the proxies of one step, and the tensors of several steps ------------------------------------


@dataclass
class ProxyImages:
    """The proxies one step made; `sources` are the indices of their training images."""

    images: Tensor  # uint8 (N, 3, H, W), pixel space
    labels: Tensor  # int64 (N,), the original labels
    sources: Tensor  # int64 (N,)
    epoch: int
    boxes: Tensor | None = None  # float (N, 4) x0, y0, x1, y1 where the dataset has boxes
    masks: Tensor | None = None  # uint8 (N, 1, H, W) where the dataset has masks

    def __len__(self) -> int:
        return len(self.labels)

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        torch.save({f.name: getattr(self, f.name) for f in fields(self)}, temporary)
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProxyImages:
        return cls(**torch.load(path, map_location="cpu", weights_only=True))


def proxy_tensors(steps: Sequence[ProxyImages]) -> ImageTensors:
    """The proxies of several steps as one set of training tensors (at the evaluation size).

    Steps that made no proxy are left out (their placeholder images have no real size).
    """
    return ImageTensors.concat(
        [ImageTensors(step.images, step.labels, step.boxes, step.masks) for step in steps if len(step)]
    )

"""The image side of a proxy step: choose misclassified images, alter them where the CAM is hot, and
hold the resulting proxy images as uint8 tensors that join the stored training images.

Proxies are kept in pixel space as uint8 (what the reference code wrote to disk as image files, here
rounded instead of truncated and never JPEG-compressed), so a proxy read back from the run's cache is
bit-identical to the one made in memory and a resumed run replays exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mixlib.data import ImageTensors
from mixlib.registry import Registry

if TYPE_CHECKING:  # settings validates against the registries below
    from mixlib.proxy.settings import ProxySettings

# -- which misclassified images become proxies ---------------------------------------------------

Selection = Callable[[Tensor, Tensor, int, torch.Generator], Tensor]
SELECTIONS: Registry[Selection] = Registry("selection")


@SELECTIONS.register("first")
def first_found(wrong: Tensor, losses: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """The first `count` misclassified images met in a shuffled pass over the training set.

    The reference collects misclassified images during its shuffled training epoch and keeps the first
    ones; the pass here is a seeded permutation. In distribution this equals `random`; it is kept to
    reproduce the reference's rule exactly.
    """
    order = torch.randperm(len(wrong), generator=generator)
    return order[wrong[order]][:count]


@SELECTIONS.register("random")
def random_subset(wrong: Tensor, losses: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """`count` misclassified images drawn uniformly without replacement, in training-set order."""
    candidates = wrong.nonzero().squeeze(1)
    picked = torch.randperm(len(candidates), generator=generator)[:count]
    return candidates[picked.sort().values]


@SELECTIONS.register("highest_loss")
def highest_loss(wrong: Tensor, losses: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """The `count` misclassified images with the largest cross-entropy, largest first (ties: lower index)."""
    candidates = wrong.nonzero().squeeze(1)
    order = torch.sort(losses[candidates], descending=True, stable=True).indices
    return candidates[order[:count]]


def select_misclassified(
    logits: Tensor, labels: Tensor, settings: ProxySettings, generator: torch.Generator
) -> Tensor:
    """Indices of the training images that become proxies: a `fraction` of the misclassified ones."""
    wrong = logits.argmax(dim=1) != labels
    losses = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")
    count = settings.chosen_count(int(wrong.sum()))
    return SELECTIONS.get(settings.selection, "selection")(wrong, losses, count, generator)


# -- how hot pixels are altered -----------------------------------------------------------------

# A rule maps (pixels (N,3,H,W) in [0,1], cams (N,1,H,W) in [0,1], weight) to the replacement values.
Replacement = Callable[[Tensor, Tensor, float], Tensor]
REPLACEMENTS: Registry[Replacement] = Registry("replacement")
REPLACEMENTS.register("blended")(lambda pixels, cams, weight: (1 - weight * cams) * pixels)
# The statistics are of the CAM, as in the reference; there they are taken over the whole chunk of
# images processed together, here per image, so the result does not depend on the chunk size. grad-cam
# min-max normalises each map, so max/min/halfmax give 1/0/0.5 either way; only `mean` differs.
REPLACEMENTS.register("mean")(lambda pixels, cams, weight: cams.mean(dim=(1, 2, 3), keepdim=True))
REPLACEMENTS.register("max")(lambda pixels, cams, weight: cams.amax(dim=(1, 2, 3), keepdim=True))
REPLACEMENTS.register("min")(lambda pixels, cams, weight: cams.amin(dim=(1, 2, 3), keepdim=True))
REPLACEMENTS.register("halfmax")(lambda pixels, cams, weight: cams.amax(dim=(1, 2, 3), keepdim=True) / 2)


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

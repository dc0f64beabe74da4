"""The seed run report's training transforms, built on torchvision.transforms.v2.

v2 transforms move `BoundingBoxes` and `Mask` together with the image, so boxes and masks follow
every geometric transform (crop, resize, flip) without hand-written geometry.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise() -> v2.Transform:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def train_transform(image_size: int, crop_scale_min: float = 0.35, color_jitter: float = 0.4) -> v2.Transform:
    """Random resized crop, horizontal flip, colour jitter (seed run report), then normalisation."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(image_size, scale=(crop_scale_min, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(color_jitter, color_jitter, color_jitter),
            v2.ClampBoundingBoxes(),
            normalise(),
        ]
    )


def eval_transform(image_size: int) -> v2.Transform:
    """Deterministic resize of the whole image, so boxes stay comparable with the ground truth."""
    return v2.Compose([v2.Resize((image_size, image_size), antialias=True), normalise()])


def denormalise(images: torch.Tensor) -> torch.Tensor:
    """Back to [0, 1] RGB for display."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(-1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(-1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)

"""The evaluation transform (per image, torchvision.transforms.v2) and the normalisation constants.

v2 transforms move `BoundingBoxes` and `Mask` together with the image, so the evaluation resize keeps
boxes and masks aligned. The training augmentation works on whole batches: `mixlib.data.augment`.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise() -> v2.Transform:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_transform(image_size: int) -> v2.Transform:
    """Deterministic resize of the whole image, so boxes stay comparable with the ground truth."""
    return v2.Compose([v2.Resize((image_size, image_size), antialias=True), normalise()])


def denormalise(images: torch.Tensor) -> torch.Tensor:
    """Back to [0, 1] RGB for display."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(-1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(-1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)

"""The seed run report's training augmentation, applied to a whole uint8 batch on its device.

Random resized crop (per-sample scale and aspect ratio), horizontal flip, colour jitter (brightness,
contrast, saturation; per-sample factors and per-sample order) and normalisation, with boxes and masks
following the crop and the flip. The draws follow torchvision's `RandomResizedCrop` and `ColorJitter`
(the per-image pipeline of c527d0d, rebuilt as the reference in `mixlib.bench.training`).

Why hand-written and not Kornia. Kornia 0.9.0's `AugmentationSequential` (RandomResizedCrop,
RandomHorizontalFlip, ColorJitter, Normalize) does the same per-sample work and is timed next to this
module by `python -m mixlib bench training` (its "Kornia" row). Measured on the shared 2-core CPU
(load average about 9, so only ratios within one run mean anything), batch 64 of Tiny ImageNet at 64 px:
the benchmark (2 threads) gave 842 ms per batch here, 876 ms with Kornia, 4614 ms for the per-image
reference; a data-stage-only run interleaved at 1 thread gave 179 ms here, 264 ms with Kornia, 1484 ms
for the reference (of the 179 ms: grid_sample 33, colour jitter 76, normalisation 8); an early run on a
random batch with boxes and masks, 22 ms here against 54 ms with Kornia; the benchmark on the synthetic
set at 32 px, batch 16, 1 thread: 15.5 ms here, 70 ms with Kornia, 284 ms for the reference. So Kornia
is no faster (1.04x to 4.5x slower) and it draws from the global torch RNG on the batch's device, so
CPU and CUDA would see different crops from one seed and resuming would have to restore that RNG; every
parameter here comes from the epoch's seeded CPU `torch.Generator`, then moves to the device: a seed gives
the same crops on both. `roi_align` (torchvision.ops) was the other hand-written candidate: it crops and
resizes, but averages bins instead of interpolating and cannot mirror, so the flip would be a second
pass; one `grid_sample` crops, resizes and flips in one pass, masks use the same grid (nearest), and
boxes follow analytically. The draws follow torchvision's RandomResizedCrop (10 attempts, integer
sides, central fallback) and ColorJitter (per-sample factors and order), checked against torchvision's
functional ops in tests/test_augment.py.

Interpolation is bilinear without antialiasing: crops of the stored images are mostly upsampled
(stored side = training side for Tiny ImageNet and the synthetic set), where antialiasing is a no-op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mixlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 draws before its central-crop fallback
CROP_RATIO = (3 / 4, 4 / 3)
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale
JITTER_OPS = 3  # brightness, contrast, saturation (hue is not jittered in the seed run report)


@dataclass
class AugmentParams:
    """One batch's draws: crop boxes in stored pixels (x0, y0, width, height), flips, jitter."""

    crops: Tensor  # float (N, 4)
    flips: Tensor  # bool (N,)
    factors: Tensor  # float (N, 3): brightness, contrast, saturation factors
    order: Tensor  # int64 (N, 3): the jitter operations in the order each sample applies them


@dataclass
class AugmentedBatch:
    images: Tensor  # float (N, 3, size, size), normalised
    boxes: Tensor | None = None  # float (N, 4) x0, y0, x1, y1 in output pixels, clamped to the image
    masks: Tensor | None = None  # uint8 (N, 1, size, size)


class BatchAugment:
    """The training transform of a whole batch: `augment(images, generator, boxes, masks)`."""

    def __init__(self, size: int, crop_scale_min: float = 0.35, color_jitter: float = 0.4) -> None:
        self.size = size
        self.scale = (crop_scale_min, 1.0)
        self.jitter = color_jitter

    def draw(self, count: int, side: int, generator: torch.Generator) -> AugmentParams:
        """All random parameters of a batch, drawn on the generator's device (a CPU generator)."""
        return AugmentParams(
            crops=draw_crops(count, side, self.scale, generator),
            flips=torch.rand(count, generator=generator) < 0.5,
            factors=1 + self.jitter * (2 * torch.rand(count, JITTER_OPS, generator=generator) - 1),
            order=torch.rand(count, JITTER_OPS, generator=generator).argsort(dim=1),
        )

    def __call__(
        self,
        images: Tensor,
        generator: torch.Generator,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
    ) -> AugmentedBatch:
        """uint8 (N, 3, S, S) images (and boxes in their pixels, uint8 masks) -> the augmented batch."""
        params = self.draw(len(images), images.shape[-1], generator)
        return self.apply(images, params, boxes, masks)

    def apply(
        self, images: Tensor, params: AugmentParams, boxes: Tensor | None = None, masks: Tensor | None = None
    ) -> AugmentedBatch:
        device = images.device
        crops, flips = params.crops.to(device), params.flips.to(device)
        grid = crop_grid(crops, flips, images.shape[-1], self.size)
        pixels = F.grid_sample(
            images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        pixels = jitter(pixels / 255, params.factors.to(device), params.order.to(device))
        out = AugmentedBatch(normalise_pixels(pixels))
        if boxes is not None:
            out.boxes = crop_boxes(boxes.float(), crops, flips, self.size)
        if masks is not None:
            warped = F.grid_sample(
                masks.float(), grid, mode="nearest", padding_mode="border", align_corners=False
            )
            out.masks = warped.to(torch.uint8)
        return out


def draw_crops(count: int, side: int, scale: tuple[float, float], generator: torch.Generator) -> Tensor:
    """torchvision's RandomResizedCrop draws for `count` square images of `side` pixels, vectorised.

    Each sample tries 10 (area, log-ratio) draws and keeps the first that fits, with integer width,
    height and offsets as torchvision; samples where none fits take the central crop of ratio 1.
    Returns (x0, y0, width, height) in pixels.
    """
    area = side * side * torch.empty(count, CROP_ATTEMPTS).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(count, CROP_ATTEMPTS).uniform_(*map(math.log, CROP_RATIO), generator=generator)
    ratio = log_ratio.exp()
    width = (area * ratio).sqrt().round()
    height = (area / ratio).sqrt().round()
    fits = (width > 0) & (width <= side) & (height > 0) & (height <= side)
    first = fits.float().argmax(dim=1, keepdim=True)  # 0 where nothing fits; replaced below
    width, height = width.gather(1, first).squeeze(1), height.gather(1, first).squeeze(1)
    offsets = torch.rand(count, 2, generator=generator)
    x0 = (offsets[:, 0] * (side - width + 1)).floor()
    y0 = (offsets[:, 1] * (side - height + 1)).floor()
    crops = torch.stack([x0, y0, width, height], dim=1)
    fallback = torch.tensor([0.0, 0.0, side, side])  # ratio 1 lies inside (3/4, 4/3): the whole image
    return torch.where(fits.any(dim=1, keepdim=True), crops, fallback)


def crop_grid(crops: Tensor, flips: Tensor, side: int, size: int) -> Tensor:
    """Sampling grid that crops each box, resizes it to `size` and mirrors it where flipped.

    With align_corners=False, output pixel k samples the crop at x0 + (k + 0.5) * w / size - 0.5,
    the same points as cropping and then resizing bilinearly (torchvision's Resize).
    """
    x0, y0, width, height = crops.unbind(dim=1)
    # the map is separable (no rotation), so the grid is built from one row and one column per sample
    # instead of affine_grid's (N, size * size, 3) x (3, 2) product, which costs as much as the sampling
    steps = (torch.arange(size, device=crops.device, dtype=torch.float32) + 0.5) / size  # in (0, 1)
    across = torch.where(flips.unsqueeze(1), 1 - steps, steps)
    xs = (2 * (x0.unsqueeze(1) + across * width.unsqueeze(1)) / side - 1).unsqueeze(1)
    ys = (2 * (y0.unsqueeze(1) + steps * height.unsqueeze(1)) / side - 1).unsqueeze(2)
    count = len(crops)
    return torch.stack([xs.expand(count, size, size), ys.expand(count, size, size)], dim=3)


def crop_boxes(boxes: Tensor, crops: Tensor, flips: Tensor, size: int) -> Tensor:
    """Boxes (x0, y0, x1, y1; x1/y1 exclusive) in stored pixels -> output pixels, clamped like v2."""
    x0, y0, width, height = crops.to(boxes.device).unbind(dim=1)
    left = (boxes[:, 0] - x0) * size / width
    right = (boxes[:, 2] - x0) * size / width
    top = (boxes[:, 1] - y0) * size / height
    bottom = (boxes[:, 3] - y0) * size / height
    flips = flips.to(boxes.device)
    left, right = torch.where(flips, size - right, left), torch.where(flips, size - left, right)
    return torch.stack([left, top, right, bottom], dim=1).clamp(0, size)


def jitter(pixels: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """torchvision's ColorJitter in [0, 1]: each sample applies its three operations in its own order.

    Every operation is `clamp(f * x + (1 - f) * reference)`, with reference 0 (brightness), the mean
    grey level of the image (contrast) or the grey image (saturation); one pass per position in the
    order blends every sample with its own operation's reference and factor.
    """
    count = len(pixels)
    weights = pixels.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    rows = torch.arange(count, device=pixels.device)
    for position in range(JITTER_OPS):
        operation = order[:, position]
        factor = factors[rows, operation].view(count, 1, 1, 1)
        grey = (pixels * weights).sum(dim=1, keepdim=True)
        reference = torch.where(
            (operation == 1).view(count, 1, 1, 1), grey.mean(dim=(2, 3), keepdim=True), grey
        ) * (operation != 0).view(count, 1, 1, 1)
        pixels = torch.lerp(reference, pixels, factor).clamp_(0, 1)
    return pixels


def normalise_pixels(pixels: Tensor) -> Tensor:
    mean = pixels.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = pixels.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std

"""Single-image erasing baselines: Cutout and Random Erasing. Labels are not mixed (lam = 1).

Both erase a box per image to 0, which after ImageNet normalisation is the dataset's mean pixel (the
originals erase normalised images to 0, Cutout, or to the CIFAR mean pixel values, Random Erasing).
They return `MixedBatch.unmixed`: targets_b = targets_a, no partner and no mixing mask.

- Cutout (DeVries & Taylor 2017, uoguelph-mlrg/Cutout `util/cutout.py`): one square of side
  `length` centred on a uniform pixel, clipped at the border, in every image. The side is given here
  as a fraction of the image side: 0.5 is Cutout's CIFAR-10 16 px on 32 px (`--length 16`) and
  CutMix's 112 px on 224 px.
- Random Erasing (Zhong et al. 2020, zhunzhong07/Random-Erasing `transforms.py`): with probability
  0.5 per image, a box of area U(0.02, 0.4) * H * W and aspect ratio U(0.3, 1/0.3), placed fully
  inside the image. The original retries up to 100 times until the box fits; here 10 candidate boxes
  per image are drawn at once and the first that fits is used (each fits with probability above
  0.6, so all ten failing has probability below 1e-4; then the image is left as is, as in the original).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mixlib.losses import MixedBatch
from mixlib.mixing.base import (
    Boxes,
    MixingMethod,
    box_sides,
    centred_boxes,
    check_interval,
    check_probability,
    check_range,
    integers,
    uniform,
    uniform_centres,
)

ATTEMPTS = 10


def erase(inputs: Tensor, boxes: Boxes) -> Tensor:
    """The batch with each sample's box set to 0 (images are finite, so a product with the 0/1 mask).

    A broadcast multiply is several times faster on the CPU than `masked_fill` with a broadcast
    boolean mask.
    """
    height, width = inputs.shape[-2:]
    return inputs * boxes.outside(height, width).to(inputs.dtype)


class Cutout(MixingMethod):
    """Cutout: a square hole of side `size * H` by `size * W` centred on a uniform pixel, clipped.

    Args:
        size: side of the square as a fraction of the image side, in (0, 1] (0.5: Cutout `--length 16`
            on 32 px CIFAR-10).
        p: probability that a batch is erased (default 1.0: Cutout erases every image).
    """

    name = "cutout"
    mixes_images = False

    def __init__(self, size: float = 0.5, p: float = 1.0) -> None:
        super().__init__(p)
        self.size = check_range("size", size, 0.0, 1.0, low_open=True)

    def apply(self, inputs, targets, generator, model):
        batch_size, _, height, width = inputs.shape
        centre_y, centre_x = uniform_centres(height, width, batch_size, generator)
        side_h, side_w = box_sides(
            torch.full(centre_y.shape, self.size, device=centre_y.device), height, width
        )
        boxes = centred_boxes(centre_y, centre_x, side_h, side_w, height, width)
        return MixedBatch.unmixed(erase(inputs, boxes.to(inputs.device)), targets)


def random_erasing_boxes(
    count: int,
    height: int,
    width: int,
    area: tuple[float, float],
    aspect: float,
    generator: torch.Generator | None,
) -> tuple[Boxes, Tensor]:
    """`count` boxes fully inside the image, and whether each found a fitting candidate."""
    target_area = uniform(count * ATTEMPTS, generator, *area).view(count, ATTEMPTS) * (height * width)
    ratio = uniform(count * ATTEMPTS, generator, aspect, 1 / aspect).view(count, ATTEMPTS)
    box_h = torch.sqrt(target_area * ratio).round().long()
    box_w = torch.sqrt(target_area / ratio).round().long()
    fits = (box_h < height) & (box_w < width)
    first = fits.int().argmax(1, keepdim=True)  # the first fitting attempt, as the retry loop takes
    box_h, box_w = box_h.gather(1, first)[:, 0], box_w.gather(1, first)[:, 0]
    top = integers(height - box_h + 1, count, generator)
    left = integers(width - box_w + 1, count, generator)
    return Boxes(top, top + box_h, left, left + box_w), fits.any(1)


class RandomErasing(MixingMethod):
    """Random Erasing: with probability `probability` per image, a random box is set to 0.

    Args:
        probability: chance that each image is erased, in [0, 1] (original: 0.5).
        area: (min, max) of the box area as a fraction of the image, within (0, 1) (original:
            sl = 0.02, sh = 0.4).
        aspect: smallest aspect ratio r1; ratios are drawn from U(r1, 1/r1), r1 in (0, 1] (original 0.3).
        p: probability that a batch is processed at all (default 1.0; `probability` acts per image).
    """

    name = "random_erasing"
    mixes_images = False

    def __init__(
        self,
        probability: float = 0.5,
        area: tuple[float, float] = (0.02, 0.4),
        aspect: float = 0.3,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        self.probability = check_probability("probability", probability)
        self.area = check_interval("area", area, 0.0, 1.0)
        if self.area[0] <= 0 or self.area[1] >= 1:
            raise ValueError(f"area must be a pair (min, max) with 0 < min <= max < 1, got {area!r}")
        self.aspect = check_range("aspect", aspect, 0.0, 1.0, low_open=True)

    def apply(self, inputs, targets, generator, model):
        batch_size, _, height, width = inputs.shape
        erased = uniform(batch_size, generator) < self.probability
        boxes, fits = random_erasing_boxes(batch_size, height, width, self.area, self.aspect, generator)
        keep = ~(erased & fits)
        boxes.bottom = torch.where(keep, boxes.top, boxes.bottom)  # an empty box leaves the image as is
        return MixedBatch.unmixed(erase(inputs, boxes.to(inputs.device)), targets)

"""ResizeMix (Qin et al. 2020): paste the whole partner image, shrunk, into a box of the sample.

Follows OpenMixup `resizemix.py` (its "original settings in ResizeMix"): scale tau ~ U(0.1, 0.8), box
sides int(H * tau) by int(W * tau) centred on a uniform pixel and clipped at the border, the partner
resized (nearest neighbour, OpenMixup's default `interpolate_mode`) to the clipped box, and
lam = 1 - box_area / (H * W). mmpretrain's `ResizeMix` instead maps a Beta draw into the scale range.

Every sample gets its own box size, so one `F.interpolate` call cannot do the resize; the
nearest-neighbour source rows and columns are computed with PyTorch's own index rule
(floor(dst * in / out) in float32) and gathered for the whole batch at once, which reproduces
`F.interpolate(..., mode="nearest")` exactly.

Defaults: scale = (0.1, 0.8) (OpenMixup `resizemix`: `scope=(0.1, 0.8)`); p = 1.0 (OpenMixup mixes
every batch).
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
    check_flag,
    check_interval,
    draw_count,
    mask_mean,
    partner_index,
    random_shift,
    to_batch,
    uniform,
    uniform_centres,
)


def nearest_source_index(start: Tensor, length: Tensor, size: int) -> Tensor:
    """(B, size) source pixel for each destination pixel of a box [start, start + length) resized from `size`.

    PyTorch's nearest rule: min(floor(dst * (float(size) / length)), size - 1); pixels outside the
    box get an arbitrary valid index (they are masked out).
    """
    dst = torch.arange(size, device=start.device)[None, :] - start[:, None]
    scale = size / length.clamp_min(1).float()
    return (dst.float() * scale[:, None]).floor().long().clamp_(0, size - 1)


def resize_paste(inputs: Tensor, partner: Tensor, boxes: Boxes, mask: Tensor) -> Tensor:
    """Each sample with `inputs[partner]`, shrunk to its box, pasted over the box (nearest neighbour).

    `mask` is the own-image weight, (B, 1, H, W): 0 inside the boxes, 1 outside.
    """
    batch_size, channels, height, width = inputs.shape
    source_rows = nearest_source_index(boxes.top, boxes.bottom - boxes.top, height)
    source_cols = nearest_source_index(boxes.left, boxes.right - boxes.left, width)
    # Row gather straight from the batch (no partner copy), then a column gather along the last dim.
    channel = torch.arange(channels, device=inputs.device)[None, :, None]
    row_index = (partner[:, None, None] * channels + channel) * height + source_rows[:, None, :]
    rows = inputs.reshape(-1, width).index_select(0, row_index.view(-1)).view_as(inputs)
    column_index = source_cols[:, None, None, :].expand(batch_size, channels, height, width)
    pasted = rows.gather(3, column_index)
    return pasted.lerp_(inputs, mask.to(inputs.dtype))


class ResizeMix(MixingMethod):
    """ResizeMix: the partner, shrunk by tau ~ U(scale), is pasted into a random box.

    Args:
        scale: (min, max) of the side scale tau, within (0, 1] (OpenMixup `scope=(0.1, 0.8)`).
        p: probability that a batch is mixed (default 1.0).
        per_sample: one box per sample (default) or one box for the whole batch (the original).
    """

    name = "resizemix"

    def __init__(
        self, scale: tuple[float, float] = (0.1, 0.8), p: float = 1.0, per_sample: bool = True
    ) -> None:
        super().__init__(p)
        self.scale = check_interval("scale", scale, 0.0, 1.0)
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be a pair (min, max) with 0 < min <= max <= 1, got {scale!r}")
        self.per_sample = check_flag("per_sample", per_sample)

    def apply(self, inputs, targets, generator, model):
        batch_size, _, height, width = inputs.shape
        partner = partner_index(batch_size, random_shift(batch_size, generator), inputs.device)
        count = draw_count(batch_size, self.per_sample)
        tau = to_batch(uniform(count, generator, *self.scale), batch_size)
        cut_h, cut_w = box_sides(tau, height, width)
        centre_y, centre_x = uniform_centres(height, width, count, batch_size, generator)
        boxes = centred_boxes(centre_y, centre_x, cut_h, cut_w, height, width).to(inputs.device)
        mask = boxes.outside(height, width)
        return MixedBatch(
            inputs=resize_paste(inputs, partner, boxes, mask),
            targets_a=targets,
            targets_b=targets[partner],
            lam=mask_mean(mask),
            mask=mask,
            partner=partner,
        )

"""HMix and GMix (Park et al. 2022, "A Unified Analysis of Mixed Sample Data Augmentation").

Both follow naver-ai/hmix-gmix `mixup.py` with lam0 ~ Beta(alpha, alpha):

- HMix (`hmix_bbox_and_lam`): a CutMix box of side int(H * sqrt(1 - lam0) * sqrt(r)), centre uniform,
  clipped, is pasted from the partner; outside it the two images are blended MixUp-style with the
  sample's weight lam0 / (1 - box_area / (H * W)), so the mask's mean is lam0 again.
- GMix (`gmix_gaussian_kernel`): the minority image of the pair, weight m = min(lam0, 1 - lam0),
  occupies a Gaussian blob exp(-pi * ||p - c||^2 / (m * H * W)) around a uniform centre c; lam is the
  mask's mean. (The reference writes m * H^2 for square images; H * W keeps the blob's integral at
  m * H * W for any aspect.)

Defaults: alpha = 1.0 (the reference draws lam0 from Beta(cutmix_alpha, cutmix_alpha); CutMix's 1.0);
HMix r = 0.5 (the paper's figure; the code's `hmix_ratio` default 1.0 makes HMix CutMix up to
rounding); p = 1.0 (timm's `Mixup(prob=1.0)`, which the reference extends).
"""

from __future__ import annotations

import math

import torch

from mixlib.mixing.base import (
    MaskMixing,
    beta,
    box_sides,
    centred_boxes,
    check_flag,
    check_positive,
    check_range,
    draw_count,
    gaussian_blobs,
    uniform_centres,
)


class HMix(MaskMixing):
    """HMix: a CutMix box from the partner plus a MixUp blend everywhere else.

    Args:
        alpha: Beta concentration for lam0, > 0 (default 1.0).
        ratio: the box's share r of the partner's area, in (0, 1] (paper 0.5; 1.0 is CutMix).
        p: probability that a batch is mixed (default 1.0).
        per_sample: one box and lam0 per sample (default) or one for the whole batch (the original).
    """

    name = "hmix"

    def __init__(
        self, alpha: float = 1.0, ratio: float = 0.5, p: float = 1.0, per_sample: bool = True
    ) -> None:
        super().__init__(p)
        self.alpha = check_positive("alpha", alpha)
        self.ratio = check_range("ratio", ratio, 0.0, 1.0, low_open=True)
        self.per_sample = check_flag("per_sample", per_sample)

    def sample_mask(self, inputs, targets, partner, generator, model):
        batch_size, _, height, width = inputs.shape
        count = draw_count(batch_size, self.per_sample)
        lam = beta(self.alpha, count, generator)
        cut_h, cut_w = box_sides(torch.sqrt(1 - lam) * math.sqrt(self.ratio), height, width)
        centre_y, centre_x = uniform_centres(height, width, count, generator)
        boxes = centred_boxes(centre_y, centre_x, cut_h, cut_w, height, width)
        outside_share = 1 - boxes.area() / (height * width)
        # lam <= outside_share because r <= 1; the clamp only guards a box covering the whole image.
        outside_weight = (lam / outside_share.clamp_min(1e-12)).clamp_max(1.0)
        return (boxes.outside(height, width) * outside_weight[:, None, None, None]).to(inputs.device)


class GMix(MaskMixing):
    """GMix: the minority image of each pair as a Gaussian blob whose area matches its weight.

    Args:
        alpha: Beta concentration for lam0, > 0 (default 1.0).
        p: probability that a batch is mixed (default 1.0).
        per_sample: one blob per sample (default) or one for the whole batch (the original).
    """

    name = "gmix"

    def __init__(self, alpha: float = 1.0, p: float = 1.0, per_sample: bool = True) -> None:
        super().__init__(p)
        self.alpha = check_positive("alpha", alpha)
        self.per_sample = check_flag("per_sample", per_sample)

    def sample_mask(self, inputs, targets, partner, generator, model):
        batch_size, _, height, width = inputs.shape
        count = draw_count(batch_size, self.per_sample)
        lam = beta(self.alpha, count, generator)
        minority = torch.minimum(lam, 1 - lam).clamp_min(1e-6)
        centre_y, centre_x = uniform_centres(height, width, count, generator)
        blob = gaussian_blobs(centre_y, centre_x, minority * height * width / math.pi, height, width)
        # The own image's weight is the blob when it is the minority, else 1 - blob: a + b * blob in place.
        own_is_minority = (lam < 0.5).float()[:, None, None, None]
        return blob.mul_(2 * own_is_minority - 1).add_(1 - own_is_minority).to(inputs.device)

"""CutMix (Yun et al. 2019): paste a box of the partner, lam corrected to the clipped box area.

Box geometry follows clovaai/CutMix-PyTorch `rand_bbox`: lam0 ~ Beta(alpha, alpha), sides
int(H * sqrt(1 - lam0)) by int(W * sqrt(1 - lam0)), centre uniform over the pixels, half-sides
side // 2, clipped at the border; lam = 1 - box_area / (H * W).

Defaults: alpha = 1.0 (CutMix README: `--beta 1.0`); p = 0.5 (CutMix README, CIFAR commands:
`--cutmix_prob 0.5`; its ImageNet commands use 1.0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mixlib.mixing.base import (
    Boxes,
    BoxMixing,
    beta,
    box_sides,
    centred_boxes,
    check_flag,
    check_positive,
    draw_count,
    uniform_centres,
)


def cutmix_boxes(lam: Tensor, height: int, width: int, generator: torch.Generator | None) -> Boxes:
    """One box per lam, of area about (1 - lam) * H * W, centred uniformly, clipped (generator's device)."""
    cut_h, cut_w = box_sides(torch.sqrt(1.0 - lam), height, width)
    centre_y, centre_x = uniform_centres(height, width, len(lam), generator)
    return centred_boxes(centre_y, centre_x, cut_h, cut_w, height, width)


class CutMix(BoxMixing):
    """CutMix: the partner's pixels inside a random box replace the sample's own.

    Args:
        alpha: Beta concentration for lam0, > 0 (CutMix README `--beta 1.0`).
        p: probability that a batch is mixed (default 0.5, CutMix README CIFAR `--cutmix_prob 0.5`).
        per_sample: one box per sample (default) or one box for the whole batch (the original code).
    """

    name = "cutmix"

    def __init__(self, alpha: float = 1.0, p: float = 0.5, per_sample: bool = True) -> None:
        super().__init__(p)
        self.alpha = check_positive("alpha", alpha)
        self.per_sample = check_flag("per_sample", per_sample)

    def sample_boxes(self, inputs, partner, generator, model):
        batch_size, _, height, width = inputs.shape
        lam = beta(self.alpha, draw_count(batch_size, self.per_sample), generator)
        return cutmix_boxes(lam, height, width, generator)

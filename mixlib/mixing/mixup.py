"""MixUp (Zhang et al. 2018): each sample is blended with a partner, x = lam*x_a + (1-lam)*x_b.

Defaults: alpha = 1.0 (facebookresearch/mixup-cifar10 `train.py`: `--alpha` default 1); p = 1.0
(mixup-cifar10 mixes every batch; the seed run report used p = 0.5).
"""

from __future__ import annotations

from torch import Tensor

from mixlib.losses import MixedBatch
from mixlib.mixing.base import (
    MixingMethod,
    beta,
    blend_with_partner,
    check_flag,
    check_positive,
    draw_count,
    partner_index,
    random_shift,
    to_batch,
)


def mixup_images(inputs: Tensor, shift: int, lam: Tensor) -> Tensor:
    """`lam * x_i + (1 - lam) * x_(i + shift mod B)` with a per-sample (B,) lam, in one lerp pass."""
    return blend_with_partner(inputs, shift, lam.view(-1, 1, 1, 1))


class MixUp(MixingMethod):
    """MixUp with lam ~ Beta(alpha, alpha) and a partner from a random roll of the batch.

    Args:
        alpha: Beta concentration, > 0 (mixup-cifar10 default 1.0).
        p: probability that a batch is mixed, in [0, 1] (default 1.0: mixup-cifar10 mixes every batch).
        per_sample: one lam per sample (default) or one per batch (the original code).
    """

    name = "mixup"

    def __init__(self, alpha: float = 1.0, p: float = 1.0, per_sample: bool = True) -> None:
        super().__init__(p)
        self.alpha = check_positive("alpha", alpha)
        self.per_sample = check_flag("per_sample", per_sample)

    def apply(self, inputs, targets, generator, model):
        batch_size = len(inputs)
        shift = random_shift(batch_size, generator)
        partner = partner_index(batch_size, shift, inputs.device)
        draws = beta(self.alpha, draw_count(batch_size, self.per_sample), generator)
        lam = to_batch(draws, batch_size).to(inputs.device)
        return MixedBatch(
            inputs=mixup_images(inputs, shift, lam),
            targets_a=targets,
            targets_b=targets[partner],
            lam=lam,
            partner=partner,
        )

"""SmoothMix (Lee et al. 2020): the partner is blended in under a soft-edged Gaussian blob.

Follows OpenMixup `smoothmix.py`: a blob G = exp(-||p - c||^2 / (2 sigma^2)) with sigma =
U(0.25, 0.5) * H and a centre uniform over the pixels; the partner's weight is G, the sample's own
1 - G, and lam = mean(1 - G). (OpenMixup's `smoothmix` returns mean(G), the partner's share, as the
lam of the sample's own label, where its `mixup` returns the own share; here lam is the mean of the
own-image mask, as for every method.)

Defaults: sigma_scale = (0.25, 0.5) (OpenMixup: `sigma = (torch.rand(1) / 4 + 0.25) * h`);
p = 1.0 (OpenMixup mixes every batch).
"""

from __future__ import annotations

from mixlib.mixing.base import (
    MaskMixing,
    check_flag,
    check_interval,
    draw_count,
    gaussian_blobs,
    uniform,
    uniform_centres,
)


class SmoothMix(MaskMixing):
    """SmoothMix: a Gaussian blob of the partner, sigma a random fraction of the image height.

    Args:
        sigma_scale: (min, max) of sigma / H, within (0, inf) (OpenMixup: (0.25, 0.5)).
        p: probability that a batch is mixed (default 1.0).
        per_sample: one blob per sample (default) or one for the whole batch (the original).
    """

    name = "smoothmix"

    def __init__(
        self, sigma_scale: tuple[float, float] = (0.25, 0.5), p: float = 1.0, per_sample: bool = True
    ) -> None:
        super().__init__(p)
        self.sigma_scale = check_interval("sigma_scale", sigma_scale, 0.0, float("inf"))
        if self.sigma_scale[0] <= 0:
            raise ValueError(
                f"sigma_scale must be a pair (min, max) with 0 < min <= max, got {sigma_scale!r}"
            )
        self.per_sample = check_flag("per_sample", per_sample)

    def sample_mask(self, inputs, targets, partner, generator, model):
        batch_size, _, height, width = inputs.shape
        count = draw_count(batch_size, self.per_sample)
        sigma = uniform(count, generator, *self.sigma_scale) * height
        centre_y, centre_x = uniform_centres(height, width, count, generator)
        blob = gaussian_blobs(centre_y, centre_x, 2 * sigma**2, height, width)
        return (1 - blob).to(inputs.device)

"""SaliencyMix (Uddin et al. 2021): a CutMix box centred on the peak of the partner's saliency map.

As in afm-shahab-uddin/SaliencyMix `saliency_bbox`: lam0 ~ Beta(alpha, alpha), box sides
int(H * sqrt(1 - lam0)), centred on the partner image's most salient pixel, half-sides side // 2,
clipped, the partner's pixels pasted at the same place, lam = 1 - box_area / (H * W). The original
computes one box per batch, from the first partner's saliency (`per_sample=False`).

Saliency: the original code calls OpenCV's `StaticSaliencyFineGrained`; this module uses OpenCV's
other static detector, spectral residual (Hou & Zhang 2007, `StaticSaliencySpectralResidual`),
re-implemented in torch: the OpenCV detectors run per image in a Python loop on the CPU (a device
round trip per sample), while spectral residual is two batched FFTs and two small convolutions on
whatever device the batch is on. The steps follow OpenCV's `computeSaliencyImpl`: grey image resized
to 64 x 64 (bilinear), log amplitude minus its 3 x 3 box blur, inverse FFT with the original phase,
magnitude blurred by a 5 x 5 Gaussian with sigma 8, squared, normalised, resized back.

Defaults: alpha = 1.0 (SaliencyMix `--beta` default 1, its Beta concentration); p = 0.5
(SaliencyMix CIFAR `--salmix_prob` default 0.5).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from mixlib.mixing.base import (
    BoxMixing,
    beta,
    box_sides,
    centred_boxes,
    check_flag,
    check_positive,
    draw_count,
)

# ITU-R BT.601 luma, the weights of OpenCV's BGR2GRAY (applied here in RGB order).
LUMA = (0.299, 0.587, 0.114)
SALIENCY_SIZE = 64


def _gaussian_kernel(size: int, sigma: float) -> tuple[float, ...]:
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return tuple((weights / weights.sum()).tolist())


BOX_3 = (1 / 3,) * 3  # OpenCV's 3 x 3 box blur of the log amplitude
GAUSSIAN_5 = _gaussian_kernel(5, 8.0)  # OpenCV's 5 x 5 Gaussian, sigma 8, of the saliency map


@functools.lru_cache(maxsize=16)
def _blur_matrix(size: int, kernel_1d: tuple[float, ...], device: torch.device) -> Tensor:
    """(size, size) matrix of a 1-D blur with reflect-101 borders (OpenCV's BORDER_DEFAULT) folded in.

    `matrix @ maps @ matrix.T` blurs a batch of (size, size) maps with two small batched matmuls,
    several times faster on the CPU than single-channel `conv2d` or shifted-slice sums. Cached: building
    it costs a dozen small ops, which a per-batch SaliencyMix (one image) would pay on every call.
    """
    kernel = torch.tensor(kernel_1d, device=device)
    pad = len(kernel_1d) // 2
    rows = torch.arange(size, device=device)[:, None]
    sources = rows + torch.arange(-pad, pad + 1, device=device)[None, :]
    sources = sources.abs()  # reflect-101 at the top: -1 -> 1
    sources = torch.where(sources > size - 1, 2 * (size - 1) - sources, sources)
    matrix = torch.zeros(size, size, device=device)
    return matrix.index_put_((rows.expand_as(sources), sources), kernel.expand_as(sources), accumulate=True)


def _blur(maps: Tensor, kernel_1d: tuple[float, ...]) -> Tensor:
    matrix = _blur_matrix(maps.shape[-1], kernel_1d, maps.device)
    return matrix @ maps @ matrix.T


def _squared_magnitude(values: Tensor) -> Tensor:
    parts = torch.view_as_real(values)
    return parts[..., 0] * parts[..., 0] + parts[..., 1] * parts[..., 1]


def _resize(maps: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(maps.shape[-2:]) == size:
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def spectral_residual_saliency(images: Tensor) -> Tensor:
    """(B, H, W) spectral-residual saliency in [0, 1] of a (B, 3, H, W) batch (OpenCV's algorithm).

    exp(log|F| - blur(log|F|)) with F's phase is F * exp(-blur(log|F|)), which avoids the polar
    round trip; magnitudes come from real and imaginary parts directly.
    """
    batch_size, channels, height, width = images.shape
    luma = torch.tensor(LUMA, device=images.device, dtype=torch.float32).view(1, 3)
    # A (1, 3) @ (B, 3, H * W) matmul reads the batch once; a weighted channel sum is about 4x slower.
    grey = (luma @ images.float().reshape(batch_size, channels, -1)).view(batch_size, 1, height, width)
    grey = _resize(grey, (SALIENCY_SIZE, SALIENCY_SIZE))
    spectrum = torch.fft.fft2(grey)
    log_amplitude = 0.5 * torch.log(_squared_magnitude(spectrum).clamp_min(1e-24))
    residual = torch.fft.ifft2(spectrum * torch.exp(-_blur(log_amplitude, BOX_3)))
    magnitude = _squared_magnitude(residual).sqrt()
    saliency = _blur(magnitude, GAUSSIAN_5) ** 2
    saliency = saliency / saliency.amax(dim=(2, 3), keepdim=True).clamp_min(1e-30)
    return _resize(saliency, (height, width))[:, 0]


def saliency_peaks(images: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column of each image's most salient pixel, (B,) int64 each."""
    saliency = spectral_residual_saliency(images)
    flat_peak = saliency.flatten(1).max(1).indices  # the first maximum, as argmax, at a third of its CPU cost
    return flat_peak // saliency.shape[-1], flat_peak % saliency.shape[-1]


class SaliencyMix(BoxMixing):
    """SaliencyMix: the partner's most salient box replaces the same box of the sample.

    Args:
        alpha: Beta concentration for lam0, > 0 (SaliencyMix `--beta` 1).
        p: probability that a batch is mixed (default 0.5, SaliencyMix CIFAR `--salmix_prob`).
        per_sample: one box per sample, at its partner's peak (default), or one box for the whole batch
            at the first partner's peak (the original).
    """

    name = "saliencymix"

    def __init__(self, alpha: float = 1.0, p: float = 0.5, per_sample: bool = True) -> None:
        super().__init__(p)
        self.alpha = check_positive("alpha", alpha)
        self.per_sample = check_flag("per_sample", per_sample)

    def sample_boxes(self, inputs, partner, generator, model):
        batch_size, _, height, width = inputs.shape
        count = draw_count(batch_size, self.per_sample)
        lam = beta(self.alpha, count, generator).to(inputs.device)
        with torch.no_grad():
            if self.per_sample:  # each image's peak, read at its partner: no permuted copy of the batch
                peak_y, peak_x = (peak[partner] for peak in saliency_peaks(inputs))
            else:  # the first partner's peak, shared by the batch
                peak_y, peak_x = saliency_peaks(inputs[partner[:1]])
        cut_h, cut_w = box_sides(torch.sqrt(1 - lam), height, width)
        return centred_boxes(peak_y, peak_x, cut_h, cut_w, height, width)

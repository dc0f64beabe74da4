"""PuzzleMix (Kim et al. 2020), the representative saliency-optimised ("dynamic") method.

What follows snu-mllab/PuzzleMix (`main.py` for the saliency, `mixup.py` `mixup_graph` for the mask):

- Saliency: an extra forward/backward pass of the model being trained, in eval mode, on the clean
  batch; saliency = sqrt(mean over channels of (dL/dx)^2) with L the mean cross-entropy. Here it uses
  `torch.autograd.grad`, so parameter `.grad` fields are untouched, and every module's mode is restored.
- Mask: an image of g x g blocks, g drawn from {2, 4, 8, 16} per batch; each block takes one of
  `n_labels` mixing levels (own-image weight 1, 1/2, 0 for 3 labels). The energy is the original's:
  the saliency each level throws away (block saliency pooled and normalised per image), a prior
  eta * -log(binomial probability of the level under lam) / g^2 with lam ~ Beta(alpha, alpha), a
  label-smoothness term beta / g / 16 * (level difference)^2 between neighbouring blocks, and a
  data-smoothness term beta / g / 16 * gamma * (mean absolute pixel difference across the block border,
  images average-pooled by `neigh_size`), folded into the unary and pairwise terms as the original does.
- lam is the mask's mean, as the original's `ratio`.

What is simplified, and why:

- Solver. The original minimises the energy per image with an alpha-beta-swap graph cut (the `gco`
  C++ library, one call per image in a CPU process pool). Here the same energy is minimised for the
  whole batch at once by iterated conditional modes on a checkerboard: all blocks of one colour (no two
  of which are neighbours) move to their best level given their neighbours, then the other colour,
  for at most `iterations` sweeps or until nothing changes, starting from each block's best unary
  level. No sweep raises the energy, but the result is a local minimum, not the graph cut's stronger
  swap-move optimum. Why: gco is a compiled dependency outside this project's requirements,
  and a per-image CPU call is exactly the per-sample loop (and device round trip) this library avoids.
- Transport. The original then moves salient blocks of each image, within the region its mask keeps,
  by an approximate optimal-transport plan (`mask_transport`, `t_eps` 0.8). It is skipped: the mask
  alone already keeps the salient blocks of both images, the original's plan is itself a one-pass
  greedy approximation (its refinement loop does not update the costs), and moving blocks would make
  `mask` no longer describe where each pixel came from.
- Not provided: the original's adversarial-noise option (`adv_p`, off by default) and the
  clean-input loss (`clean_lam`, 0 on CIFAR, 1 on Tiny-ImageNet); the saliency pass here never
  contributes to the training loss.

Defaults: n_labels = 3, beta = 1.2, gamma = 0.5, eta = 0.2, neigh_size = 4 (snu-mllab/PuzzleMix
`main.py` argument defaults); alpha = 1.0 (its README's CIFAR-100 command, `--mixup_alpha 1.0`);
p = 1.0 (the original mixes every batch). Images are un-normalised
with the ImageNet mean and std before the data-smoothness term, as the original un-normalises its own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from mixlib.mixing.base import (
    MaskMixing,
    beta,
    check_flag,
    check_int,
    check_positive,
    check_range,
    draw_count,
    integers,
    require_model,
    to_batch,
)
from mixlib.model_state import evaluation_mode

BLOCK_COUNTS = (2, 4, 8, 16)
PAIRS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (first block, second block) sources: 0 partner, 1 own


def gradient_saliency(model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    """(B, H, W) sqrt(mean_c (dL/dx)^2) of the mean cross-entropy, in eval mode, leaving `.grad` alone."""
    with torch.enable_grad(), evaluation_mode(model):
        images = inputs.detach().requires_grad_(True)
        loss = F.cross_entropy(model(images), targets)
        (gradient,) = torch.autograd.grad(loss, images)
    return gradient.pow(2).mean(1).sqrt()


def border_differences(first: Tensor, second: Tensor, cells_h: int, cells_w: int) -> tuple[Tensor, Tensor]:
    """Mean |first - second| across each block border (original `neigh_penalty`).

    `first`/`second` are pooled images (B, C, h, w) with `cells_h` x `cells_w` pooled pixels per
    block; returns the (B, g-1, g) vertical-neighbour and (B, g, g-1) horizontal-neighbour costs, where
    `first` fills the upper (left) block and `second` the lower (right) one.
    """
    rows = (first[:, :, :-1, :] - second[:, :, 1:, :])[:, :, cells_h - 1 :: cells_h, :]
    cols = (first[:, :, :, :-1] - second[:, :, :, 1:])[:, :, :, cells_w - 1 :: cells_w]
    rows = F.avg_pool2d(rows.abs().mean(1), kernel_size=(1, cells_w))
    cols = F.avg_pool2d(cols.abs().mean(1), kernel_size=(cells_h, 1))
    return rows, cols


def fold_border_costs(cost_own: Tensor, cost_partner: Tensor, border: list[Tensor], axis: int) -> Tensor:
    """Split the four border costs (partner/own on each side) into unary parts and one pairwise weight.

    The original's reduction: each side's unary cost takes the mean of the two costs where that side
    holds its level, and the edge keeps (c01 + c10 - c00 - c11) / 2 as its weight. `axis` 0 is the
    vertical neighbours, 1 the horizontal ones; the unary grids are updated in place.
    """
    c00, c01, c10, c11 = border
    dim, length = axis + 1, cost_own.shape[axis + 1] - 1
    cost_own.narrow(dim, 0, length).add_((c10 + c11) / 2)
    cost_partner.narrow(dim, 0, length).add_((c01 + c00) / 2)
    cost_own.narrow(dim, 1, length).add_((c01 + c11) / 2)
    cost_partner.narrow(dim, 1, length).add_((c10 + c00) / 2)
    return (c10 + c01 - c11 - c00) / 2


def level_priors(lam: Tensor, n_labels: int, eta: float, blocks: int) -> Tensor:
    """(B, L) eta * -log P(level) / g^2, P binomial: level l takes a share l / (L-1) from the partner."""
    levels = torch.arange(n_labels, device=lam.device, dtype=lam.dtype)
    binomial = torch.tensor([math.comb(n_labels - 1, level) for level in range(n_labels)], device=lam.device)
    lam = lam[:, None]
    probability = binomial * lam ** (n_labels - 1 - levels) * (1 - lam) ** levels
    return -eta * torch.log(probability + 1e-8) / blocks**2


def neighbour_sums(values: Tensor, row_weights: Tensor, col_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Per block, the sum of its edge weights and the weighted sum of its neighbours' values."""
    weight_sum = (
        F.pad(row_weights, (0, 0, 1, 0))
        + F.pad(row_weights, (0, 0, 0, 1))
        + F.pad(col_weights, (1, 0))
        + F.pad(col_weights, (0, 1))
    )
    weighted_values = (
        F.pad(row_weights * values[:, :-1, :], (0, 0, 1, 0))
        + F.pad(row_weights * values[:, 1:, :], (0, 0, 0, 1))
        + F.pad(col_weights * values[:, :, :-1], (1, 0))
        + F.pad(col_weights * values[:, :, 1:], (0, 1))
    )
    return weight_sum, weighted_values


def checkerboard_icm(
    unary: Tensor, row_weights: Tensor, col_weights: Tensor, levels: Tensor, iterations: int
) -> Tensor:
    """Minimise sum unary[level] + sum_edges w * (level_p - level_q)^2 over a (B, g, g) grid of levels.

    `unary` is (B, L, g, g); returns (B, g, g) level indices. Blocks of one checkerboard colour are
    never neighbours, so updating all of them at once is an exact coordinate-descent step.
    """
    blocks = unary.shape[-1]
    labels = unary.argmin(1)
    index = torch.arange(blocks, device=unary.device)
    black = (index[:, None] + index[None, :]) % 2 == 0
    levels_ = levels[None, :, None, None]
    for _ in range(iterations):
        previous = labels
        for colour in (black, ~black):
            weight_sum, weighted_values = neighbour_sums(levels[labels], row_weights, col_weights)
            energy = unary + levels_**2 * weight_sum[:, None] - 2 * levels_ * weighted_values[:, None]
            labels = torch.where(colour, energy.argmin(1), labels)
        if torch.equal(labels, previous):
            break
    return labels


class PuzzleMix(MaskMixing):
    """PuzzleMix with a batched checkerboard-ICM solver and no block transport (see the module docstring).

    Args:
        alpha: Beta concentration of the prior mixing ratio lam, > 0 (original 1.0).
        n_labels: mixing levels per block, >= 2 (original 3: weights 1, 1/2, 0).
        beta: label smoothness, >= 0 (original 1.2).
        gamma: data smoothness, >= 0 (original 0.5).
        eta: weight of the prior towards lam, >= 0 (original 0.2).
        neigh_size: pooling size for the data-smoothness term, >= 1 (original 4).
        iterations: most checkerboard sweeps of the solver, >= 1 (default 8).
        p: probability that a batch is mixed (default 1.0).
        per_sample: one lam per sample (default) or one per batch (the original).
    """

    name = "puzzlemix"

    def __init__(
        self,
        alpha: float = 1.0,
        n_labels: int = 3,
        beta: float = 1.2,
        gamma: float = 0.5,
        eta: float = 0.2,
        neigh_size: int = 4,
        iterations: int = 8,
        p: float = 1.0,
        per_sample: bool = True,
    ) -> None:
        super().__init__(p)
        self.alpha = check_positive("alpha", alpha)
        self.n_labels = check_int("n_labels", n_labels, 2)
        self.beta = check_range("beta", beta, 0.0, math.inf, high_open=True)
        self.gamma = check_range("gamma", gamma, 0.0, math.inf, high_open=True)
        self.eta = check_range("eta", eta, 0.0, math.inf, high_open=True)
        self.neigh_size = check_int("neigh_size", neigh_size, 1)
        self.iterations = check_int("iterations", iterations, 1)
        self.per_sample = check_flag("per_sample", per_sample)

    def sample_mask(self, inputs, targets, partner, generator, model):
        model = require_model(model, self.name)
        batch_size, _, height, width = inputs.shape
        choices = [count for count in BLOCK_COUNTS if height % count == 0 and width % count == 0]
        if not choices:
            raise ValueError(f"inputs must have sides divisible by 2 for puzzlemix, got {height} x {width}")
        blocks = choices[int(integers(len(choices), 1, generator))]
        lam = to_batch(beta(self.alpha, draw_count(batch_size, self.per_sample), generator), batch_size)
        saliency = gradient_saliency(model, inputs, targets)
        unary, row_weights, col_weights = self.energy(
            inputs, saliency, partner, lam.to(inputs.device), blocks
        )
        levels = torch.linspace(0, 1, self.n_labels, device=inputs.device)
        labels = checkerboard_icm(unary, row_weights, col_weights, levels, self.iterations)
        own_weight = (1 - levels[labels])[:, None]
        return F.interpolate(own_weight, size=(height, width), mode="nearest")

    def energy(
        self, inputs: Tensor, saliency: Tensor, partner: Tensor, lam: Tensor, blocks: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Unary costs (B, L, g, g) per level and the two pairwise weight grids, as in `mixup_graph`."""
        height, width = inputs.shape[-2:]
        block_h, block_w = height // blocks, width // blocks
        pooled = F.avg_pool2d(saliency[:, None], (block_h, block_w))[:, 0]
        own_saliency = pooled / pooled.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        cost_own = own_saliency[partner]  # keeping a block of the sample loses the partner's saliency there
        cost_partner = own_saliency.clone()
        smoothness = self.beta / blocks / 16

        # The original pools by min(neigh_size, block side); the pool must also tile the blocks.
        neigh = max(size for size in range(1, self.neigh_size + 1) if block_h % size == 0 == block_w % size)
        mean = torch.tensor(IMAGENET_MEAN, device=inputs.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=inputs.device).view(1, 3, 1, 1)
        own_pixels = F.avg_pool2d(inputs.detach() * std + mean, neigh)
        sources = (own_pixels[partner], own_pixels)  # index 0: the block is the partner's, 1: the sample's
        border = {
            (a, b): border_differences(sources[a], sources[b], block_h // neigh, block_w // neigh)
            for a in (0, 1)
            for b in (0, 1)
        }
        weights = [
            fold_border_costs(
                cost_own, cost_partner, [smoothness * self.gamma * border[key][axis] for key in PAIRS], axis
            )
            + smoothness
            for axis in (0, 1)
        ]
        levels = torch.linspace(0, 1, self.n_labels, device=inputs.device)[None, :, None, None]
        priors = level_priors(lam, self.n_labels, self.eta, blocks)[:, :, None, None]
        unary = (1 - levels) * cost_own[:, None] + levels * cost_partner[:, None] + priors
        return unary, weights[0], weights[1]

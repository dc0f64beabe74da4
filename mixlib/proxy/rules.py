"""Proxy Attention's two rules, each a registry: which misclassified images become proxies
(`SELECTIONS`) and what their hot pixels become (`REPLACEMENTS`).

`ProxySettings` checks its `selection` and `replacement` against these registries, and
`mixlib.proxy.images` applies them, so they sit below both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mixlib.registry import Registry

# -- which misclassified images become proxies ---------------------------------------------------

Selection = Callable[[Tensor, Tensor, int, torch.Generator], Tensor]
SELECTIONS: Registry[Selection] = Registry("selection")


@SELECTIONS.register("first")
def first_found(wrong: Tensor, losses: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """The first `count` misclassified images met in a shuffled pass over the training set.

    The reference collects misclassified images during its shuffled training epoch and keeps the first
    ones; the pass here is a seeded permutation. In distribution this equals `random`; it is kept to
    reproduce the reference's rule exactly.
    """
    order = torch.randperm(len(wrong), generator=generator)
    return order[wrong[order]][:count]


@SELECTIONS.register("random")
def random_subset(wrong: Tensor, losses: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """`count` misclassified images drawn uniformly without replacement, in training-set order."""
    candidates = wrong.nonzero().squeeze(1)
    picked = torch.randperm(len(candidates), generator=generator)[:count]
    return candidates[picked.sort().values]


@SELECTIONS.register("highest_loss")
def highest_loss(wrong: Tensor, losses: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """The `count` misclassified images with the largest cross-entropy, largest first (ties: lower index)."""
    candidates = wrong.nonzero().squeeze(1)
    order = torch.sort(losses[candidates], descending=True, stable=True).indices
    return candidates[order[:count]]


# -- how hot pixels are altered -----------------------------------------------------------------

# A rule maps (pixels (N,3,H,W) in [0,1], cams (N,1,H,W) in [0,1], weight) to the replacement values.
Replacement = Callable[[Tensor, Tensor, float], Tensor]
REPLACEMENTS: Registry[Replacement] = Registry("replacement")
REPLACEMENTS.register("blended")(lambda pixels, cams, weight: (1 - weight * cams) * pixels)
# The statistics are of the CAM, as in the reference; there they are taken over the whole chunk of
# images processed together, here per image, so the result does not depend on the chunk size. grad-cam
# min-max normalises each map, so max/min/halfmax give 1/0/0.5 either way; only `mean` differs.
REPLACEMENTS.register("mean")(lambda pixels, cams, weight: cams.mean(dim=(1, 2, 3), keepdim=True))
REPLACEMENTS.register("max")(lambda pixels, cams, weight: cams.amax(dim=(1, 2, 3), keepdim=True))
REPLACEMENTS.register("min")(lambda pixels, cams, weight: cams.amin(dim=(1, 2, 3), keepdim=True))
REPLACEMENTS.register("halfmax")(lambda pixels, cams, weight: cams.amax(dim=(1, 2, 3), keepdim=True) / 2)

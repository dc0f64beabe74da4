"""Attentive CutMix (Walawalkar et al. 2020): paste the partner's most attended feature-grid cells.

The original (xden2331/attentive_cutmix `attentive_transform.py`) ranks the cells of the last feature
map of a separate ImageNet-pretrained ResNet-50 (7 x 7 on ImageNet, 8 x 8 on CIFAR) and pastes the
top k = 6 cells of one image onto another, at the same places; lam = 1 - pasted area.

Here no extra network is used: the attention map is the class activation map of the model being
trained (Zhou et al. 2016), for the partner's own label: its last feature map (`forward_features`)
weighted by the classifier row of that label (`get_classifier().weight`). The pass runs in eval mode
under `torch.no_grad`, and every module's train/eval mode is restored afterwards. The grid is the
feature map's own (8 x 8 for a 64 px input with `create_model(small_input=True)`), or `grid_size`
cells per side after adaptive average pooling; cells map to pixels by nearest-neighbour upsampling.

Pasted share: the paper pastes k = 6 of the 7 x 7 = 49 cells, 12.2 % of the image (lam = 0.878 on
average). The grid here is the trained model's own and coarser (8 x 8 for tiny-imagenet, 6 x 6 in the
quick profile), where 6 cells would paste 9.4 % and 16.7 %. So by default k scales with the grid,
k = round(6 / 49 * cells), at least 1: 2 of 16 cells (lam = 0.875), 4 of 36 (0.889), 8 of 64 (0.875).
An explicit `top_k` pastes that many cells whatever the grid.

Defaults: top_k = None, the paper's 6 of 49 scaled to the grid (above); p = 1.0 (the original mixes
every image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixlib.mixing.base import MaskMixing, check_int, require_model
from mixlib.model_state import evaluation_mode


def class_activation_maps(model: nn.Module, inputs: Tensor, labels: Tensor) -> Tensor:
    """(B, h, w) CAMs of `labels` from a timm classifier (`forward_features` + a linear head)."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not hasattr(model, "forward_features") or not isinstance(classifier, nn.Linear):
        raise ValueError(
            f"model must be a timm classifier with forward_features() and a linear get_classifier(), "
            f"got {type(model).__name__}"
        )
    with torch.no_grad(), evaluation_mode(model):
        features = model.forward_features(inputs)
        return torch.einsum("bchw,bc->bhw", features, classifier.weight[labels].to(features.dtype))


PAPER_PASTED_SHARE = 6 / 49  # Walawalkar et al. 2020: the top 6 cells of a 7 x 7 grid


def scaled_top_k(cells: int) -> int:
    """Cells to paste so that their share of a `cells` grid is the paper's 6 of 49 (at least one)."""
    return max(1, round(PAPER_PASTED_SHARE * cells))


def top_cells(maps: Tensor, top_k: int, height: int, width: int) -> Tensor:
    """(B, 1, H, W) boolean mask of the `top_k` highest cells of each (B, h, w) map, upsampled."""
    cells = maps.flatten(1)
    if top_k > cells.shape[1]:
        raise ValueError(
            f"top_k must be at most the {cells.shape[1]} cells of the attention grid, got {top_k}"
        )
    chosen = torch.zeros_like(cells, dtype=torch.bool)
    chosen.scatter_(1, cells.topk(top_k, dim=1).indices, True)
    grid = chosen.view(-1, 1, *maps.shape[1:]).float()
    return F.interpolate(grid, size=(height, width), mode="nearest") > 0.5


class AttentiveCutMix(MaskMixing):
    """Attentive CutMix with the trained model's own CAM of the partner's label.

    Args:
        top_k: number of grid cells pasted from the partner, >= 1; None (default) scales the paper's
            6 of 49 cells to the grid, so the pasted share matches the paper's (`scaled_top_k`).
        grid_size: cells per side of the attention grid; None (default) uses the feature map's grid.
        p: probability that a batch is mixed (default 1.0).
    """

    name = "attentive_cutmix"

    def __init__(self, top_k: int | None = None, grid_size: int | None = None, p: float = 1.0) -> None:
        super().__init__(p)
        self.top_k = None if top_k is None else check_int("top_k", top_k, 1)
        self.grid_size = None if grid_size is None else check_int("grid_size", grid_size, 1)

    def sample_mask(self, inputs, targets, partner, generator, model):
        model = require_model(model, self.name)
        height, width = inputs.shape[-2:]
        maps = class_activation_maps(model, inputs, targets)[partner]
        if self.grid_size is not None:
            maps = F.adaptive_avg_pool2d(maps[:, None], self.grid_size)[:, 0]
        top_k = scaled_top_k(maps[0].numel()) if self.top_k is None else self.top_k
        return ~top_cells(maps, top_k, height, width)

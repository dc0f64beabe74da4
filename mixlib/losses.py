"""The classification loss shared by every training method, and the contract for extra loss terms.

A batch transform (a mixing method, or no mixing) returns a `MixedBatch`: each sample carries two
labels and the weight `lam` of the first. The loss is the seed run report's
`mean(lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b))`; with `lam = 1` it is plain cross-entropy,
and label smoothing composes because it is applied inside each CE term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class MixedBatch:
    """A training batch after a batch transform.

    `mask`, when a method has one, is the per-pixel weight of the original image (1 where the pixel
    comes from `inputs`' own sample, 0 where it comes from the partner), shape (B, 1, H, W).
    `partner` is the index of each sample's partner in the batch, or None when nothing was mixed.
    """

    inputs: Tensor
    targets_a: Tensor
    targets_b: Tensor
    lam: Tensor
    mask: Tensor | None = None
    partner: Tensor | None = None

    @classmethod
    def unmixed(cls, inputs: Tensor, targets: Tensor) -> MixedBatch:
        ones = torch.ones(len(targets), device=inputs.device, dtype=torch.float32)
        return cls(inputs=inputs, targets_a=targets, targets_b=targets, lam=ones)

    def soft_targets(self, num_classes: int) -> Tensor:
        """Label weights per class; each row sums to 1."""
        lam = self.lam.unsqueeze(1)
        a = F.one_hot(self.targets_a, num_classes).float()
        b = F.one_hot(self.targets_b, num_classes).float()
        return lam * a + (1 - lam) * b


def mixed_cross_entropy(logits: Tensor, batch: MixedBatch, label_smoothing: float = 0.0) -> Tensor:
    loss_a = F.cross_entropy(logits, batch.targets_a, reduction="none", label_smoothing=label_smoothing)
    loss_b = F.cross_entropy(logits, batch.targets_b, reduction="none", label_smoothing=label_smoothing)
    lam = batch.lam.to(loss_a.dtype)
    return (lam * loss_a + (1 - lam) * loss_b).mean()


class LossTerm(Protocol):
    """An extra, weighted loss term added to the classification loss (CAM regularisers etc.).

    It sees the model, the (possibly mixed) batch, the last feature map and the logits of the same
    forward pass, so CAM-based terms need no second pass.
    """

    name: str

    def __call__(self, model: nn.Module, batch: MixedBatch, features: Tensor, logits: Tensor) -> Tensor: ...

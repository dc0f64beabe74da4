"""Borrow a model for evaluation without leaving a trace on it.

grad-cam's CAM objects call `model.eval()` and `model.zero_grad()`, and perturbation metrics run
many forward passes; a caller in the middle of training must get its model back exactly as it was:
every module's train/eval flag, every parameter's `requires_grad` and any gradient already stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def borrowed_for_evaluation(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode with frozen parameters inside the block; the exact previous state after it, even on errors.

    Parameters are frozen so that a backward pass for a CAM never computes (or overwrites) weight
    gradients. Flags are restored module by module because `Module.train(mode)` would overwrite
    submodules that were deliberately in another mode (e.g. frozen batch norm).
    """
    modes = [(module, module.training) for module in model.modules()]
    parameters = list(model.parameters())
    saved = [(p, p.requires_grad, p.grad) for p in parameters]
    try:
        model.eval()
        for parameter in parameters:
            parameter.requires_grad_(False)
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for parameter, requires_grad, grad in saved:
            parameter.requires_grad_(requires_grad)
            parameter.grad = grad

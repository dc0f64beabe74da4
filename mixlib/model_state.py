"""Borrow a model for an evaluation pass without leaving a trace on it.

Prediction, CAMs, perturbation metrics, FLOP counting and the model-based mixing methods all run a
model in eval mode in the middle of something else (often training). Each must hand the model back
exactly as it was: `Module.train(was_training)` is not enough, because it overwrites submodules that
were deliberately in another mode (e.g. frozen batch norm in a partly frozen model), so the flags are
saved and restored module by module. This module imports only torch, so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block (no BatchNorm statistic updates, no dropout); every module's own
    train/eval flag back after it, even on errors."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def borrowed_for_evaluation(model: nn.Module) -> Iterator[nn.Module]:
    """`evaluation_mode` with frozen parameters; every `requires_grad` and stored gradient back after it.

    Parameters are frozen so that a backward pass for a CAM never computes (or overwrites) weight
    gradients; grad-cam's CAM objects also call `model.zero_grad()`, so stored gradients are kept aside.
    """
    saved = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    with evaluation_mode(model):
        try:
            for parameter, _, _ in saved:
                parameter.requires_grad_(False)
            yield model
        finally:
            for parameter, requires_grad, grad in saved:
                parameter.requires_grad_(requires_grad)
                parameter.grad = grad

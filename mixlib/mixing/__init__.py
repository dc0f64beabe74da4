"""Mixed-sample data augmentation methods, chosen by name from `MIXING`.

Every method is a `BatchTransform`: called on a batch (inputs, integer targets) it returns a
`MixedBatch`. Factories take the method's hyperparameters as keyword arguments.

Each method lives in its own module around the shared `base` (pairing, Beta draws, application
probability, boxes, mask blending); its class docstring lists the hyperparameters, defaults and the
source of each default. The classes are the factories: `create_batch_transform("cutmix", alpha=1.0)`
is `CutMix(alpha=1.0)`.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from mixlib.losses import MixedBatch
from mixlib.mixing.attentive_cutmix import AttentiveCutMix
from mixlib.mixing.base import BoxMixing, MaskMixing, MixingMethod
from mixlib.mixing.cutmix import CutMix
from mixlib.mixing.erasing import Cutout, RandomErasing
from mixlib.mixing.fmix import FMix
from mixlib.mixing.hmix_gmix import GMix, HMix
from mixlib.mixing.mixup import MixUp
from mixlib.mixing.puzzlemix import PuzzleMix
from mixlib.mixing.resizemix import ResizeMix
from mixlib.mixing.saliencymix import SaliencyMix
from mixlib.mixing.smoothmix import SmoothMix
from mixlib.registry import Registry


class BatchTransform(Protocol):
    def __call__(
        self,
        inputs: Tensor,
        targets: Tensor,
        generator: torch.Generator | None = None,
        model: nn.Module | None = None,
    ) -> MixedBatch: ...


MIXING: Registry = Registry("method")


@MIXING.register("none")
def no_mixing() -> BatchTransform:
    """Plain training: every sample keeps its own label (the baseline)."""

    def transform(inputs, targets, generator=None, model=None):
        return MixedBatch.unmixed(inputs, targets)

    return transform


def method_parameters(method: str) -> dict[str, Any] | None:
    """The parameters `method` takes, with their defaults, read off its class's constructor.

    None for a factory that takes any keyword (Proxy Attention), which checks its own keys. The ranges
    are declared once, in each constructor's checks, so they are not repeated here.
    """
    signature = inspect.signature(MIXING.get(method, "method"))
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return {name: p.default for name, p in signature.parameters.items()}


def create_batch_transform(method: str, **params: Any) -> BatchTransform:
    """`method`'s transform; an unknown key or a bad value is a ValueError naming `method_params`."""
    allowed = method_parameters(method)
    if allowed is None:
        return MIXING.get(method)(**params)
    listing = ", ".join(f"{name} (default {default!r})" for name, default in allowed.items()) or "none"
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown method_params {unknown} for method {method!r}; allowed: {listing}")
    try:
        return MIXING.get(method)(**params)
    except ValueError as error:
        raise ValueError(f"method_params of method {method!r}: {error} (allowed: {listing})") from error


METHODS: tuple[type[MixingMethod], ...] = (
    MixUp,
    CutMix,
    FMix,
    ResizeMix,
    SmoothMix,
    HMix,
    GMix,
    Cutout,
    RandomErasing,
    SaliencyMix,
    AttentiveCutMix,
    PuzzleMix,
)
for _method in METHODS:
    MIXING.register(_method.name)(_method)

__all__ = [
    "MIXING",
    "METHODS",
    "AttentiveCutMix",
    "BatchTransform",
    "BoxMixing",
    "CutMix",
    "Cutout",
    "FMix",
    "GMix",
    "HMix",
    "MaskMixing",
    "MixUp",
    "MixingMethod",
    "PuzzleMix",
    "RandomErasing",
    "ResizeMix",
    "SaliencyMix",
    "SmoothMix",
    "create_batch_transform",
    "method_parameters",
    "no_mixing",
]
from mixlib.proxy import method as _proxy_method  # noqa: E402, F401  registers "proxy"; needs MIXING

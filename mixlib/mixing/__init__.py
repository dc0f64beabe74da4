"""Mixed-sample data augmentation methods, chosen by name from `MIXING`.

Every method is a `BatchTransform`: called on a batch (inputs, integer targets) it returns a
`MixedBatch`. Factories take the method's hyperparameters as keyword arguments.

Application probability: every method mixes a batch with probability `p`, whose default is the
method's published value (0.5 for CutMix and SaliencyMix, 1.0 for most others). A comparison of methods
should not also compare those values, so `create_batch_transform` takes one `application_probability`
for every mixed-sample method (a profile's `mix_probability`); the single-image baselines (Cutout,
Random Erasing) keep their own `p`, as they mix no second image.

Each method lives in its own module around the shared `base` (pairing, Beta draws, application
probability, boxes, mask blending); its class docstring lists the hyperparameters, defaults and the
source of each default. The classes are the factories: `create_batch_transform("cutmix", alpha=1.0)`
is `CutMix(alpha=1.0)`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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


def method_parameters(method: str) -> dict[str, Any]:
    """The parameters `method` takes, with their defaults, read off its class's constructor.

    The ranges are declared once, in each constructor's checks, so they are not repeated here.
    """
    signature = inspect.signature(MIXING.get(method, "method"))
    return {name: p.default for name, p in signature.parameters.items()}


def create_batch_transform(
    method: str, application_probability: float | None = None, **params: Any
) -> BatchTransform:
    """The transform of `method` with hyperparameters `params`.

    `application_probability`, when given, is the probability that a batch is mixed, whatever the
    method's own default (see the module docstring); None keeps the method's default or `params["p"]`.
    An unknown key or a bad value is a ValueError naming `method_params`.
    """
    factory = MIXING.get(method, "method")
    allowed = method_parameters(method)
    listing = ", ".join(f"{name} (default {default!r})" for name, default in allowed.items()) or "none"
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown method_params {unknown} for method {method!r}; allowed: {listing}")
    try:
        return factory(**with_application_probability(factory, params, application_probability))
    except ValueError as error:
        raise ValueError(f"method_params of method {method!r}: {error} (allowed: {listing})") from error


def with_application_probability(
    factory: Callable[..., BatchTransform], params: dict[str, Any], probability: float | None
) -> dict[str, Any]:
    """`params` with `probability` as the `p` of a mixed-sample method; the baseline and the
    single-image methods are left as they are."""
    if probability is None or not mixes_two_images(factory):
        return params
    if "p" in params:
        raise ValueError(
            f"p = {params['p']!r} is set in the method's parameters and the application probability "
            f"(mix_probability) is {probability!r}: set only one; mix_probability: null keeps p"
        )
    return {**params, "p": probability}


def mixes_two_images(factory: Callable[..., BatchTransform]) -> bool:
    """Whether a registered factory is a `MixingMethod` that mixes a second image in (the baseline and
    the erasing methods do not)."""
    return isinstance(factory, type) and issubclass(factory, MixingMethod) and factory.mixes_images


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
    "mixes_two_images",
    "no_mixing",
    "with_application_probability",
]

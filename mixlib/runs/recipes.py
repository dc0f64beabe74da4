"""Run recipes: what a configuration trains with, by method name.

A recipe turns a RunConfig into the three things the engine plugs in: the batch transform, the extra
loss terms and the callbacks. Every mixing method of `mixlib.mixing.MIXING` is a recipe by itself
(its transform, no callback); a training recipe such as Proxy Attention pairs an inner mixing method's
transform with callbacks. So `method` names a recipe, and this is the one place that checks it,
together with `method_params` and `mix_probability`.

A recipe also names the code that only its method executes (`Recipe.code`: a mixing method's module,
Proxy Attention's package), so that a run is retrained when its own method's code changes and not
when another method's does (`mixlib.runs.keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mixlib.cams import create_loss_terms
from mixlib.config import RunConfig
from mixlib.losses import LossTerm
from mixlib.mixing import MIXING, BatchTransform, create_batch_transform
from mixlib.proxy import ProxyAttention, ProxySettings
from mixlib.registry import Registry
from mixlib.training import Callback


@dataclass(frozen=True)
class Recipe:
    """What the engine trains a run with."""

    batch_transform: BatchTransform
    loss_terms: tuple[LossTerm, ...] = ()
    callbacks: tuple[Callback, ...] = ()
    # modules, or packages (every module below them), that only this method executes
    code: tuple[str, ...] = ()


@dataclass(frozen=True)
class MethodParts:
    """What a method's recipe function returns: the parts that depend on the method alone."""

    batch_transform: BatchTransform
    callbacks: tuple[Callback, ...] = ()
    code: tuple[str, ...] = ()


MethodRecipe = Callable[[RunConfig], MethodParts]
RECIPES: Registry[MethodRecipe] = Registry("method")


def mixing_only(config: RunConfig) -> MethodParts:
    """A batch transform and nothing else; `mix_probability` is every mixed-sample method's `p`."""
    transform = create_batch_transform(config.method, config.mix_probability, **config.method_params)
    return MethodParts(transform, code=mixing_code(config.method))


def mixing_code(method: str) -> tuple[str, ...]:
    """The module of a mixing method's own class; none for the baseline, which the package defines."""
    module = MIXING.get(method, "method").__module__
    return () if module == MIXING_PACKAGE else (module,)


MIXING_PACKAGE = "mixlib.mixing"
PROXY_PACKAGE = "mixlib.proxy"


def every_method_code() -> set[str]:
    """What `Recipe.code` can name, over every recipe: each mixing method's module and Proxy Attention's
    package (listed, not built: a recipe needs parameters that fit it, e.g. Proxy Attention's epochs)."""
    return {*(module for name in MIXING for module in mixing_code(name)), PROXY_PACKAGE}


for _name in MIXING:
    RECIPES.register(_name)(mixing_only)


@RECIPES.register("proxy")
def proxy_attention(config: RunConfig) -> MethodParts:
    """Per batch the inner mixing method (with the profile's `mix_probability`, so Proxy Attention on
    CutMix mixes as many batches as the profile's CutMix); between epochs the proxy callback.

    The settings are checked against the run's `epochs` (a schedule must fit the run).
    """
    settings = ProxySettings.from_params(config.method_params, config.epochs)
    transform = create_batch_transform(settings.mixing, config.mix_probability, **settings.mixing_params)
    return MethodParts(transform, (ProxyAttention(settings),), (PROXY_PACKAGE, *mixing_code(settings.mixing)))


def create_recipe(config: RunConfig) -> Recipe:
    """The recipe of `config`: a ValueError naming `method`, `method_params` or `mix_probability` when
    one of them is bad (a fresh callback per call: a callback belongs to one run)."""
    parts = RECIPES.get(config.method, "method")(config)
    loss_terms = create_loss_terms(config.lambda_ent, config.lambda_con, config.lambda_eq, config.seam_scale)
    return Recipe(parts.batch_transform, tuple(loss_terms), parts.callbacks, parts.code)


def check_recipe(config: RunConfig) -> RunConfig:
    """`config` itself once its recipe can be built: the check every user-given configuration passes."""
    create_recipe(config)
    return config


def application_probability(config: RunConfig) -> float | None:
    """The probability that a training batch of this run is transformed (None for plain training)."""
    return getattr(create_recipe(config).batch_transform, "p", None)

"""How Proxy Attention plugs into a run: a mixing-registry entry and a callback factory.

`method: proxy` names a *training component*, not a batch transform: per batch it behaves exactly as
its inner mixing method (`mixing`, default `none`), and between epochs its callback adds proxy images.
So the `MIXING` entry returns the inner method's transform, and `create_method_callbacks` returns the
callback. Both validate the whole of `method_params` first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mixlib.mixing import MIXING, BatchTransform, create_batch_transform
from mixlib.proxy.settings import ProxySettings


@MIXING.register("proxy")
def proxy_attention(application_probability: float | None = None, **method_params: Any) -> BatchTransform:
    """Proxy Attention per batch: its inner mixing method's transform (the proxies come from the callback).

    `application_probability` (a profile's `mix_probability`) goes to the inner method, so Proxy
    Attention on top of CutMix mixes as many batches as the profile's CutMix.
    """
    settings = ProxySettings.from_params(method_params)
    return create_batch_transform(settings.mixing, application_probability, **settings.mixing_params)


def proxy_callbacks(method_params: dict, epochs: int) -> list:
    # Imported here, not at the top: mixlib.training imports this module for `create_method_callbacks`,
    # and the callback needs mixlib.training (predict, build_eval_dataset).
    from mixlib.proxy.callback import ProxyAttention

    return [ProxyAttention(ProxySettings.from_params(method_params, epochs))]


# method name -> factory of the callbacks that method needs besides its batch transform
METHOD_CALLBACKS: dict[str, Callable[[dict, int], list]] = {"proxy": proxy_callbacks}


def create_method_callbacks(method: str, method_params: dict, epochs: int) -> list:
    """The training callbacks of `method` (an empty list for pure batch transforms).

    Building them validates `method_params` against the run's `epochs`, so `RunConfig` calls this too.
    """
    factory = METHOD_CALLBACKS.get(method)
    return factory(method_params, epochs) if factory else []

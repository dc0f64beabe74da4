"""Batched class activation maps through grad-cam (jacobgil/pytorch-grad-cam), for any model
`mixlib.models.create_model` builds.

grad-cam already computes a whole batch in one forward/backward pass; what this wrapper adds is
what a training project needs around it:

- a registry of methods by name (`CAM_METHODS`), with the CAM layer found by `cam_target_layer`;
- the model comes back as it was (train/eval flags, `requires_grad`, stored gradients) and the
  hooks are always released, even when the computation raises. The CAM object is not used as a
  context manager on purpose: grad-cam's `__exit__` swallows IndexError, so a wrong target would
  otherwise vanish silently;
- the backward pass stops at the CAM layer: the layer's output is cut from the graph and made a
  leaf that requires grad, so only the head is differentiated. The gradient-based methods read
  nothing deeper than that layer, so the maps are unchanged and the backbone's backward is saved;
- ScoreCAM (one masked forward pass per channel of the layer) gets a sensible inner batch size,
  an outer chunk small enough for its (images x channels x 3 x H x W) tensor, and no progress bars.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from unittest import mock

import numpy as np
import torch
import tqdm
from pytorch_grad_cam import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam import score_cam as score_cam_module
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from mixlib.model_state import borrowed_for_evaluation
from mixlib.models import cam_target_layer
from mixlib.registry import Registry

SCORE_CAM_BATCH_SIZE = 128  # masked images per forward pass inside ScoreCAM (grad-cam's default is 16)
SCORE_CAM_MEMORY_BYTES = 256 * 2**20  # ceiling for ScoreCAM's masked-input tensor per outer chunk


@dataclass(frozen=True)
class CamMethod:
    """A grad-cam class and how it must be driven."""

    cam_class: type[BaseCAM]
    uses_gradients: bool = True
    masked_forward_per_channel: bool = False  # ScoreCAM


CAM_METHODS: Registry[CamMethod] = Registry("CAM method")
CAM_METHODS.register("gradcam")(CamMethod(GradCAM))
CAM_METHODS.register("gradcam++")(CamMethod(GradCAMPlusPlus))
CAM_METHODS.register("xgradcam")(CamMethod(XGradCAM))
CAM_METHODS.register("layercam")(CamMethod(LayerCAM))
CAM_METHODS.register("hirescam")(CamMethod(HiResCAM))
CAM_METHODS.register("eigencam")(CamMethod(EigenCAM, uses_gradients=False))
CAM_METHODS.register("scorecam")(CamMethod(ScoreCAM, uses_gradients=False, masked_forward_per_channel=True))


def compute_cams(
    model: nn.Module,
    images: Tensor,
    targets: Sequence[int] | Tensor | np.ndarray | None = None,
    method: str = "gradcam",
    batch_size: int = 32,
    target_layer: nn.Module | None = None,
    score_cam_batch_size: int = SCORE_CAM_BATCH_SIZE,
) -> np.ndarray:
    """CAMs of `images` (B, 3, H, W) for `targets` (None: each image's predicted class).

    Returns a float32 array (B, H, W) in [0, 1] (grad-cam min-max normalises each map and resizes it
    to the input size). `target_layer` defaults to the model's last spatial feature map.
    """
    spec = CAM_METHODS.get(method, "method")
    _check_inputs(model, images, targets, batch_size, score_cam_batch_size)
    layer = target_layer if target_layer is not None else cam_target_layer(model)
    target_list = None if targets is None else _as_class_list(targets)
    with borrowed_for_evaluation(model):
        chunk = (
            _score_cam_chunk(model, images, layer, batch_size)
            if spec.masked_forward_per_channel
            else batch_size
        )
        cut = layer.register_forward_hook(_cut_graph_here) if spec.uses_gradients else None
        cam = None
        try:
            cam = spec.cam_class(model=model, target_layers=[layer])
            if spec.masked_forward_per_channel:
                cam.batch_size = score_cam_batch_size  # ScoreCAM's masked images per forward pass
            maps = [
                _run_chunk(
                    cam, spec, images[start : start + chunk], _chunk_targets(target_list, start, chunk)
                )
                for start in range(0, len(images), chunk)
            ]
        finally:
            if cam is not None:
                cam.activations_and_grads.release()
            if cut is not None:
                cut.remove()
    return np.concatenate(maps).astype(np.float32, copy=False)


def _check_inputs(model, images, targets, batch_size, score_cam_batch_size) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, C, H, W) tensor; got {shape}")
    if len(images) == 0:
        raise ValueError("images is empty")
    for name, value in (("batch_size", batch_size), ("score_cam_batch_size", score_cam_batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if targets is None:
        return
    targets = np.asarray(_as_class_list(targets))
    if len(targets) != len(images):
        raise ValueError(f"targets must have one class per image ({len(images)}); got {len(targets)}")
    num_classes = getattr(model, "num_classes", None)
    if num_classes and ((targets < 0) | (targets >= num_classes)).any():
        raise ValueError(f"targets must be class indices in [0, {num_classes}); got {targets.tolist()}")


def _as_class_list(targets: Sequence[int] | Tensor | np.ndarray) -> list[int]:
    if isinstance(targets, Tensor):
        targets = targets.detach().cpu().numpy()
    return [int(t) for t in np.asarray(targets).reshape(-1)]


def _cut_graph_here(_module: nn.Module, _inputs, output: Tensor) -> Tensor:
    # A fresh leaf that requires grad, then a clone so that in-place ops after the layer stay legal;
    # grad-cam's own hooks run after this one and register their gradient hook on the clone.
    return output.detach().requires_grad_(True).clone()


def _score_cam_chunk(model: nn.Module, images: Tensor, layer: nn.Module, batch_size: int) -> int:
    """Images per ScoreCAM call so that its (images, channels, 3, H, W) masked inputs fit the ceiling."""
    channels = _layer_channels(model, images[:1], layer)
    per_image = channels * images[0].numel() * images.element_size()
    return max(1, min(batch_size, SCORE_CAM_MEMORY_BYTES // per_image))


def _layer_channels(model: nn.Module, image: Tensor, layer: nn.Module) -> int:
    # One forward pass of one image: negligible next to ScoreCAM's one pass per channel.
    shapes: list[torch.Size] = []
    handle = layer.register_forward_hook(lambda _m, _i, output: shapes.append(output.shape))
    try:
        with torch.no_grad():
            model(image.to(next(model.parameters()).device))
    finally:
        handle.remove()
    return int(shapes[0][1])


def _chunk_targets(targets: list[int] | None, start: int, size: int) -> list[ClassifierOutputTarget] | None:
    if targets is None:
        return None
    return [ClassifierOutputTarget(t) for t in targets[start : start + size]]


def _run_chunk(cam: BaseCAM, spec: CamMethod, images: Tensor, targets) -> np.ndarray:
    if spec.uses_gradients:
        with torch.enable_grad():
            return cam(input_tensor=images, targets=targets)
    with torch.no_grad(), silenced_score_cam_progress():
        return cam(input_tensor=images, targets=targets)


def silenced_score_cam_progress():
    # ScoreCAM opens one tqdm progress bar per image on stderr; disable them for the call only.
    quiet = SimpleNamespace(tqdm=functools.partial(tqdm.tqdm, disable=True))
    return mock.patch.object(score_cam_module, "tqdm", quiet)

"""Model factory over timm, with a small-input option that keeps CAMs usable.

A stock ResNet reduces its input 32 times, so a 64x64 Tiny ImageNet image ends in a 2x2 feature map
and a 32x32 CIFAR image in 1x1: a class activation map at that size says nothing about *where*.
timm's `output_stride` replaces the last strides by dilation, which keeps the weights and the
receptive field but yields a finer last map; `small_input` picks the largest stride that still
leaves `min_feature_size` cells per side.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from mixlib.model_state import evaluation_mode

SUPPORTED_OUTPUT_STRIDES = (32, 16, 8)


def choose_output_stride(input_size: int, min_feature_size: int = 8) -> int:
    """Largest stride in (32, 16, 8) whose last feature map keeps `min_feature_size` cells per side."""
    for stride in SUPPORTED_OUTPUT_STRIDES:
        if input_size // stride >= min_feature_size:
            return stride
    return SUPPORTED_OUTPUT_STRIDES[-1]


def check_model_name(name: str) -> None:
    if not timm.is_model(name):
        raise ValueError(
            f"unknown model {name!r}; allowed values: any timm model name, e.g. resnet10t, resnet18, "
            "resnet50 (see timm.list_models())"
        )


def create_model(
    name: str = "resnet10t",
    num_classes: int = 10,
    input_size: int = 64,
    small_input: bool = True,
    min_feature_size: int = 8,
    pretrained: bool = False,
) -> nn.Module:
    """Build a timm classifier; with `small_input`, dilate its last stages for a finer CAM map.

    `pretrained=True` needs weights in the local timm/Hugging Face cache: this project never downloads
    at run time, so a missing file is an error rather than a silent download attempt.
    """
    check_model_name(name)
    kwargs: dict = {"num_classes": num_classes, "pretrained": pretrained}
    if small_input:
        stride = choose_output_stride(input_size, min_feature_size)
        if stride != 32:
            kwargs["output_stride"] = stride
    try:
        return timm.create_model(name, **kwargs)
    except TypeError as error:  # the architecture has no output_stride argument
        raise ValueError(
            f"model {name!r} cannot change its output stride; use small_input=False or a "
            "ResNet/EfficientNet/MobileNet/RegNet family model"
        ) from error


def cam_target_layer(model: nn.Module) -> nn.Module:
    """The module whose output is the last spatial feature map (timm's last `feature_info` entry)."""
    feature_info = getattr(model, "feature_info", None)
    if not feature_info:
        raise ValueError(f"{type(model).__name__} has no timm feature_info; pass the CAM layer explicitly")
    return model.get_submodule(feature_info[-1]["module"])


def feature_map_size(model: nn.Module, input_size: int) -> tuple[int, int]:
    """Spatial size of the CAM target layer's output for a square input."""
    captured: list[torch.Tensor] = []
    handle = cam_target_layer(model).register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with evaluation_mode(model), torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        handle.remove()
    return tuple(captured[0].shape[-2:])

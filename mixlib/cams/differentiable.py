"""Class activation maps as a differentiable tensor operation (Zhou et al. 2016, "Learning Deep
Features for Discriminative Localization").

For a network that ends in global average pooling followed by a linear layer, the logit of class k
is `mean_{h,w}(W_k . f(h, w)) + b_k`, so `M_k(h, w) = W_k . f(h, w)` is a map whose spatial mean is
the (bias-free) logit. It costs one einsum on the last feature map that the training step has
already computed, so CAM-based losses need no hooks, no extra backward pass and no second forward.
grad-cam cannot serve here: its output is a detached numpy array.

For such networks GradCAM's channel weights are `W_k / (h*w)`, so after ReLU and min-max
normalisation GradCAM and this CAM are the same map (checked in tests/test_cams.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixlib.model_state import borrowed_for_evaluation

HEAD_CHECK_TOLERANCE = 1e-4


def class_activation_maps(
    features: Tensor, classifier_weight: Tensor, classifier_bias: Tensor | None = None
) -> Tensor:
    """(B, C, h, w) features and a (K, C) linear head -> (B, K, h, w) class activation maps.

    With `classifier_bias`, each map is shifted by its class bias so that its spatial mean equals the
    logit; without it, it is the classic bias-free CAM.
    """
    if features.dim() != 4:
        raise ValueError(f"features must be (B, C, h, w); got shape {tuple(features.shape)}")
    if classifier_weight.dim() != 2 or classifier_weight.shape[1] != features.shape[1]:
        raise ValueError(
            f"classifier_weight must be (num_classes, {features.shape[1]}); "
            f"got {tuple(classifier_weight.shape)}"
        )
    cams = torch.einsum("bchw,kc->bkhw", features, classifier_weight.to(features.dtype))
    if classifier_bias is not None:
        cams = cams + classifier_bias.to(features.dtype).view(1, -1, 1, 1)
    return cams


def linear_head(model: nn.Module) -> nn.Linear:
    """The model's classifier, after checking that the head really is average pooling then this Linear.

    The check is numerical, not by class names: on random features, `model.forward_head` must equal
    the Linear applied to the spatial mean (in eval mode, so dropout is off). Heads with a layer
    between pooling and classifier (MobileNetV3's conv_head), attention pooling or max pooling fail it.
    """
    if not hasattr(model, "get_classifier") or not hasattr(model, "forward_head"):
        raise ValueError(
            f"{type(model).__name__} has no get_classifier()/forward_head(); CAMs from head weights need a "
            "timm-style classifier"
        )
    head = model.get_classifier()
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"model head must be a plain nn.Linear after global average pooling; got {type(head).__name__}"
        )
    probe = torch.randn(2, head.in_features, 3, 3, device=head.weight.device, dtype=head.weight.dtype)
    with borrowed_for_evaluation(model), torch.no_grad():
        try:
            through_model = model.forward_head(probe)
        except RuntimeError as error:
            raise ValueError(
                "model head is not global average pooling followed by its Linear classifier "
                f"(forward_head failed on {head.in_features}-channel features: {error})"
            ) from error
        expected = head(probe.mean(dim=(2, 3)))
    if through_model.shape != expected.shape or not torch.allclose(
        through_model, expected, atol=HEAD_CHECK_TOLERANCE, rtol=HEAD_CHECK_TOLERANCE
    ):
        raise ValueError(
            "model head is not global average pooling followed by its Linear classifier "
            "(forward_head(features) != classifier(mean(features))); class activation maps from head "
            "weights are undefined for it, use compute_cams (grad-cam) instead"
        )
    return head


def upsample_cams(cams: Tensor, size: tuple[int, int], align_corners: bool = False) -> Tensor:
    """Bilinear resize of (B, K, h, w) maps; `align_corners=False` matches OpenCV's (grad-cam's) resize."""
    return F.interpolate(cams, size=size, mode="bilinear", align_corners=align_corners)

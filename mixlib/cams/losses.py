"""CAM-aware loss terms that compose with any mixing method (`mixlib.losses.LossTerm` objects).

Both families compute their CAMs with `class_activation_maps` from the feature map of the training
step's own forward pass, so they stay differentiable and need no hooks.

**Mixup-CAM** (Chang et al. 2020, "Mixup-CAM: Weakly-supervised Semantic Segmentation via
Uncertainty Regularization", arXiv 2008.01201; formulas in the seed run report 004):

- class-wise entropy `L_ent = -(1/HW) sum_{h,w} sum_c P^c(h,w) log P^c(h,w)`. The paper's formula
  averages over locations, so `P(h, w)` is a class distribution per location; here it is the
  softmax over classes of the CAMs *with* the class biases, i.e. the local version of the
  classifier's own prediction (a map's spatial mean is its logit). No official code was published;
  the one public reproduction found (liuvince/mva-wsss) applies a binary entropy to the sigmoid of
  the image-level logits instead, which is not what the formula says, so it is not followed.
- concentration `L_con = sum_{c in labels} sum_{h,w} ||(h,w) - mu_c||^2 * M_c(h,w)` with `M_c` the
  class map normalised to a spatial distribution and `mu_c` its centroid: the weighted spatial
  variance of the map (SCOPS, NVlabs/SCOPS `loss.py`, which also normalises softmax part maps into
  distributions). `M_c` is the same per-location softmax `P^c`, as in SCOPS and in the
  reproduction above. Coordinates are pixel centres scaled to [0, 1], so the value does not depend
  on the map size (SCOPS uses [-1, 1), i.e. 4x these values). The classes of a mixed sample are
  weighted by their label weights (`MixedBatch.soft_targets`), as the reproduction does with
  lam * L(y_a) + (1 - lam) * L(y_b); the paper's unweighted sum over present classes would force a
  1%-visible partner to concentrate as much as the main object.
- Weights: the loss terms are off unless a weight is given (`create_loss_terms`). The paper's values
  could not be checked against its text or code from this project's sources, so none is claimed here.
  The weights are fixed, not tuned: the study profiles' `mixup-cam` configuration sets
  lambda_ent = lambda_con = 0.1 and no code selects them on the validation split.

**SEAM equivariance** (Wang et al. 2020, YudeWang/SEAM `train_SEAM.py`): the CAM of a rescaled
image must equal the rescaled CAM of the image, `mean |A(CAM(x)) - CAM(A(x))|`, with A a bilinear
rescaling by 0.3 (align_corners=True), both CAMs bias-free (SEAM's fc8 has no bias), upsampled to
their input size, then ReLU'd and max-normalised per channel with SEAM's `max_norm`, and masked to
the classes in the labels. The mean runs over all classes (absent ones contribute zeros) as in SEAM.
"""

from __future__ import annotations

import math
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixlib.cams.differentiable import class_activation_maps, linear_head
from mixlib.checks import check_positive, check_range
from mixlib.losses import LossTerm, MixedBatch

SEAM_SCALE = 0.3  # train_SEAM.py: scale_factor = 0.3
SEAM_EPSILON = 1e-5  # tool/visualization.py max_norm: e=1e-5


# --------------------------------------------------------------------------- pure functions


def class_entropy(cams: Tensor) -> Tensor:
    """Entropy of the per-location class softmax, averaged over images and locations: (B, K, h, w) -> ()."""
    log_p = F.log_softmax(cams, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def spatial_concentration(maps: Tensor) -> Tensor:
    """Weighted spatial variance of each non-negative map, coordinates in [0, 1]; (B, K, h, w) -> (B, K).

    A map concentrated on one location scores 0; a uniform map scores about 1/6 (1/12 per axis).
    The maps must be non-negative (e.g. softmax probabilities); that is not checked here because a
    check would synchronise the GPU at every training step.
    """
    height, width = maps.shape[-2:]
    ys = (torch.arange(height, device=maps.device, dtype=maps.dtype) + 0.5) / height
    xs = (torch.arange(width, device=maps.device, dtype=maps.dtype) + 0.5) / width
    # The clamp only guards an all-zero map (a class whose softmax underflows everywhere).
    pdf = maps / maps.sum(dim=(2, 3), keepdim=True).clamp_min(torch.finfo(maps.dtype).tiny)
    row_mass, column_mass = pdf.sum(dim=3), pdf.sum(dim=2)
    mu_y = (row_mass * ys).sum(dim=2, keepdim=True)
    mu_x = (column_mass * xs).sum(dim=2, keepdim=True)
    return (row_mass * (ys - mu_y) ** 2).sum(dim=2) + (column_mass * (xs - mu_x) ** 2).sum(dim=2)


def seam_max_norm(cams: Tensor, epsilon: float = SEAM_EPSILON) -> Tensor:
    """SEAM's per-channel normalisation: ReLU, subtract the channel minimum, divide by its range."""
    cams = F.relu(cams)
    flat = cams.flatten(2)
    max_v = flat.max(dim=2).values[..., None, None]
    min_v = flat.min(dim=2).values[..., None, None]
    return F.relu(cams - min_v - epsilon) / (max_v - min_v + epsilon)


def rescale(images: Tensor, scale: float) -> Tensor:
    """SEAM's transformation A: bilinear rescaling with align_corners=True."""
    return F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=True)


def equivariance_loss(cams: Tensor, cams_of_rescaled: Tensor, present: Tensor, scale: float) -> Tensor:
    """mean |A(norm(CAM(x))) - norm(CAM(A(x)))| over images, classes and pixels, for present classes.

    `cams` must be at the input's resolution and `cams_of_rescaled` at the rescaled input's;
    `present` is a (B, K) 0/1 mask of the classes in each sample's labels.
    """
    transformed = rescale(seam_max_norm(cams), scale)
    if transformed.shape != cams_of_rescaled.shape:
        raise ValueError(
            f"rescaled CAMs {tuple(transformed.shape)} and CAMs of the rescaled input "
            f"{tuple(cams_of_rescaled.shape)} differ in size"
        )
    mask = present.to(cams.dtype)[..., None, None]
    return ((transformed - seam_max_norm(cams_of_rescaled)) * mask).abs().mean()


# --------------------------------------------------------------------------- loss terms


class _HeadCamTerm:
    """Shared part: a weight, and CAMs from the model's linear head (the head is checked once per model)."""

    name = "cam"

    def __init__(self, weight: float) -> None:
        self.weight = check_positive(f"{self.name} weight", weight)
        self._checked: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def head(self, model: nn.Module) -> nn.Linear:
        if model not in self._checked:
            linear_head(model)
            self._checked.add(model)
        return model.get_classifier()


class MixupCamEntropy(_HeadCamTerm):
    """lambda_ent * class-wise entropy of the per-location class softmax of the CAMs (Mixup-CAM)."""

    name = "mixup_cam_entropy"

    def __call__(self, model: nn.Module, batch: MixedBatch, features: Tensor, logits: Tensor) -> Tensor:
        head = self.head(model)
        return self.weight * class_entropy(class_activation_maps(features, head.weight, head.bias))


class MixupCamConcentration(_HeadCamTerm):
    """lambda_con * label-weighted spatial variance of the class probability maps (Mixup-CAM / SCOPS)."""

    name = "mixup_cam_concentration"

    def __call__(self, model: nn.Module, batch: MixedBatch, features: Tensor, logits: Tensor) -> Tensor:
        head = self.head(model)
        probabilities = F.softmax(class_activation_maps(features, head.weight, head.bias), dim=1)
        label_weights = batch.soft_targets(head.out_features).to(probabilities.dtype)
        return self.weight * (label_weights * spatial_concentration(probabilities)).sum(dim=1).mean()


class SeamEquivariance(_HeadCamTerm):
    """lambda_eq * SEAM's scale-equivariance loss between CAM(x) and CAM(rescaled x).

    It costs a second forward pass of the backbone on the rescaled batch (0.3x the side, about a
    tenth of the pixels), with gradients. In train mode that pass also updates batch-norm running
    statistics with rescaled images, exactly as SEAM's training loop does.
    """

    name = "seam_equivariance"

    def __init__(self, weight: float, scale: float = SEAM_SCALE) -> None:
        super().__init__(weight)
        self.scale = check_range("seam_scale", scale, 0.0, 1.0, low_open=True, high_open=True)

    def __call__(self, model: nn.Module, batch: MixedBatch, features: Tensor, logits: Tensor) -> Tensor:
        head = self.head(model)
        small_inputs = rescale(batch.inputs, self.scale)
        small_features = model.forward_features(small_inputs)
        cams = _cams_at(features, head, batch.inputs.shape[-2:])
        cams_of_rescaled = _cams_at(small_features, head, small_inputs.shape[-2:])
        present = batch.soft_targets(head.out_features) > 0
        return self.weight * equivariance_loss(cams, cams_of_rescaled, present, self.scale)


def _cams_at(features: Tensor, head: nn.Linear, size) -> Tensor:
    cams = class_activation_maps(features, head.weight)
    return F.interpolate(cams, size=tuple(size), mode="bilinear", align_corners=True)


# --------------------------------------------------------------------------- factory


def create_loss_terms(
    lambda_ent: float = 0.0, lambda_con: float = 0.0, lambda_eq: float = 0.0, seam_scale: float = SEAM_SCALE
) -> list[LossTerm]:
    """The enabled CAM loss terms (weight > 0), in the order entropy, concentration, equivariance."""
    weights = {"lambda_ent": lambda_ent, "lambda_con": lambda_con, "lambda_eq": lambda_eq}
    for name, value in weights.items():
        check_range(name, value, 0.0, math.inf, high_open=True)
    check_range("seam_scale", seam_scale, 0.0, 1.0, low_open=True, high_open=True)
    builders = {
        "lambda_ent": MixupCamEntropy,
        "lambda_con": MixupCamConcentration,
        "lambda_eq": lambda weight: SeamEquivariance(weight, seam_scale),
    }
    return [builders[name](value) for name, value in weights.items() if value > 0]

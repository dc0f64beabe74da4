"""Mixup-CAM and SEAM loss terms: their minima, gradients, label handling and the factory."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mixlib.cams import (
    MixupCamConcentration,
    MixupCamEntropy,
    SeamEquivariance,
    class_entropy,
    create_loss_terms,
    spatial_concentration,
)
from mixlib.cams.losses import equivariance_loss, rescale
from mixlib.losses import MixedBatch
from mixlib.models import create_model

from helpers import unmixed_step


class PixelwiseModel(nn.Module):
    """A 1x1 convolution then average pooling and a Linear head: its CAMs are exactly scale-equivariant."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=1, bias=False)
        self.fc = nn.Linear(4, classes)
        with torch.no_grad():  # positive weights: a positive input gives positive CAMs, not ReLU'd zeros
            self.conv.weight.uniform_(0.1, 1.0)
            self.fc.weight.uniform_(0.1, 1.0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean(dim=(2, 3)))

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet10t", num_classes=4, input_size=32, min_feature_size=4).train()


def ramp_images(batch: int = 2, size: int = 21) -> torch.Tensor:
    ramp = torch.linspace(0, 1, size)
    return ramp.expand(batch, 3, size, size).clone()


def forward(model: nn.Module, batch: MixedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    features = model.forward_features(batch.inputs)
    return features, model.forward_head(features)


def backbone_gets_gradient(model: nn.Module, loss: torch.Tensor) -> bool:
    model.zero_grad(set_to_none=True)
    loss.backward()
    first = next(model.parameters())
    return first.grad is not None and first.grad.abs().sum() > 0


# --------------------------------------------------------------------------- entropy


def test_entropy_is_minimal_for_one_hot_and_maximal_for_uniform():
    one_hot = torch.full((2, 5, 4, 4), -50.0)
    one_hot[:, 2] = 50.0
    assert class_entropy(one_hot) < 1e-6
    assert class_entropy(torch.zeros(2, 5, 4, 4)) == pytest.approx(math.log(5), rel=1e-6)
    mixed = torch.randn(2, 5, 4, 4, generator=torch.Generator().manual_seed(0))
    assert 0 < class_entropy(mixed) < math.log(5)


def test_entropy_term_sends_gradient_to_the_backbone(resnet):
    batch = MixedBatch.unmixed(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    features, logits = forward(resnet, batch)
    loss = MixupCamEntropy(0.5)(resnet, batch, features, logits)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert backbone_gets_gradient(resnet, loss)


# --------------------------------------------------------------------------- concentration


def test_concentration_is_zero_for_a_single_point_and_size_free_for_uniform_maps():
    point = torch.zeros(1, 1, 8, 8)
    point[0, 0, 3, 5] = 1.0
    assert spatial_concentration(point).item() == 0.0
    for size in (8, 64):  # uniform: variance of evenly spaced centres in [0, 1], per axis (1 - 1/n^2) / 12
        expected = 2 * (1 - 1 / size**2) / 12
        assert spatial_concentration(torch.ones(1, 1, size, size)).item() == pytest.approx(expected, rel=1e-5)


def test_concentration_grows_with_spread():
    near = torch.zeros(1, 1, 8, 8)
    near[0, 0, 3:5, 3:5] = 1.0
    far = torch.zeros(1, 1, 8, 8)
    far[0, 0, 0, 0] = far[0, 0, 7, 7] = 1.0
    assert spatial_concentration(near) < spatial_concentration(far)


def test_concentration_term_weights_classes_by_their_labels(resnet):
    inputs = torch.randn(2, 3, 32, 32)
    features, logits = forward(resnet, MixedBatch.unmixed(inputs, torch.tensor([0, 1])))
    term = MixupCamConcentration(1.0)
    only_a = MixedBatch(inputs, torch.tensor([0, 1]), torch.tensor([2, 3]), torch.ones(2))
    only_b = MixedBatch(inputs, torch.tensor([0, 1]), torch.tensor([2, 3]), torch.zeros(2))
    half = MixedBatch(inputs, torch.tensor([0, 1]), torch.tensor([2, 3]), torch.full((2,), 0.5))
    a, b = term(resnet, only_a, features, logits), term(resnet, only_b, features, logits)
    assert not torch.isclose(a, b)
    assert torch.isclose(term(resnet, half, features, logits), (a + b) / 2, rtol=1e-5)
    assert backbone_gets_gradient(resnet, term(resnet, half, *forward(resnet, half)))


# --------------------------------------------------------------------------- equivariance


@pytest.mark.parametrize("images", [ramp_images(), torch.full((2, 3, 21, 21), 0.7)], ids=["ramp", "constant"])
def test_equivariance_is_zero_for_an_exactly_equivariant_model(images):
    torch.manual_seed(0)
    model = PixelwiseModel()
    batch = MixedBatch.unmixed(images, torch.tensor([0, 1]))
    loss = SeamEquivariance(1.0)(model, batch, *forward(model, batch))
    assert loss.item() == pytest.approx(0.0, abs=1e-4)


def test_equivariance_is_positive_and_differentiable_for_a_resnet(resnet):
    batch = MixedBatch.unmixed(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    loss = SeamEquivariance(1.0)(resnet, batch, *forward(resnet, batch))
    assert loss.item() > 1e-3
    assert backbone_gets_gradient(resnet, loss)


def test_equivariance_only_compares_classes_in_the_labels():
    cams = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    small = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    matching = rescale(torch.zeros_like(cams), 0.3)
    small_matching = small.clone()
    small_matching[:, 0] = matching[:, 0]  # class 0 agrees with the (all-zero) rescaled CAM
    present = torch.tensor([[1.0, 0.0, 0.0]])
    assert equivariance_loss(torch.zeros_like(cams), small_matching, present, 0.3).item() == 0.0
    assert equivariance_loss(torch.zeros_like(cams), small, torch.ones(1, 3), 0.3).item() > 0


# --------------------------------------------------------------------------- factory and integration


def test_create_loss_terms_returns_only_enabled_terms():
    assert create_loss_terms() == []
    terms = create_loss_terms(lambda_ent=0.1, lambda_eq=2.0, seam_scale=0.5)
    assert [t.name for t in terms] == ["mixup_cam_entropy", "seam_equivariance"]
    assert terms[0].weight == 0.1 and terms[1].weight == 2.0 and terms[1].scale == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lambda_ent": -1}, "lambda_ent"),
        ({"lambda_con": float("nan")}, "lambda_con"),
        ({"lambda_eq": "1"}, "lambda_eq"),
        ({"seam_scale": 1.5}, "seam_scale"),
    ],
)
def test_create_loss_terms_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_loss_terms(**kwargs)


def test_terms_reject_models_without_an_average_pooled_linear_head():
    model = create_model("resnet10t", num_classes=3, input_size=32, min_feature_size=4)
    model.reset_classifier(3, global_pool="max")
    batch = MixedBatch.unmixed(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="not global average pooling"):
        MixupCamEntropy(1.0)(model, batch, *forward(model, batch))


def test_all_terms_train_inside_the_training_step(resnet):
    torch.manual_seed(0)
    optimizer = torch.optim.SGD(resnet.parameters(), lr=0.01)
    before = [p.detach().clone() for p in resnet.parameters()]
    terms = create_loss_terms(lambda_ent=0.1, lambda_con=0.1, lambda_eq=0.1)
    parts = unmixed_step(resnet, optimizer, terms)
    for name in ("mixup_cam_entropy", "mixup_cam_concentration", "seam_equivariance"):
        assert math.isfinite(parts[f"{name}_loss"]) and parts[f"{name}_loss"] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, resnet.parameters(), strict=True))


def test_the_mixup_cam_weights_are_documented_as_the_fixed_values_the_profiles_use(tiny_imagenet_root):
    """Nothing selects lambda_ent / lambda_con on validation: the documentation must not say so."""
    from mixlib.cams import losses
    from mixlib.profiles import load_profile

    assert "fixed" in losses.__doc__ and "chooses them on the validation split" not in losses.__doc__
    # a real-data profile is checked against its data folder when it loads
    for name, data_root in (("quick", None), ("study", str(tiny_imagenet_root))):
        configurations = {c.name: c.config for c in load_profile(name, data_root=data_root).configurations}
        mixup_cam = configurations["mixup-cam"]
        assert (mixup_cam.lambda_ent, mixup_cam.lambda_con) == (0.1, 0.1)
    assert "lambda_ent = lambda_con = 0.1" in losses.__doc__

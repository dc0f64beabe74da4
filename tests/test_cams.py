"""CAM computation (grad-cam wrapper), the differentiable CAM and the deletion/insertion metric."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from mixlib import evaluation
from mixlib.cams import (
    CAM_METHODS,
    area_under_curve,
    causal_curves,
    class_activation_maps,
    compute_cams,
    deletion_auc,
    insertion_auc,
    linear_head,
)
from mixlib.config import RunConfig
from mixlib.data.splits import stratified_indices
from mixlib.models import cam_target_layer, create_model
from mixlib.run_data import build_eval_dataset, load_config_splits

SIZE = 32


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet10t", num_classes=3, input_size=SIZE, min_feature_size=4)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


def snapshot(model: nn.Module) -> tuple:
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        hook_count(model),
    )


def assert_same_state(before: tuple, after: tuple) -> None:
    assert before[0] == after[0], "train/eval flags changed"
    assert before[1] == after[1], "requires_grad flags changed"
    for grad_before, grad_after in zip(before[2], after[2], strict=True):
        assert (grad_before is None) == (grad_after is None)
        if grad_before is not None:
            assert torch.equal(grad_before, grad_after), "stored gradients changed"
    assert before[3] == after[3], "hooks left on the model"


def prepare_state(model: nn.Module) -> None:
    """A mid-training state worth restoring: train mode, one frozen BN, a frozen and a graded parameter."""
    model.train()
    model.bn1.eval()
    params = list(model.parameters())
    params[0].requires_grad_(False)
    params[-1].grad = torch.full_like(params[-1], 0.5)


@pytest.mark.parametrize("method", CAM_METHODS.names())
def test_compute_cams_shape_range_and_state(model, images, method):
    prepare_state(model)
    before = snapshot(model)
    count = 1 if method == "scorecam" else len(images)
    cams = compute_cams(model, images[:count], method=method, batch_size=2)
    assert cams.shape == (count, SIZE, SIZE) and cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6 and cams.max() > 0.5
    assert_same_state(before, snapshot(model))


def test_state_restored_and_hooks_released_after_an_exception(model, images, monkeypatch):
    prepare_state(model)
    before = snapshot(model)

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom inside grad-cam")

    monkeypatch.setattr(GradCAM, "get_cam_weights", broken)
    with pytest.raises(RuntimeError, match="boom"):
        compute_cams(model, images, method="gradcam")
    assert_same_state(before, snapshot(model))


@pytest.mark.parametrize("method", [name for name in CAM_METHODS.names() if name != "scorecam"])
def test_maps_equal_plain_grad_cam_despite_the_cut_backward(model, images, method):
    targets = [0, 1, 2]
    cam_class = CAM_METHODS.get(method).cam_class
    with cam_class(model=model, target_layers=[cam_target_layer(model)]) as cam:
        plain = cam(input_tensor=images, targets=[ClassifierOutputTarget(t) for t in targets])
    model.train()
    assert np.abs(compute_cams(model, images, targets=targets, method=method) - plain).max() < 1e-5


def test_targets_select_the_explained_class(model, images):
    model.eval()
    with torch.no_grad():
        predicted = model(images).argmax(1)
    default = compute_cams(model, images)
    assert np.allclose(default, compute_cams(model, images, targets=predicted), atol=1e-6)
    other = (predicted + 1) % 3
    assert not np.allclose(default, compute_cams(model, images, targets=other.tolist()), atol=1e-3)


def test_batch_size_does_not_change_the_maps(model, images):
    assert np.allclose(
        compute_cams(model, images, batch_size=1), compute_cams(model, images, batch_size=3), atol=1e-5
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "nope"}, "allowed values"),
        ({"targets": [0, 1]}, "one class per image"),
        ({"targets": [0, 1, 7]}, r"\[0, 3\)"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_fail_early(model, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_cams(model, images, **kwargs)


def test_differentiable_cam_equals_gradcam_for_gap_linear_models(images):
    torch.manual_seed(3)
    model = create_model("resnet10t", num_classes=3, input_size=SIZE, min_feature_size=4).double().eval()
    inputs = images.double()
    with torch.no_grad():
        features = model.forward_features(inputs)
        head = linear_head(model)
        cams = class_activation_maps(features, head.weight)  # bias-free, as GradCAM's weights
    targets = cams.mean(dim=(2, 3)).argmax(dim=1)
    chosen = F.relu(cams[torch.arange(len(cams)), targets])[:, None]
    assert (chosen.flatten(1).max(1).values > 0).all(), "precondition: every chosen map has positive evidence"
    resized = F.interpolate(chosen, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
    low = resized.flatten(1).min(1).values[:, None, None]
    high = resized.flatten(1).max(1).values[:, None, None]
    expected = ((resized - low) / (high - low)).numpy()
    got = compute_cams(model, inputs, targets=targets, method="gradcam")
    assert np.abs(got - expected).max() < 1e-4


def test_cam_with_bias_averages_to_the_logits(model, images):
    model.eval()
    head = linear_head(model)
    with torch.no_grad():
        features = model.forward_features(images)
        cams = class_activation_maps(features, head.weight, head.bias)
        logits = model.forward_head(features)
    assert torch.allclose(cams.mean(dim=(2, 3)), logits, atol=1e-5)


def test_linear_head_rejects_heads_that_are_not_average_pooling_then_linear():
    with pytest.raises(ValueError, match="plain nn.Linear"):
        linear_head(timm.create_model("resnet10t", num_classes=0))
    with pytest.raises(ValueError, match="not global average pooling"):
        linear_head(timm.create_model("resnet10t", num_classes=3, global_pool="max"))


def test_class_activation_maps_checks_shapes():
    with pytest.raises(ValueError, match="classifier_weight"):
        class_activation_maps(torch.zeros(1, 4, 2, 2), torch.zeros(3, 5))


class TextureDetector(nn.Module):
    """Class 1's logit grows with the red channel's energy, weighted by a fixed map (the true saliency).

    Blurring random +-1 pixels (the insertion start) or zeroing them (the deletion end) removes the
    energy, so both curves have a known best order.
    """

    def __init__(self, weight_map: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight_map", weight_map)
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = self.scale * (x[:, 0] ** 2 * self.weight_map).mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(evidence), evidence - 5], dim=1)


def test_deletion_and_insertion_reward_the_true_saliency_order():
    size = 16
    weight_map = torch.linspace(1, 0, size).repeat(size, 1)  # left columns matter most
    model = TextureDetector(weight_map)
    signs = torch.randint(0, 2, (2, 3, size, size), generator=torch.Generator().manual_seed(0))
    images = 2.0 * signs - 1
    true = weight_map.expand(2, size, size).numpy()
    curves = causal_curves(model, images, true, "deletion")
    assert curves.shape == (2, size + 1)  # default step: one row's worth of pixels
    probability_intact = torch.softmax(model(images), 1)[:, 1].detach().numpy()
    assert np.allclose(curves[:, 0], probability_intact, atol=1e-6)
    assert np.allclose(curves[:, -1], 1 / (1 + np.exp(5)), atol=1e-6)  # all pixels at zero: logit -5
    assert (deletion_auc(model, images, true) < deletion_auc(model, images, -true)).all()
    assert (insertion_auc(model, images, true) > insertion_auc(model, images, -true)).all()


def test_area_under_curve_is_risens_normalised_trapezoid():
    assert area_under_curve(np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert area_under_curve(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.25)


def test_causal_curves_validate_arguments():
    model = TextureDetector(torch.ones(4, 4))
    with pytest.raises(ValueError, match="allowed values"):
        causal_curves(model, torch.ones(1, 3, 4, 4), np.ones((1, 4, 4)), mode="erase")
    with pytest.raises(ValueError, match="saliency must be"):
        causal_curves(model, torch.ones(1, 3, 4, 4), np.ones((1, 5, 4)))


def test_faithfulness_scores_a_seeded_sample_of_every_class(monkeypatch):
    """The test split is sorted by class: its first images would be a few classes only."""
    config = RunConfig(images_per_class=1, val_per_class=1, test_per_class=3, image_size=SIZE)
    splits = load_config_splits(config)
    val, test = (build_eval_dataset(config, records) for records in (splits.val, splits.test))
    test_images = torch.stack([test[i]["image"] for i in range(len(test))])
    scored = []

    def spy(model, images, predicted, cam_method):
        scored.append(images)
        return {}

    monkeypatch.setattr(evaluation, "faithfulness", spy)
    classes = len(splits.classes)
    model = create_model("resnet10t", num_classes=classes, input_size=SIZE, min_feature_size=4)
    evaluation.localisation_scores(model, val, test, faithfulness_images=classes)
    same = (scored[0][:, None] == test_images[None]).flatten(2).all(-1)
    indices = same.int().argmax(1).numpy()
    assert len(indices) == classes and same.any(1).all()
    assert sorted(test.labels[indices].tolist()) == list(range(classes))  # one image of every class
    seeded = stratified_indices(test.labels, classes, evaluation.FAITHFULNESS_SEED)
    assert np.array_equal(indices, seeded)  # the same images for every run on this test split

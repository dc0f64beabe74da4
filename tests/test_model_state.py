"""Every evaluation pass hands the model back exactly as it was, partly frozen models included."""

import pytest
import torch
from torch import nn

from mixlib.cams import compute_cams
from mixlib.latency import model_cost
from mixlib.model_state import borrowed_for_evaluation, evaluation_mode
from mixlib.models import create_model, feature_map_size
from mixlib.training import predict


@pytest.fixture
def partly_frozen():
    """A training model whose first batch norm is deliberately kept in eval mode (frozen statistics)."""
    model = create_model("resnet10t", num_classes=3, input_size=32).train()
    frozen = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    frozen.eval()
    return model, frozen


def modes(model: nn.Module) -> list[bool]:
    return [module.training for module in model.modules()]


def test_evaluation_mode_restores_every_module_flag(partly_frozen):
    model, frozen = partly_frozen
    before = modes(model)
    with evaluation_mode(model):
        assert not any(modes(model))
    assert modes(model) == before and not frozen.training and model.training


def test_flags_come_back_after_an_error(partly_frozen):
    model, _ = partly_frozen
    before = modes(model)
    with pytest.raises(RuntimeError), evaluation_mode(model):
        raise RuntimeError("inside the block")
    assert modes(model) == before


def test_borrowing_freezes_parameters_and_keeps_gradients(partly_frozen):
    model, _ = partly_frozen
    first = next(model.parameters())
    first.grad = torch.ones_like(first)
    with borrowed_for_evaluation(model):
        assert not any(p.requires_grad for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert torch.equal(first.grad, torch.ones_like(first))


@pytest.mark.parametrize(
    "evaluate",
    [
        lambda model: compute_cams(model, torch.randn(2, 3, 32, 32), [0, 1]),
        lambda model: model_cost(model, 32),
        lambda model: feature_map_size(model, 32),
        lambda model: predict(
            model, [{"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([0, 1])}], "cpu"
        ),
    ],
    ids=["cams", "model_cost", "feature_map_size", "predict"],
)
def test_library_evaluations_leave_a_partly_frozen_model_as_it_was(partly_frozen, evaluate):
    model, _ = partly_frozen
    before = modes(model)
    evaluate(model)
    assert modes(model) == before

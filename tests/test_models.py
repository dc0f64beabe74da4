import pytest
import torch

from mixlib.models import cam_target_layer, choose_output_stride, create_model, feature_map_size


@pytest.mark.parametrize(
    ("input_size", "expected"), [(64, (8, 8)), (32, (4, 4)), (224, (14, 14)), (256, (8, 8))]
)
def test_small_input_keeps_a_usable_cam_map(input_size, expected):
    model = create_model("resnet10t", num_classes=5, input_size=input_size)
    assert feature_map_size(model, input_size) == expected


def test_stock_model_ends_in_two_by_two_at_64_pixels():
    model = create_model("resnet10t", num_classes=5, input_size=64, small_input=False)
    assert feature_map_size(model, 64) == (2, 2)


def test_choose_output_stride():
    assert choose_output_stride(256) == 32
    assert choose_output_stride(128) == 16
    assert choose_output_stride(64) == 8
    assert choose_output_stride(64, min_feature_size=4) == 16


@pytest.mark.parametrize("name", ["resnet10t", "resnet18"])
def test_factory_builds_classifier_with_cam_layer(name):
    model = create_model(name, num_classes=7, input_size=64).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
    layer = cam_target_layer(model)
    captured = []
    layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    features = model.forward_features(torch.zeros(1, 3, 64, 64))
    assert torch.equal(captured[-1], features)


def test_unknown_model_names_the_parameter():
    with pytest.raises(ValueError, match="unknown model 'resnet9000'; allowed values"):
        create_model("resnet9000")

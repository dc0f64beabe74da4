import pytest

from mixlib.config import RunConfig, code_version


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dataset", "imagenet-42", "unknown dataset 'imagenet-42'; allowed values: imagefolder, synthetic"),
        ("method", "mixdown", "unknown method 'mixdown'; allowed values:"),
        ("model", "notanet", "unknown model 'notanet'"),
        ("optimizer", "lion", "unknown optimizer 'lion'; allowed values: sgd, adamw"),
        ("epochs", 0, "epochs must be an integer >= 1"),
        ("batch_size", "big", "batch_size must be a positive integer or 'auto'"),
        ("label_smoothing", 1.5, r"label_smoothing must be in \[0, 1\)"),
    ],
)
def test_bad_values_name_the_parameter(field, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{field: value})


def test_from_parameters_parses_papermill_strings_and_rejects_unknown_keys():
    config = RunConfig.from_parameters({"method_params": '{"p": 0.5}', "epochs": 3})
    assert config.method_params == {"p": 0.5}
    assert config.epochs == 3
    with pytest.raises(ValueError, match=r"unknown run parameter\(s\) \['epoch'\]"):
        RunConfig.from_parameters({"epoch": 3})


def test_from_namespace_ignores_other_names():
    config = RunConfig.from_namespace({"epochs": 2, "seeds": [0, 1], "config_name": "x"})
    assert config.epochs == 2


def test_code_version_is_stable_and_training_scope_is_narrower():
    assert code_version() == code_version()
    assert code_version(training_only=True) != code_version()

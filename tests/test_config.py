import shutil
from dataclasses import fields

import pytest

from mixlib.config import FIELD_CHECKS, PACKAGE, RunConfig, code_version


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dataset", "imagenet-42", "unknown dataset 'imagenet-42'; allowed values: imagefolder, synthetic"),
        ("cam_method", "gradcamm", "unknown cam_method 'gradcamm'; allowed values: eigencam, gradcam"),
        ("model", "notanet", "unknown model 'notanet'"),
        ("optimizer", "lion", "unknown optimizer 'lion'; allowed values: sgd, adamw"),
        ("epochs", 0, "epochs must be an integer >= 1"),
        ("batch_size", "big", "batch_size must be a positive integer or 'auto'"),
        ("label_smoothing", 1.5, r"label_smoothing must be a number in \[0.0, 1.0\)"),
        # issue 15: fields that used to pass unchecked or fail without their name
        ("momentum", -0.9, r"momentum must be a number in \[0.0, 1.0\)"),
        ("weight_decay", -1e-4, r"weight_decay must be a number in \[0.0, inf\)"),
        ("color_jitter", -0.4, r"color_jitter must be a number in \[0.0, inf\)"),
        ("deterministic", "no", "deterministic must be True or False, got 'no'"),
        ("amp", 1, "amp must be True or False"),
        ("epochs", True, "epochs must be an integer >= 1, got True"),
        ("batch_size", True, "batch_size must be a positive integer or 'auto', got True"),
        ("lr", "abc", r"lr must be a number in \(0.0, inf\), got 'abc'"),
        ("seed", -1, r"seed must be an integer in \[0, 4294967295\]"),
        ("seed", 2**32, r"seed must be an integer in \[0, 4294967295\]"),
        ("data_root", 3, "data_root must be a non-empty string"),
        ("method", ["mixup"], "method must be a non-empty string"),  # the name itself: mixlib.runs.recipes
        ("short_classes", "skip", "unknown short_classes 'skip'; allowed values: fail, drop"),
        ("method_params", [1], r"method_params must be a mapping"),
    ],
)
def test_bad_values_name_the_parameter(field, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{field: value})


def test_from_parameters_parses_papermill_strings_and_rejects_unknown_keys():
    config = RunConfig.from_parameters({"method": "mixup", "method_params": '{"p": 0.5}', "epochs": 3})
    assert config.method_params == {"p": 0.5}
    assert config.epochs == 3
    with pytest.raises(ValueError, match=r"unknown run parameter\(s\) \['epoch'\]"):
        RunConfig.from_parameters({"epoch": 3})


def test_from_namespace_ignores_other_names():
    config = RunConfig.from_namespace({"epochs": 2, "seeds": [0, 1], "config_name": "x"})
    assert config.epochs == 2


@pytest.fixture
def package_copy(tmp_path):
    return shutil.copytree(PACKAGE, tmp_path / "mixlib", ignore=shutil.ignore_patterns("__pycache__"))


def test_code_version_is_the_package_source(package_copy):
    assert code_version(package=package_copy) == code_version()
    assert code_version(training_only=True, package=package_copy) == code_version(training_only=True)
    assert code_version(training_only=True) != code_version()


@pytest.mark.parametrize(
    ("edited", "retrains"),
    [
        ("mixing/cutmix.py", True),
        ("training.py", True),
        ("runs/recipes.py", True),
        ("chapters/results.py", False),
        ("profiles/__init__.py", False),
        ("sweep/runner.py", False),
        ("latency/orin.py", False),
        ("bench/mixing.py", False),
        ("cli.py", False),
    ],
)
def test_only_an_edit_of_training_code_changes_the_run_fingerprint(package_copy, edited, retrains):
    """Editing a chapter, the latency library or a benchmark keeps finished runs; the report's own
    hash (every file) still rebuilds the chapters."""
    training_before = code_version(training_only=True, package=package_copy)
    everything_before = code_version(package=package_copy)
    with (package_copy / edited).open("a") as file:
        file.write("\n# an edit\n")
    assert (code_version(training_only=True, package=package_copy) != training_before) == retrains
    assert code_version(package=package_copy) != everything_before


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ValueError, match=r"momentum must .*; deterministic must be True or False, got 'no'"):
        RunConfig(momentum=-0.9, deterministic="no")


def test_every_field_has_exactly_one_check():
    assert set(FIELD_CHECKS) == {f.name for f in fields(RunConfig)}


def test_papermill_json_method_params_that_do_not_parse_name_the_field():
    with pytest.raises(ValueError, match="method_params must be a mapping or its JSON text"):
        RunConfig.from_parameters({"method_params": "{alpha: 1"})


def test_notebook_parameters_must_be_fields_or_template_parameters():
    namespace = {"epochs": 2, "seeds": [0], "epoch": 3}
    with pytest.raises(ValueError, match=r"unknown notebook parameter\(s\) \['epoch'\]"):
        RunConfig.from_notebook(namespace, {"epochs", "seeds", "epoch", "_i2"}, ("seeds",))
    config = RunConfig.from_notebook(namespace, {"epochs", "seeds", "_i2"}, ("seeds",))
    assert config.epochs == 2

"""One application probability for every mixed-sample configuration of a profile (issue 16)."""

from __future__ import annotations

import pytest
import torch

from mixlib.chapters.results import collect_runs, details_table, summarise
from mixlib.config import RunConfig
from mixlib.mixing import METHODS, create_batch_transform
from mixlib.profiles import available_profiles, load_profile
from mixlib.runs import application_probability, check_recipe, create_recipe, run_folder

from helpers import TINY_IMAGENET, write_run_folder

PROFILES_WITH_EVERY_METHOD = ("quick", "study")
DATA_ROOTS = {
    "tiny-imagenet": TINY_IMAGENET,
    "study": TINY_IMAGENET,
    "cifar10": TINY_IMAGENET.parent / "cifar10",
    "imagenette": TINY_IMAGENET.parent / "imagenette",
}


def trained_probability(config: RunConfig) -> float | None:
    """The `p` of the transform a run trains with, from the recipe `mixlib.runs.train_run` builds."""
    return getattr(create_recipe(config).batch_transform, "p", None)


@pytest.mark.parametrize("name", available_profiles())
def test_every_mixing_configuration_of_every_shipped_profile_mixes_as_often(name):
    # a real-data profile is checked against its data folder when it loads
    data_root = DATA_ROOTS.get(name)
    if data_root is not None and not data_root.is_dir():
        pytest.skip(f"{name}'s data not found at {data_root}")
    profile = load_profile(name, data_root=None if data_root is None else str(data_root))
    probabilities = {c.name: trained_probability(c.config) for c in profile.configurations}
    mixing = {
        name: probability
        for name, probability in probabilities.items()
        if probability is not None and name not in ("cutout", "random-erasing")
    }
    if name in PROFILES_WITH_EVERY_METHOD:
        assert len(mixing) >= 10  # MixUp ... Proxy on CutMix
    assert set(mixing.values()) <= {0.5}, mixing


def probability(method: str, params: dict, mix_probability: float | None = None) -> float | None:
    return application_probability(
        RunConfig(method=method, method_params=params, mix_probability=mix_probability, epochs=2)
    )


def test_without_a_profile_setting_each_method_keeps_its_published_probability():
    published = {method.name: probability(method.name, {}) for method in METHODS}
    assert published["cutmix"] == published["saliencymix"] == 0.5  # CutMix / SaliencyMix CIFAR commands
    assert published["fmix"] == published["resizemix"] == published["puzzlemix"] == 1.0
    assert probability("cutmix", {"p": 0.3}) == 0.3
    assert probability("none", {}) is None


def test_the_common_probability_reaches_every_mixing_method_but_not_the_erasing_baselines():
    for method in METHODS:
        expected = 0.25 if method.mixes_images else method().p
        assert probability(method.name, {}, 0.25) == expected, method.name
    inner = {"schedule": [1, "p"], "mixing": "fmix"}
    assert probability("proxy", inner, 0.25) == 0.25


def test_a_batch_is_mixed_with_the_common_probability():
    transform = create_batch_transform("fmix", 0.0)  # FMix's own default mixes every batch
    inputs, targets = torch.rand(4, 3, 16, 16), torch.arange(4)
    batch = transform(inputs, targets, generator=torch.Generator().manual_seed(0))
    assert torch.equal(batch.inputs, inputs) and torch.equal(batch.lam, torch.ones(4))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mix_probability": 1.5}, "mix_probability must be null"),
        ({"mix_probability": "half"}, "mix_probability must be null"),
        ({"mix_probability": 0.5, "method": "cutmix", "method_params": {"p": 0.3}}, "set only one"),
    ],
)
def test_bad_mix_probability_is_a_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        check_recipe(RunConfig(epochs=2, **changes))


def test_the_results_table_shows_each_configurations_application_probability(tmp_path):
    configs = {
        "baseline": RunConfig(mix_probability=0.5),
        "cutmix": RunConfig(method="cutmix", mix_probability=0.5),
        "fmix": RunConfig(method="fmix", mix_probability=0.5),
        "fmix-published": RunConfig(method="fmix"),
        "cutout": RunConfig(method="cutout", mix_probability=0.5),
    }
    metrics = {"accuracy": 0.5, "macro_f1": 0.5, "ece": 0.1, "macro_fpr": 0.1, "epoch_seconds": 1.0}
    for name, config in configs.items():
        write_run_folder(run_folder(tmp_path, name, 0).path, config, metrics)
    shown = details_table(summarise(collect_runs(tmp_path, list(configs), [0])))
    assert shown["application probability"].to_dict() == {
        "baseline": "–",
        "cutmix": "0.50",
        "fmix": "0.50",
        "fmix-published": "1.00",
        "cutout": "1.00",
    }

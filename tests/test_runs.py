"""Runs: a configuration's recipe is checked before anything runs, a finished folder is read back
without training or touching global state, and every chapter reads the same runs."""

from __future__ import annotations

import shutil

import pytest
import torch

from mixlib.config import RunConfig
from mixlib.mixing import CutMix, MixUp
from mixlib.proxy import ProxyAttention
from mixlib.runs import (
    RECIPES,
    RunFolder,
    check_recipe,
    create_recipe,
    finished_runs,
    load_run,
    run_folder,
    train_run,
)
from mixlib.training import Callback

from helpers import write_run_folder

PROXY = {"schedule": [1, "p", "p"], "fraction": 0.5}


# -- recipes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("mixdown", {}, r"unknown method 'mixdown'; allowed values: .*cutmix.*, proxy,"),
        ("mixup", {"alpha": -1}, r"method_params of method 'mixup': alpha must be a number in \(0.0, inf\)"),
        ("mixup", {"alhpa": 1.0}, r"unknown method_params \['alhpa'\] for method 'mixup'; allowed: alpha"),
        ("cutmix", {"p": 2}, r"method_params of method 'cutmix': p must be a number in \[0.0, 1.0\]"),
        ("none", {"alpha": 1.0}, r"unknown method_params \['alpha'\] for method 'none'"),
        ("proxy", {"fraction": 0}, r"method_params\.fraction must be a number"),
        ("proxy", {"schedule": [1, "p", 2]}, r"covers 4 epochs but the run has epochs = 3"),
    ],
)
def test_a_bad_method_is_named_with_its_parameters(method, params, message):
    config = RunConfig(method=method, method_params=params, epochs=3)  # the fields themselves are fine
    with pytest.raises(ValueError, match=message):
        check_recipe(config)


def test_every_mixing_method_and_proxy_attention_is_a_recipe():
    assert "proxy" in RECIPES and "cutmix" in RECIPES and "none" in RECIPES


def test_a_mixing_method_is_its_transform_with_the_common_probability():
    recipe = create_recipe(RunConfig(method="mixup", method_params={"alpha": 0.4}, mix_probability=0.5))
    assert isinstance(recipe.batch_transform, MixUp)
    assert (recipe.batch_transform.alpha, recipe.batch_transform.p) == (0.4, 0.5)
    assert recipe.callbacks == () and recipe.loss_terms == ()


def test_proxy_attention_is_its_inner_transform_plus_a_fresh_callback():
    config = RunConfig(
        method="proxy",
        method_params={**PROXY, "mixing": "cutmix", "mixing_params": {"alpha": 0.5}},
        mix_probability=0.25,
        epochs=3,
    )
    first, second = create_recipe(config), create_recipe(config)
    assert isinstance(first.batch_transform, CutMix)
    assert (first.batch_transform.alpha, first.batch_transform.p) == (0.5, 0.25)
    (callback,) = first.callbacks
    assert isinstance(callback, ProxyAttention) and callback.proxy_epochs == {2, 3}
    assert second.callbacks[0] is not callback  # a callback remembers its run


def test_cam_loss_weights_become_the_recipes_loss_terms():
    recipe = create_recipe(RunConfig(lambda_ent=0.1, lambda_eq=1.0))
    assert [term.name for term in recipe.loss_terms] == ["mixup_cam_entropy", "seam_equivariance"]


class Never(Callback):
    def on_epoch_start(self, trainer, epoch):
        raise AssertionError("nothing may train")


def test_a_bad_method_fails_before_the_run_folder_is_touched(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'mixdown'"):
        train_run(RunConfig(method="mixdown"), tmp_path / "run", callbacks=[Never()], progress=False)
    assert not (tmp_path / "run").exists()


# -- reading a finished run back ------------------------------------------------------------------


@pytest.fixture
def global_state():
    """Deterministic mode and the global generator as a notebook that did not train has them."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(deterministic)


def test_load_run_touches_no_global_state(finished_run, tiny_config, global_state):
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    result = load_run(finished_run, tiny_config)
    assert torch.equal(torch.rand(3), expected_draw)  # no draw from, and no reseeding of, the stream
    assert not torch.are_deterministic_algorithms_enabled()
    assert result.reused and not result.model.training
    assert result.metrics == RunFolder(finished_run).read_metrics()
    assert list(result.history["epoch"]) == [1]


def test_load_run_gives_the_trained_weights(finished_run, tiny_config, tmp_path):
    shutil.copytree(finished_run, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    trained = torch.load(RunFolder(tmp_path / "run").checkpoint_files[0], weights_only=True)["model"]
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, trained[name]), name


def test_load_run_refuses_unfinished_or_other_folders(finished_run, tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a run folder"):
        load_run(tmp_path)
    with pytest.raises(ValueError, match="trained with other parameters"):
        load_run(finished_run, tiny_config.replace(lr=0.01))
    unfinished = shutil.copytree(finished_run, tmp_path / "unfinished")
    RunFolder(unfinished).metrics_file.unlink()
    with pytest.raises(FileNotFoundError, match="no finished run for the current code"):
        load_run(unfinished)


# -- the run-folder contract ----------------------------------------------------------------------


def test_chapters_read_only_the_profiles_seeds(tmp_path, tiny_config):
    for seed in (0, 1, 7):  # seed 7: left over from an earlier profile
        write_run_folder(run_folder(tmp_path, "baseline", seed).path, tiny_config.replace(seed=seed), {})
    write_run_folder(run_folder(tmp_path, "cutmix", 0).path, tiny_config.replace(method="cutmix"), {})
    run_folder(tmp_path, "cutmix", 1).path.mkdir(parents=True)  # started, not finished
    runs = finished_runs(tmp_path, ["baseline", "cutmix"], [0, 1])
    assert [(run.configuration, run.seed) for run in runs] == [
        ("baseline", 0),
        ("baseline", 1),
        ("cutmix", 0),
    ]
    assert runs[2].config.method == "cutmix" and runs[1].metrics == {"seed": 1}
    assert runs[0].folder.path == tmp_path / "baseline" / "seed0"
    with pytest.raises(FileNotFoundError, match="no finished runs under .* seeds \\[3\\]"):
        finished_runs(tmp_path, ["baseline"], [3])

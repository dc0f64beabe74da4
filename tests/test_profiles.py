import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from mixlib.chapters.contents import SUMMARY_CHAPTERS
from mixlib.models import choose_output_stride
from mixlib.profiles import available_profiles, load_profile, profile_line, wall_time_warning
from mixlib.runs import run_folder
from mixlib.sweep.runner import check_chapter_settings, summary_task

from helpers import REPOSITORY


@pytest.mark.parametrize("name", ["quick", "smoke"])
def test_shipped_profiles_load(name):
    profile = load_profile(name)
    assert profile.name == name
    assert profile.configurations[0].name == "baseline"
    assert len(profile.configurations) >= 2


def test_tiny_imagenet_profile_needs_a_data_root(tiny_imagenet_root):
    with pytest.raises(ValueError, match="needs --data-root"):
        load_profile("tiny-imagenet")
    profile = load_profile("tiny-imagenet", data_root=str(tiny_imagenet_root))
    assert all(c.config.data_root == str(tiny_imagenet_root) for c in profile.configurations)


def test_available_profiles():
    assert {"quick", "smoke", "tiny-imagenet", "imagenette", "cifar10", "study"} <= set(available_profiles())


def write(tmp_path, text):
    path = tmp_path / "profile.yml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nconfigurations: [\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("name: x\nconfigurtions: []\n", r"unknown key\(s\) \['configurtions'\]"),
        ("name: x\nconfigurations: []\n", "non-empty list 'configurations'"),
        (
            "name: x\nconfigurations:\n  - method: none\n",
            "every configuration must be a mapping with a 'name'",
        ),
        ("name: x\nconfigurations:\n  - 5\n", "every configuration must be a mapping with a 'name', got 5"),
        ("name: x\ndefaults: 5\nconfigurations:\n  - name: a\n", "'defaults' must be a mapping"),
        (
            "name: x\nconfigurations:\n  - name: a\n    method: mixdown\n",
            "configuration 'a': unknown method 'mixdown'; allowed values",
        ),
        (
            "name: x\nconfigurations:\n  - name: a\n    epocs: 3\n",
            r"configuration 'a': unknown run parameter",
        ),
        ("name: x\nconfigurations:\n  - name: a\n  - name: a\n", "repeats configuration name"),
        ("name: x\nseeds: 3\nconfigurations:\n  - name: a\n", "'seeds' must be a non-empty list"),
        *[
            (
                f"name: x\nseeds: {seeds}\nconfigurations:\n  - name: a\n",
                "'seeds' must be a non-empty list of distinct",
            )
            for seeds in ("[]", "[-1]", "[0, 0]", "[true]", "[1.0]", f"[{10**22}]", f"[{2**32}]")
        ],
        *[
            (f"name: {name}\nconfigurations:\n  - name: a\n", "'name' must be a plain folder name")
            for name in ("../../p/escaped", "/tmp/absolute", "..", "a/b", "'a\\\\b'", "''", "7", "[a]")
        ],
        ("name: x\nconfigurations:\n  - name: A b\n", "must match"),
        ("name: x\npilot: 12\nconfigurations:\n  - name: a\n", "'pilot' must be a mapping.*mixlib pilot"),
        ("name: x\ntuning: [1]\nconfigurations:\n  - name: a\n", "'tuning' must be a mapping.*mixlib tune`"),
        ("name: x\nchapters: [latency]\nconfigurations:\n  - name: a\n", "'chapters' must map chapter names"),
        ("name: x\nchapters: {latency: 1}\nconfigurations:\n  - name: a\n", "'chapters' must map chapter"),
    ],
)
def test_malformed_profiles_are_clear_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_profile(write(tmp_path, text))


def test_unknown_profile_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown profile 'huge'; allowed values: .*quick"):
        load_profile("huge")


PROFILE_ON = "name: x\nconfigurations:\n  - name: a\n    dataset: {dataset}\n    method: {method}\n"


@pytest.mark.parametrize(
    ("dataset", "folder", "message"),
    [
        (
            "imagefolder",
            "missing",
            r"data_root=.*missing' is not a directory; expected a folder with train/<class>/",
        ),
        ("imagefolder", "no-test", r"has no val/ or test/ subfolder; expected a folder with train/<class>/"),
        (
            "tiny-imagenet",
            "no-test",
            r"lacks wnids.txt, words.txt, val/images.*; expected Tiny ImageNet's folder",
        ),
        ("synthetic", "no-test", r"not made by the synthetic generator"),
    ],
)
def test_a_data_root_without_the_datasets_layout_fails_when_the_profile_loads(
    tmp_path, dataset, folder, message
):
    (tmp_path / "no-test" / "train" / "cats").mkdir(parents=True)
    profile = write(tmp_path, PROFILE_ON.format(dataset=dataset, method="none"))
    with pytest.raises(ValueError, match=rf"dataset '{dataset}': .*{message}"):
        load_profile(profile, data_root=str(tmp_path / folder))


def test_method_params_are_checked_when_the_profile_loads(tmp_path):
    text = PROFILE_ON.format(dataset="synthetic", method="mixup") + "    method_params: {alpha: -1}\n"
    with pytest.raises(ValueError, match=r"configuration 'a': method_params of method 'mixup': alpha must"):
        load_profile(write(tmp_path, text))


@pytest.mark.parametrize("name", ["imagenette", "cifar10", "study"])
def test_real_data_profiles_need_a_data_root(name, request, image_folder):
    with pytest.raises(ValueError, match="needs --data-root"):
        load_profile(name)
    # the data folder is checked against the dataset's layout when the profile loads
    data_root = request.getfixturevalue("tiny_imagenet_root") if name == "study" else image_folder
    profile = load_profile(name, data_root=str(data_root))
    assert profile.configurations[0].name == "baseline" and len(profile.seeds) >= 2


def test_study_profile_is_sized_to_answer_and_says_it_is_unrun(tiny_imagenet_root):
    study = load_profile("study", data_root=str(tiny_imagenet_root))
    quick = load_profile("quick")
    assert len(study.seeds) >= 5
    assert {c.name for c in study.configurations} == {c.name for c in quick.configurations}
    for configuration in study.configurations:
        config = configuration.config
        assert config.epochs >= 200 and config.device == "cuda"
        assert config.image_size // choose_output_stride(config.image_size, config.min_feature_size) >= 8
    assert "NOT RUN YET" in study.description


def test_tiny_imagenet_profile_is_sized_by_its_pilot_and_tuned_on_validation(tiny_imagenet_root):
    profile = load_profile("tiny-imagenet", data_root=str(tiny_imagenet_root))
    assert len(profile.seeds) >= 3
    assert [c.name for c in profile.configurations][:3] == ["baseline", "mixup", "cutmix"]
    config = profile.configurations[0].config
    assert config.image_size // choose_output_stride(config.image_size, config.min_feature_size) >= 8
    pilot, tuning = profile.sizing["pilot"], profile.sizing["tuning"]
    assert {row["configuration"] for row in pilot["validation_accuracy"]} >= {"baseline", "mixup", "cutmix"}
    chosen = tuning["chosen"]
    assert (config.lr, config.weight_decay) == (chosen["lr"], chosen["weight_decay"])
    assert tuning["epochs"] == config.epochs  # tuned at the schedule the profile runs


def test_a_seed_at_the_top_of_numpys_range_is_accepted(tmp_path):
    profile = load_profile(
        write(tmp_path, f"name: top\nseeds: [0, {2**32 - 1}]\nconfigurations:\n  - name: a\n")
    )
    assert profile.seeds == (0, 2**32 - 1) and profile.name == "top"


PILOTED = """name: long
seeds: [0, 1]
defaults: {epochs: 30}
configurations:
  - name: baseline
  - name: unpiloted
pilot:
  seconds:
    baseline: {fixed: 0.0, per_epoch: 1440.0}
"""


def test_a_profile_beyond_a_day_is_warned_about_with_its_estimated_hours(tmp_path):
    profile = load_profile(write(tmp_path, PILOTED))  # 2 configurations x 2 seeds x 30 epochs x 0.4 h
    warning = wall_time_warning(profile, tmp_path / "runs")
    assert warning.startswith("profile 'long' needs about 48 h of training (2 configuration(s) x 2 seed(s)")
    assert "from the profile's pilot" in warning
    short = load_profile(write(tmp_path, PILOTED.replace("epochs: 30", "epochs: 10")))
    assert wall_time_warning(short, tmp_path / "runs") is None  # 16 h: a day is enough


def test_an_epoch_measured_here_replaces_the_pilots_estimate(tmp_path):
    profile = load_profile(write(tmp_path, PILOTED.replace("epochs: 30", "epochs: 10")))
    for name in ("baseline", "unpiloted"):
        folder = run_folder(tmp_path / "runs", name, 0)
        folder.path.mkdir(parents=True)
        pd.DataFrame({"epoch": [1], "epoch_seconds": [3600.0]}).to_csv(folder.history_file, index=False)
    warning = wall_time_warning(profile, tmp_path / "runs")  # 2 x 2 x 10 epochs of an hour
    assert "about 40 h" in warning and "from epochs measured here" in warning


def test_a_profile_with_no_cost_known_is_not_estimated(tmp_path):
    profile = load_profile(write(tmp_path, "name: x\nconfigurations:\n  - name: a\n    epochs: 10000\n"))
    assert wall_time_warning(profile, tmp_path / "runs") is None


def test_a_chapter_names_its_profile_in_one_line_linking_to_the_findings():
    line = profile_line("smoke", "Smoke test", ["baseline", "label-smoothing"], [0, 1])
    assert "\n" not in line
    assert line.startswith("Profile **smoke** (Smoke test): 2 configuration(s), seed(s) 0, 1;")
    assert "{doc}`the findings <findings>`" in line


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"latncy": {"threads": 2}}, r"unknown chapter 'latncy'; allowed: \['cams', 'findings', "),
        (
            {"latency": {"budget": 1}},
            r"latency: unknown parameter\(s\) \['budget'\]; allowed: \['budget_s', ",
        ),
        ({"mixing": {"seeds": [1]}}, r"mixing: unknown parameter\(s\) \['seeds'\]"),  # the runner sets it
    ],
)
def test_chapter_settings_name_chapters_and_their_template_parameters(settings, message):
    profile = dataclasses.replace(load_profile("smoke"), chapter_settings=settings)
    with pytest.raises(ValueError, match=message):
        check_chapter_settings(profile, REPOSITORY)


def test_the_smoke_profiles_chapter_settings_reach_the_chapters_notebooks():
    check_chapter_settings(load_profile("smoke"), REPOSITORY)
    task = summary_task(SUMMARY_CHAPTERS[-1], load_profile("smoke"), Path("runs/smoke"), REPOSITORY)
    assert task.name == "latency" and task.parameters["reference_models"] == []

"""The findings page on hand-made run folders: what it says when methods differ, when nothing does,
and when the data has no boxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixlib.chapters import findings as page
from mixlib.chapters.statistics import Comparison, comparison_frame
from mixlib.cli import build_parser
from mixlib.config import RunConfig
from mixlib.runs import run_folder

from helpers import write_run_folder


def localisation(box: float, part_ratio: float) -> dict:
    return {
        "cam_method": "gradcam",
        "max_box_acc_v2": box,
        "box_accuracy": {"0.3": box + 10, "0.5": box, "0.7": box - 10},
        "top1_localisation": box / 2,
        "pointing_game": 50.0,
        "pxap": 0.5,
        "part_coverage": {
            "part_share": 0.2,
            "part_ratio": part_ratio,
            "body_ratio": 1.1,
            "background_ratio": 0.5,
        },
        "deletion_auc": 0.2,
        "insertion_auc": 0.5,
    }


def write_run(
    root: Path, base: RunConfig, name: str, method: str, seed: int, accuracy: float, seconds: float, **options
) -> None:
    config = base.replace(**options.get("config", {}), method=method, seed=seed)
    metrics = {
        "accuracy": accuracy,
        "macro_f1": accuracy,
        "ece": 0.1,
        "macro_fpr": 0.05,
        "epoch_seconds": seconds,
        "confusion_matrix": [[1] * 10] * 10,
        "localisation": options.get("localisation", {}),
    }
    history = {
        "epoch": [1, 2, 3],
        "val_accuracy": [0.1, 0.2, options.get("val", accuracy)],
        "epoch_seconds": [1] * 3,
    }
    write_run_folder(run_folder(root, name, seed).path, config, metrics, history)


@pytest.fixture
def profile(tiny_config):
    """Findings over hand-made runs: configuration -> (method, [(accuracy, seconds, *localisation)])."""

    def make(root: Path, table: dict, **options) -> page.Findings:
        return write_profile(root, tiny_config.replace(epochs=3), table, **options)

    return make


def write_profile(root: Path, base: RunConfig, table: dict, **options) -> page.Findings:
    for name, (method, per_seed) in table.items():
        for seed, (accuracy, seconds, *extra) in enumerate(per_seed):
            run_options = dict(options)
            if extra:
                run_options["localisation"] = localisation(*extra)
            write_run(root, base, name, method, seed, accuracy, seconds, **run_options)
    return page.load_findings("quick", root, list(table), [0, 1, 2])


def test_a_clear_gain_is_named_with_its_interval(tmp_path, monkeypatch, profile):
    monkeypatch.setenv("MIXLIB_CACHE", str(tmp_path / "cache"))
    found = profile(
        tmp_path / "runs",
        {
            "baseline": ("none", [(0.50, 10.0, 30, 2.0), (0.55, 11.0, 31, 2.1), (0.60, 12.0, 29, 1.9)]),
            "cutmix": ("cutmix", [(0.60, 20.0, 40, 1.5), (0.66, 22.0, 42, 1.4), (0.69, 24.0, 41, 1.6)]),
            "mixup": ("mixup", [(0.49, 10.5, 30, 2.0), (0.57, 11.0, 32, 2.1), (0.59, 12.5, 28, 1.8)]),
        },
        config={"dataset": "synthetic"},
    )
    answer = page.accuracy_answer(found, {})
    assert "against the baseline: better: `cutmix` (+10.0 [" in answer
    assert "Use `cutmix`: its test accuracy is detectably above the baseline's" in answer
    assert "could have gone unseen" in answer
    # a 'worse' of a mixing method would carry the budget; nothing here is worse
    assert "holds at this budget" not in answer
    place = page.localisation_answer(found, {})
    assert "centre-Gaussian map that uses no model scores MaxBoxAccV2" in place
    assert "Distance from the centre guess: `baseline` " in place and "; `cutmix` " in place
    assert "**Part versus whole.** The baseline's CAM puts 2.00x" in place
    reading = page.how_to_read(found)
    assert "*Reproduce:* `python -m mixlib report --profile quick`" in reading
    assert "test images" in reading and "split seed" in reading
    published = page.published_accuracy_table(found, page.load_published())
    assert published.loc["cutmix", "OpenMixup Tiny-ImageNet R-18, 400 ep (other paper)"] == "65.53 (+3.85)"
    assert published.loc["baseline", "this run: Δ vs baseline (pts)"] == "baseline"
    shown = page.published_localisation_table(found, page.load_published())
    assert shown.loc["CutMix's change to the CAM's score", page.VALIDATION_TAU].startswith("better, +11.0 [")
    assert shown.loc["centre-Gaussian guess", "CUB (Choe et al. 2020, best τ on the scored split)"] == "59.7"
    sources = page.published_sources_table(page.load_published())
    assert (
        "median top-1 of the last 10 epochs"
        in sources.loc["OpenMixup Tiny-ImageNet R-18, 400 ep", "accuracy rule"]
    )
    assert "p = 0.5" in sources.loc["reproduction Tiny-ImageNet R-18, 400 ep", "mixing probability and alpha"]
    notes = page.published_notes(page.load_published())
    assert notes.startswith("**Other papers' settings, not this run's.**") and "80 epochs" in notes


def test_no_difference_is_said_with_the_interval_and_the_detectable_size(tmp_path, profile):
    found = profile(
        tmp_path,
        {
            "baseline": ("none", [(0.50, 10.0), (0.55, 10.0), (0.60, 10.0)]),
            "mixup": ("mixup", [(0.51, 10.0), (0.54, 10.0), (0.61, 10.0)]),
            "same": ("none", [(0.50, 10.0), (0.55, 10.0), (0.60, 10.0)]),
        },
        config={"dataset": "imagefolder", "data_root": "/data/folder"},
    )
    answer = page.accuracy_answer(found, SIZING)
    assert "no configuration differs detectably from the baseline at this budget" in answer
    assert "could have gone unseen" in answer
    assert "the baseline is the safe choice" in answer and "Use `" not in answer
    assert "--data-root /data/folder" in page.how_to_read(found)
    place = page.localisation_answer(found, {})
    assert "no bounding boxes" in place and "MaxBoxAccV2" in place and "PxAP" in place
    assert page.this_run_localisation(found, "max_box_acc_v2")["cam"] == "unavailable (no boxes)"


def test_a_worse_mixing_method_carries_the_budget_and_the_pilot_trend(tmp_path, profile):
    found = profile(
        tmp_path,
        {
            "baseline": ("none", [(0.60, 10.0), (0.62, 10.0), (0.61, 10.0)]),
            "mixup": ("mixup", [(0.40, 10.0), (0.41, 10.0), (0.43, 10.0)]),
        },
    )
    answer = page.accuracy_answer(found, SIZING)
    assert "worse: `mixup`" in answer
    assert found.mixes_images("mixup") and not found.mixes_images("baseline")
    assert "holds at this budget of 3 epochs only" in answer
    assert "`mixup` -5.0 pts at 3 epochs, +2.0 at 6" in answer


def test_latency_sentence_gives_a_command_the_cli_accepts(tmp_path, profile):
    found = profile(
        tmp_path, {"baseline": ("none", [(0.5, 1.0), (0.6, 1.0)])}, config={"min_feature_size": 4}
    )
    sentence = page.latency_answer(found, None)
    assert "Jetson AGX Orin" in sentence and "FP16 projected" in sentence and "INT8 projected" in sentence
    command = sentence.split("*Reproduce:* `")[1].rstrip("`.")
    arguments = command.split()[3:]
    parsed = build_parser("latency").parse_args(arguments)
    assert (parsed.min_feature_size, parsed.input_size, parsed.num_classes, parsed.measure) == (
        4,
        32,
        10,
        False,
    )


def test_missing_runs_are_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        page.load_findings("quick", tmp_path, ["baseline"], [0])


SIZING = {
    "pilot": {
        "command": "python -m mixlib pilot --profile quick",
        "seeds": [0],
        "validation_accuracy": [
            {"configuration": "baseline", "epochs": 3, "val_accuracy": 0.5, "gain_over_baseline": 0.0},
            {"configuration": "baseline", "epochs": 6, "val_accuracy": 0.6, "gain_over_baseline": 0.0},
            {"configuration": "mixup", "epochs": 3, "val_accuracy": 0.45, "gain_over_baseline": -0.05},
            {"configuration": "mixup", "epochs": 6, "val_accuracy": 0.62, "gain_over_baseline": 0.02},
        ],
        "seconds": {
            "baseline": {"fixed": 30.0, "per_epoch": 88.0},
            "mixup": {"fixed": 31.0, "per_epoch": 89.0},
        },
    },
    "tuning": {
        "command": "python -m mixlib tune --profile quick",
        "epochs": 6,
        "chosen": {"lr": 0.05, "weight_decay": 0.0005},
        "grid": [
            {
                "lr": 0.02,
                "weight_decay": 0.0005,
                "val_accuracy_mean": 0.55,
                "val_accuracy_std": None,
                "seeds": 1,
            },
            {
                "lr": 0.05,
                "weight_decay": 0.0005,
                "val_accuracy_mean": 0.6,
                "val_accuracy_std": None,
                "seeds": 1,
            },
        ],
    },
}


def test_sizing_tables_show_each_pilot_point_with_its_gain_and_mark_the_chosen_grid_point():
    pilot = page.pilot_table(SIZING)
    assert list(pilot.columns) == ["baseline", "mixup"] and list(pilot.index) == [3, 6]
    assert pilot.loc[3, "mixup"] == "45.0 (-5.0)" and pilot.loc[6, "baseline"] == "60.0"
    tuning = page.tuning_table(SIZING).set_index("lr")
    assert tuning.loc[0.05, "chosen"] == "chosen" and tuning.loc[0.02, "chosen"] == ""
    assert tuning.loc[0.02, "validation accuracy %"] == "55.00"


def test_sizing_answer_gives_the_commands_or_says_nothing_chose_the_settings():
    text = page.sizing_answer(SIZING)
    assert "`python -m mixlib pilot --profile quick`" in text and "lr 0.05, weight_decay 0.0005" in text
    assert "30 s per run + 88.0 s per epoch" in text
    bare = page.sizing_answer({})
    assert "no pilot" in bare and "no grid" in bare
    assert page.pilot_table({}) is None and page.tuning_table({}) is None


@pytest.mark.parametrize(
    ("verdicts", "others_sentence"),
    [(["worse", "worse"], False), (["worse", "no detectable difference"], True)],
)
def test_the_missed_size_is_said_only_for_configurations_without_a_verdict(verdicts, others_sentence):
    table = comparison_frame(
        {
            name: Comparison(estimate, low, high, 0.975, 0.01, 0.02, 3, 0.03, verdict)
            for name, estimate, low, high, verdict in zip(
                ["mixup", "cutmix"], [-0.03, -0.02], [-0.05, -0.04], [-0.01, 0.01], verdicts, strict=True
            )
        }
    )
    sentence = page.family_sentence(table, "test accuracy", 100, 1, " pts")
    assert sentence.startswith("On test accuracy, against the baseline: worse: `mixup`")
    assert ("For the others, differences smaller than about 3.0 pts" in sentence) is others_sentence

"""The CAM chapter's functions on tiny run folders: one real run per dataset kind, copied and edited."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from mixlib.cams import CAM_METHODS
from mixlib.chapters import cams as cams_chapter
from mixlib.chapters import centre_baseline
from mixlib.chapters.image_scores import load_test_sample
from mixlib.chapters.scores import NO_BREAK
from mixlib.evaluation import centre_baseline_scores
from mixlib.run_data import build_eval_dataset, load_config_splits
from mixlib.runs import RunFolder, run_folder, train_run

from helpers import write_run_folder

PM = f"{NO_BREAK}±{NO_BREAK}"  # how a table shows mean ± std

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def synthetic_run(finished_run) -> Path:
    return finished_run


@pytest.fixture(scope="module")
def image_folder_run(tmp_path_factory, image_folder, tiny_config) -> Path:
    run_dir = tmp_path_factory.mktemp("folder-run") / "seed0"
    config = tiny_config.replace(dataset="imagefolder", data_root=str(image_folder))
    train_run(config, run_dir, progress=False)
    return run_dir


def copy_run(source: Path, runs_dir: Path, name: str, seed: int = 0, model: bool = False, **changes) -> Path:
    """A finished run copied to runs_dir/name/seed<k> (the whole folder if `model`, else its config and
    metrics), with top-level or localisation metrics changed."""
    target = run_folder(runs_dir, name, seed).path
    original = RunFolder(source)
    metrics = {**original.read_metrics(), "seed": seed}
    for key, value in changes.items():
        if key == "accuracy":
            metrics[key] = value
        elif key == "part_ratio":
            metrics["localisation"]["part_coverage"][key] = value
        else:
            metrics["localisation"][key] = value
    if model:
        shutil.copytree(source, target)
        RunFolder(target).write_metrics(metrics)
    else:
        write_run_folder(target, original.read_config().replace(seed=seed), metrics)
    return target


# --------------------------------------------------------------------------- scores


@pytest.fixture
def scored_runs(synthetic_run, tmp_path) -> Path:
    runs = [
        ("baseline", 0, 0.50, 10.0, 1.6),
        ("baseline", 1, 0.52, 12.0, 1.8),
        ("cutmix", 0, 0.55, 30.0, 1.2),
        ("cutmix", 1, 0.57, 32.0, 1.3),
        ("noisy", 0, 0.40, 9.0, 1.7),
        ("noisy", 1, 0.60, 13.0, 1.7),
        ("single", 0, 0.70, 40.0, 1.0),
    ]
    for name, seed, accuracy, box_acc, part_ratio in runs:
        copy_run(
            synthetic_run,
            tmp_path,
            name,
            seed,
            accuracy=accuracy,
            max_box_acc_v2=box_acc,
            part_ratio=part_ratio,
        )
    return tmp_path


def test_collect_reads_every_scalar_score(scored_runs):
    runs = cams_chapter.collect_localisation(scored_runs, ["baseline", "cutmix"], [0, 1])
    assert list(runs["configuration"]) == ["baseline", "baseline", "cutmix", "cutmix"]
    assert list(runs["seed"]) == [0, 1, 0, 1]
    assert runs["max_box_acc_v2"].tolist() == [10.0, 12.0, 30.0, 32.0]
    assert runs[list(cams_chapter.CAM_SCORES)].notna().all().all()  # synthetic data has every score
    assert set(runs["cam_method"]) == {"gradcam"}
    only_seed1 = cams_chapter.collect_localisation(scored_runs, ["baseline", "cutmix"], [1])
    assert list(only_seed1["seed"]) == [1, 1]
    assert only_seed1["run_dir"].tolist() == [
        str(scored_runs / name / "seed1") for name in ("baseline", "cutmix")
    ]


def test_summary_has_one_row_per_configuration_with_mean_std_and_verdicts(scored_runs):
    names = ["baseline", "cutmix", "noisy", "single"]
    summary = cams_chapter.summarise_localisation(
        cams_chapter.collect_localisation(scored_runs, names, [0, 1])
    )
    assert list(summary.index) == names
    assert summary["seeds"].tolist() == [2, 2, 2, 1]
    assert summary.loc["cutmix", "max_box_acc_v2_mean"] == pytest.approx(31.0)
    assert summary.loc["cutmix", "max_box_acc_v2_std"] == pytest.approx(np.sqrt(2.0))
    assert summary.loc["cutmix", "max_box_acc_v2_diff"] == pytest.approx(20.0)
    verdicts = summary["max_box_acc_v2_verdict"].to_dict()
    assert verdicts == {
        "baseline": "baseline",
        "cutmix": "better",  # +20 on both seeds
        "noisy": "no detectable difference",  # -1 and +1
        "single": "not resolved",
    }
    # a part ratio has no better direction: a detectable change is "higher" or "lower"
    assert summary.loc["cutmix", "part_ratio_verdict"] in {"lower", "no detectable difference"}
    assert summary.loc["single", "part_ratio_verdict"] == "not resolved"
    shown = cams_chapter.display_scores(summary, cams_chapter.BOX_TABLE)
    assert shown.loc["cutmix", "MaxBoxAccV2 %, τ from val"] == f"31.0{PM}1.4"
    assert shown.loc["cutmix", "accuracy %"] == f"56.0{PM}1.4"
    assert shown.loc["single", "MaxBoxAccV2 %, τ from val"] == "40.0"  # no spread from one seed
    cutmix = shown.loc["cutmix", "Δ MaxBoxAccV2 vs baseline"]
    assert cutmix.startswith("+20.0 [") and cutmix.endswith("] better") and "[+20.0, +20.0]" not in cutmix
    assert shown.loc["noisy", "Δ MaxBoxAccV2 vs baseline"].endswith("] no detectable difference")
    assert "box acc. IoU 0.5 %" not in shown  # in the details table
    details = cams_chapter.display_scores(summary, cams_chapter.BOX_DETAILS_TABLE)
    assert "box acc. IoU 0.5 %" in details and "accuracy %" not in details
    every_run = cams_chapter.runs_table(cams_chapter.collect_localisation(scored_runs, names, [0, 1]))
    assert every_run.loc[("cutmix", 0), "MaxBoxAccV2 %, τ from val"] == "30.0"
    assert "run_dir" not in every_run and "cam_method" not in every_run


def test_noise_statement_names_each_verdict_group(scored_runs):
    names = ["baseline", "cutmix", "noisy", "single"]
    summary = cams_chapter.summarise_localisation(
        cams_chapter.collect_localisation(scored_runs, names, [0, 1])
    )
    text = cams_chapter.noise_statement(summary)
    box_line, part_line = text.splitlines()
    assert box_line.startswith("- **MaxBoxAccV2**")
    assert "better than the baseline: cutmix (+20.0 [" in box_line
    assert "no detectable difference from the baseline: noisy (interval [" in box_line
    assert "not resolved (fewer than 2 paired seeds: seed noise cannot be estimated): single" in box_line
    assert "Detectable difference" in box_line
    assert "cutmix" in part_line
    without_baseline = cams_chapter.summarise_localisation(
        cams_chapter.collect_localisation(scored_runs, ["cutmix", "noisy"], [0, 1])
    )
    assert "no configuration named `baseline`" in cams_chapter.noise_statement(without_baseline)


@pytest.fixture(scope="module")
def centre_reference(synthetic_run) -> float:
    """The centre-Gaussian map's MaxBoxAccV2 on the tiny run's splits, computed here from the library."""
    config = RunFolder(synthetic_run).read_config()
    splits = load_config_splits(config)
    scores, _ = centre_baseline_scores(
        build_eval_dataset(config, splits.val), build_eval_dataset(config, splits.test)
    )
    return scores["max_box_acc_v2"]


def centre_runs(synthetic_run, runs_dir: Path, offsets: dict[str, tuple[float, ...]], reference: float):
    """Runs whose MaxBoxAccV2 lies `offsets` points (one per seed) from the centre reference."""
    for name, per_seed in offsets.items():
        for seed, offset in enumerate(per_seed):
            copy_run(synthetic_run, runs_dir, name, seed, max_box_acc_v2=reference + offset)
    return cams_chapter.collect_localisation(runs_dir, list(offsets), [0, 1])


def test_centre_baseline_names_the_configurations_above_it(synthetic_run, centre_reference, tmp_path):
    offsets = {"baseline": (-1.0, 2.0), "cutmix": (20.0, 20.0), "mixup": (5.0, 5.0), "single": (30.0,)}
    runs = centre_runs(synthetic_run, tmp_path, offsets, centre_reference)
    text = cams_chapter.centre_baseline_statement(runs)
    assert f"scores MaxBoxAccV2 **{centre_reference:.1f} %** on this test split" in text
    assert "detectably above it (Holm-corrected 95 % interval over seeds and test images): cutmix" in text
    centre = centre_baseline.centre_baseline_reference(runs)
    comparison = centre_baseline.compare_with_centre(runs, centre, load_test_sample(runs))
    verdicts = comparison["verdict"].to_dict()
    assert (verdicts["baseline"], verdicts["cutmix"], verdicts["single"]) == (
        "no detectable difference",
        "better",
        "not resolved",
    )
    assert comparison.loc["cutmix", "estimate"] == pytest.approx(20.0)
    assert comparison.loc["cutmix", "high"] > comparison.loc["cutmix", "low"]  # never certain
    assert "cutmix: better, +20.0 [" in text


def test_centre_baseline_says_when_no_cam_beats_the_guess(synthetic_run, centre_reference, tmp_path):
    runs = centre_runs(
        synthetic_run, tmp_path, {"baseline": (-3.0, 1.0), "cutmix": (-2.0, -2.0)}, centre_reference
    )
    text = cams_chapter.centre_baseline_statement(runs)
    assert "No configuration's MaxBoxAccV2 is detectably above it at this budget" in text
    assert "That does not show the CAMs localise no better than the guess" in text
    assert "cutmix: " in text and "[-2.0, -2.0]" not in text


def test_centre_baseline_needs_boxes(image_folder_run, tmp_path):
    copy_run(image_folder_run, tmp_path, "baseline")
    runs = cams_chapter.collect_localisation(tmp_path, ["baseline"], [0])
    assert cams_chapter.centre_baseline_statement(runs) == ""


def test_plot_shows_part_ratio_only_where_masks_exist(scored_runs, tmp_path):
    runs = cams_chapter.collect_localisation(scored_runs, ["baseline", "cutmix"], [0, 1])
    with_parts = cams_chapter.plot_localisation(cams_chapter.summarise_localisation(runs))
    assert len(with_parts.axes) == 2
    part_scores = (*cams_chapter.PART_TABLE, *cams_chapter.PART_DETAILS_TABLE)
    boxes_only = runs.assign(**{column: np.nan for column in part_scores})
    assert not cams_chapter.has_part_coverage(boxes_only)
    assert len(cams_chapter.plot_localisation(cams_chapter.summarise_localisation(boxes_only)).axes) == 1


def test_data_without_boxes_has_no_scores(image_folder_run, tmp_path):
    copy_run(image_folder_run, tmp_path, "baseline")
    runs = cams_chapter.collect_localisation(tmp_path, ["baseline"], [0])
    assert not cams_chapter.has_localisation(runs)
    assert runs["accuracy"].notna().all()
    shown = cams_chapter.display_scores(cams_chapter.summarise_localisation(runs), cams_chapter.BOX_TABLE)
    assert list(shown.columns) == ["seeds", "accuracy %"]


def test_missing_runs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        cams_chapter.collect_localisation(tmp_path, ["baseline"], [0])


# --------------------------------------------------------------------------- gallery

GRADIENT_METHODS = ["gradcam", "xgradcam", "hirescam", "eigencam"]


@pytest.fixture(scope="module")
def gallery(synthetic_run, tmp_path_factory):
    """Two configurations (copies of one run); ScoreCAM, the slow one, is left to its own test."""
    runs_dir = tmp_path_factory.mktemp("gallery-runs")
    for name in ("baseline", "mixup"):
        copy_run(synthetic_run, runs_dir, name, model=True)
    results = cams_chapter.load_gallery_runs(runs_dir, ["baseline", "mixup"], seed=0)
    samples = cams_chapter.gallery_samples(results, 3)
    cams = cams_chapter.gallery_cams(results, samples, GRADIENT_METHODS)
    return results, samples, cams, cams_chapter.gallery_predictions(results, samples)


def test_gallery_methods_cover_the_registry_with_scorecam_last():
    methods = cams_chapter.gallery_methods()
    assert sorted(methods) == CAM_METHODS.names()
    assert methods[-1] == "scorecam"


def test_gallery_samples_take_one_image_per_class_first(gallery):
    _, samples, _, _ = gallery
    assert len(samples.indices) == 3
    assert len(set(samples.labels.tolist())) == 3
    assert samples.images.shape == (3, 3, 32, 32)
    assert samples.boxes.shape == (3, 4) and samples.masks.shape == (3, 32, 32)
    assert samples.pictures.min() >= 0 and samples.pictures.max() <= 1


def test_gallery_cams_cover_every_image_but_limit_scorecam(gallery):
    results, samples, cams, _ = gallery
    assert list(cams) == ["baseline", "mixup"]
    for per_method in cams.values():
        assert list(per_method) == GRADIENT_METHODS
        assert all(m.shape == (3, 32, 32) and 0 <= m.min() and m.max() <= 1 for m in per_method.values())
    one = {"baseline": results["baseline"]}
    scorecam = cams_chapter.gallery_cams(one, samples, ["gradcam", "scorecam"], scorecam_images=1)
    assert scorecam["baseline"]["scorecam"].shape == (1, 32, 32)
    assert scorecam["baseline"]["gradcam"].shape == (3, 32, 32)
    assert list(cams_chapter.gallery_cams(one, samples, ["scorecam"], scorecam_images=0)["baseline"]) == []


def test_gradcam_xgradcam_and_hirescam_coincide_on_a_pooling_linear_head(gallery):
    # the chapter text says so: the gradient of a pooled linear head is the same at every location
    _, _, cams, _ = gallery
    maps = cams["baseline"]
    np.testing.assert_allclose(maps["hirescam"], maps["gradcam"], atol=1e-4)
    np.testing.assert_allclose(maps["xgradcam"], maps["gradcam"], atol=1e-4)
    assert not np.allclose(maps["eigencam"], maps["gradcam"], atol=1e-2)


def test_image_gallery_has_a_row_per_configuration_and_a_column_per_method(gallery):
    _, samples, cams, predictions = gallery
    # a ScoreCAM computed for the first image only, as gallery_cams leaves it with scorecam_images=1
    cams = {name: {**maps, "scorecam": maps["gradcam"][:1]} for name, maps in cams.items()}
    methods = [*GRADIENT_METHODS, "scorecam"]
    first = cams_chapter.plot_image_gallery(samples, 0, cams, predictions)
    grid = np.array(first.axes).reshape(2, 1 + len(methods))
    assert [axis.get_title() for axis in grid[0]] == ["input", *methods]
    assert [axis.get_ylabel() for axis in grid[:, 0]] == ["baseline", "mixup"]
    assert all(len(axis.patches) == 1 for axis in grid.ravel())  # the ground-truth box everywhere
    second = cams_chapter.plot_image_gallery(samples, 1, cams, predictions)
    assert len(second.axes) == 2 * len(methods)  # input + the methods without ScoreCAM
    assert "not computed for this image: scorecam" in second._suptitle.get_text()


def test_gallery_rejects_bad_parameters(gallery):
    results, samples, cams, predictions = gallery
    with pytest.raises(ValueError, match="gallery_images"):
        cams_chapter.gallery_samples(results, 0)
    with pytest.raises(ValueError, match="scorecam_images"):
        cams_chapter.gallery_cams(results, samples, ["gradcam"], scorecam_images=4)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        cams_chapter.gallery_cams(results, samples, ["nope"])
    with pytest.raises(ValueError, match="position"):
        cams_chapter.plot_image_gallery(samples, 3, cams, predictions)
    other = dict(results)
    other["mixup"] = dataclasses.replace(
        results["mixup"], config=results["mixup"].config.replace(image_size=40)
    )
    with pytest.raises(ValueError, match="'mixup' has a different test split or image size"):
        cams_chapter.gallery_samples(other, 2)


def test_gallery_of_data_without_boxes(image_folder_run, tmp_path):
    copy_run(image_folder_run, tmp_path, "baseline", model=True)
    results = cams_chapter.load_gallery_runs(tmp_path, ["baseline"], seed=0)
    samples = cams_chapter.gallery_samples(results, 2)
    assert samples.boxes is None and samples.masks is None
    cams = cams_chapter.gallery_cams(results, samples, ["gradcam"], scorecam_images=0)
    figure = cams_chapter.plot_image_gallery(
        samples, 1, cams, cams_chapter.gallery_predictions(results, samples)
    )
    assert len(figure.axes) == 2
    assert not any(axis.patches for axis in figure.axes)
    assert "no boxes in this dataset" in figure._suptitle.get_text()

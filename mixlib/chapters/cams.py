"""Tables and figures of the CAM chapter (`notebooks/cams.ipynb`): localisation scores of every
configuration over seeds, and a gallery of CAM methods x configurations on the same test images.

Scores are read from the run folders' `metrics.json` (written by `mixlib.evaluation` after training),
so nothing is re-evaluated here; only the gallery runs models, the first seed's of each configuration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mixlib.cams import CAM_METHODS, compute_cams
from mixlib.chapters.centre_baseline import centre_baseline_reference, compare_with_centre
from mixlib.chapters.figures import Question, compact_cells
from mixlib.chapters.image_scores import compare_runs, load_test_sample
from mixlib.chapters.scores import BOX_ACCURACY_COLUMNS, LOCALISATION, SCORES, run_scores, shown_scores
from mixlib.chapters.shown_images import draw_box, sample_indices
from mixlib.chapters.statistics import (
    DETECTABLE_RULE,
    NO_DIFFERENCE,
    NOT_RESOLVED,
    TOO_FEW_SEEDS,
    comparison_texts,
    per_configuration,
    smallest_detectable,
)
from mixlib.data import denormalise
from mixlib.data.synthetic import MASK_PART
from mixlib.evaluation import predict_classes
from mixlib.model_state import borrowed_for_evaluation
from mixlib.run_data import build_eval_dataset
from mixlib.runs import RunResult, finished_runs, load_run, run_folder

# the scores of this chapter: test accuracy and every localisation score
CAM_SCORES = ("accuracy", *LOCALISATION)
# the box scores in two tables that each fit the text column: the headline, then the box accuracy at
# each IoU and the score as published tables compute it
BOX_TABLE = ("accuracy", "max_box_acc_v2", "top1_localisation")
BOX_DETAILS_TABLE = (*BOX_ACCURACY_COLUMNS, "wsolevaluation_max_box_acc_v2", "pointing_game")
# the scores of the table of every run (the others are in the tables per configuration)
RUNS_TABLE = ("accuracy", "max_box_acc_v2", "top1_localisation", "pointing_game", "pxap", "part_ratio")
# Choe et al. 2020 (clovaai/wsolevaluation), MaxBoxAccV2 % on (ImageNet, CUB): a vanilla CAM, mean of
# three ImageNet-pretrained backbones at 224 px, and the centre-Gaussian baseline
PUBLISHED_MAX_BOX_ACC_V2 = {"a vanilla CAM": (62.4, 61.1), "the centre-Gaussian baseline": (52.5, 59.7)}
# the part-versus-whole scores, split as the box scores are
PART_TABLE = ("pxap", "part_share", "part_ratio")
PART_DETAILS_TABLE = ("body_ratio", "background_ratio")
FAITHFULNESS_TABLE = ("deletion_auc", "insertion_auc")
# scores compared with the baseline (paired by seed, Holm-corrected); a lower part ratio is not better
# by itself (a map off the object has one too), so `SCORES` gives it no direction
COMPARED = ("max_box_acc_v2", "part_ratio")


# --------------------------------------------------------------------------- scores from run folders


def collect_localisation(
    runs_dir: str | Path, configurations: Sequence[str], seeds: Sequence[int]
) -> pd.DataFrame:
    """One row per finished run (configuration, seed) of the given seeds: its folder, test accuracy and
    the scalar localisation scores (NaN where a run has none: no boxes, or no masks for PxAP and part
    coverage)."""
    rows = [
        {
            "configuration": run.configuration,
            "method": run.config.method,
            "seed": run.seed,
            "run_dir": str(run.folder.path),
            **run_scores(run.metrics),
        }
        for run in finished_runs(runs_dir, configurations, seeds)
    ]
    columns = ["configuration", "method", "seed", "run_dir", "cam_method", *CAM_SCORES]
    return pd.DataFrame(rows, columns=columns)


def has_localisation(runs: pd.DataFrame) -> bool:
    return bool(runs["max_box_acc_v2"].notna().any())


def has_part_coverage(runs: pd.DataFrame) -> bool:
    return bool(runs["part_ratio"].notna().any())


def summarise_localisation(runs: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Mean and sample std per configuration (in the given order) of every score and, for each
    `COMPARED` score, the paired difference to `baseline` with its Holm-corrected interval and verdict
    (`mixlib.chapters.statistics`, the rule of every chapter)."""
    table = per_configuration(runs, CAM_SCORES)
    if baseline not in table.index:
        return table
    sample = load_test_sample(runs)
    for score in COMPARED:
        shown = SCORES[score]
        comparison = compare_runs(runs, score, baseline, shown.better, sample)
        scored = table[f"{score}_mean"].notna()
        table[f"{score}_diff"] = comparison["estimate"]
        table[f"{score}_detectable"] = comparison["detectable"]
        table[f"{score}_verdict"] = comparison["verdict"].where(scored, "no score")
        table[f"{score}_text"] = comparison_texts(comparison, shown.scale, shown.digits).where(
            scored, "no score"
        )
        question = Question(scale=shown.scale, digits=shown.digits)
        table[f"{score}_cell"] = compact_cells(comparison, question).where(scored, "no score")
        table.loc[baseline, [f"{score}_verdict", f"{score}_text", f"{score}_cell"]] = "baseline"
    return table


def display_scores(summary: pd.DataFrame, scores: Sequence[str]) -> pd.DataFrame:
    """'mean ± std' strings for the given scores (std left out for a single seed), plus the comparison
    with the baseline of the compared scores among them ('estimate [interval] verdict'); scores no
    configuration has are dropped."""
    shown = pd.DataFrame(index=summary.index)
    shown["seeds"] = summary["seeds"]
    for score in scores:
        mean, std = summary[f"{score}_mean"], summary[f"{score}_std"]
        if mean.isna().all():
            continue
        shown_as = SCORES[score]
        shown[shown_as.heading] = [shown_as.mean_std(m, s) for m, s in zip(mean, std, strict=True)]
        if f"{score}_cell" in summary:
            shown[f"Δ {shown_as.name} vs baseline"] = summary[f"{score}_cell"]
    return shown


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and seed: the main scores in their shown unit and precision."""
    return shown_scores(runs.set_index(["configuration", "seed"]), RUNS_TABLE)


def centre_baseline_statement(runs: pd.DataFrame) -> str:
    """Markdown: MaxBoxAccV2 of the centre-Gaussian map on the runs' splits, and each configuration's
    paired difference to it. Empty for data without boxes."""
    centre = centre_baseline_reference(runs)
    scores = centre[0]
    if not scores:
        return ""
    reference = scores["max_box_acc_v2"]
    per_iou = " / ".join(f"{value:.1f}" for value in scores["box_accuracy"].values())
    comparison = compare_with_centre(runs, centre, load_test_sample(runs))
    texts = comparison_texts(comparison, digits=1, unit=" pts")
    above = comparison.index[comparison["verdict"] == "better"].tolist()
    detectable = smallest_detectable(comparison["detectable"])
    verdict_text = (
        f"Configurations whose MaxBoxAccV2 is detectably above it (Holm-corrected 95 % interval over "
        f"seeds and test images): {', '.join(above)}."
        if above
        else "No configuration's MaxBoxAccV2 is detectably above it at this budget. That does not show "
        "the CAMs localise no better than the guess: differences below about "
        f"{detectable:.1f} pts could have gone unseen ({DETECTABLE_RULE})."
    )
    published = " and ".join(
        f"{name} at {imagenet:.1f} % on ImageNet and {cub:.1f} % on CUB"
        for name, (imagenet, cub) in PUBLISHED_MAX_BOX_ACC_V2.items()
    )
    listed = "; ".join(f"{name}: {text}" for name, text in texts.items())
    return (
        f"**Reference without a model.** A centre-Gaussian map, the same for every image (Choe et al. "
        f"2020's centre baseline), with its threshold fitted on the same validation split, scores "
        f"MaxBoxAccV2 **{reference:.1f} %** on this test split (box accuracy {per_iou} % at IoU "
        f"{' / '.join(scores['box_accuracy'])}). {verdict_text} "
        f"Difference to it per configuration: {listed}.\n\n"
        f"**On the published scale.** Computed as clovaai/wsolevaluation does (best τ on the test maps, "
        f"its box convention), the centre map scores **{scores['wsolevaluation_max_box_acc_v2']:.1f} %**, "
        f"comparable with the column *MaxBoxAccV2 %, wsolevaluation* above. Choe et al. 2020 report "
        f"{published} (the CAM figure is the mean of three ImageNet-pretrained backbones with 14x14 or "
        f"28x28 maps at 224 px, far from a from-scratch model with a few cells per side)."
    )


VERDICT_PHRASES = {
    "better": "better than the baseline",
    "worse": "worse than the baseline",
    "higher": "higher than the baseline",
    "lower": "lower than the baseline",
    NO_DIFFERENCE: "no detectable difference from the baseline",
    NOT_RESOLVED: f"not resolved ({TOO_FEW_SEEDS})",
}


def noise_statement(summary: pd.DataFrame, baseline: str = "baseline") -> str:
    """Markdown bullets, one per compared score: the configurations in each verdict group, each with its
    difference and interval, and the smallest difference the run could have detected."""
    if baseline not in summary.index:
        return (
            f"There is no configuration named `{baseline}` among these runs, so nothing is compared with "
            "it; read the spreads (± one standard deviation over seeds) in the tables."
        )
    if len(summary) == 1:
        return "Only the baseline was run, so there is nothing to compare."
    lines = []
    for score in COMPARED:
        label = SCORES[score].name
        if summary[f"{score}_mean"].isna().all():
            continue
        verdicts, texts = summary[f"{score}_verdict"], summary[f"{score}_text"]
        groups = [
            f"{phrase}: "
            + ", ".join(
                f"{name} ({texts[name].split(', ', 1)[-1]})" if name_verdict != NOT_RESOLVED else name
                for name, name_verdict in verdicts.items()
                if name_verdict == key
            )
            for key, phrase in VERDICT_PHRASES.items()
            if (verdicts == key).any()
        ]
        detectable = smallest_detectable(summary[f"{score}_detectable"])
        smallest = (
            f" Detectable difference, the median over configurations ({DETECTABLE_RULE}): "
            f"{detectable * SCORES[score].scale:.{SCORES[score].digits}f}."
            if np.isfinite(detectable)
            else ""
        )
        lines.append(f"- **{label}**: " + "; ".join(groups) + "." + smallest)
    return "\n".join(lines)


def plot_localisation(summary: pd.DataFrame) -> plt.Figure:
    """MaxBoxAccV2 against test accuracy per configuration and, where the data has part masks, the
    part/body/background ratios per configuration. Error bars: one standard deviation over seeds."""
    with_parts = bool(summary["part_ratio_mean"].notna().any())
    figure, axes = plt.subplots(
        1, 2 if with_parts else 1, figsize=(13 if with_parts else 6.5, 4.6), squeeze=False
    )
    # tab20 holds ten dark/light pairs: the dark shades first, so neighbours differ in hue
    shades = np.arange(len(summary)) % 20
    colours = plt.cm.tab20((shades * 2) % 20 + shades // 10)
    _plot_box_accuracy_vs_accuracy(axes[0, 0], summary, colours)
    if with_parts:
        _plot_region_ratios(axes[0, 1], summary)
    figure.tight_layout()
    return figure


def _plot_box_accuracy_vs_accuracy(axis: plt.Axes, summary: pd.DataFrame, colours: np.ndarray) -> None:
    for colour, (name, row) in zip(colours, summary.iterrows(), strict=True):
        axis.errorbar(
            row["accuracy_mean"] * 100,
            row["max_box_acc_v2_mean"],
            xerr=np.nan_to_num(row["accuracy_std"] * 100),
            yerr=np.nan_to_num(row["max_box_acc_v2_std"]),
            fmt="o",
            color=colour,
            capsize=3,
            label=name,
        )
    axis.set(
        xlabel="test accuracy %",
        ylabel="MaxBoxAccV2 % (test split, thresholds from validation)",
        title="localisation against classification",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2 if len(summary) > 8 else 1, loc="best")


REGION_COLOURS = {"part": "tab:red", "body": "tab:blue", "background": "tab:gray"}


def _plot_region_ratios(axis: plt.Axes, summary: pd.DataFrame) -> None:
    positions = np.arange(len(summary))
    width = 0.8 / len(REGION_COLOURS)
    for offset, (region, colour) in enumerate(REGION_COLOURS.items()):
        axis.bar(
            positions + (offset - 1) * width,
            summary[f"{region}_ratio_mean"],
            width,
            yerr=summary[f"{region}_ratio_std"].fillna(0),
            capsize=2,
            color=colour,
            label=region,
        )
    axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="no preference")
    axis.set_xticks(positions, summary.index, rotation=45, ha="right", fontsize=8)
    axis.set_xlim(-0.6, len(summary) - 0.4)
    axis.set(
        ylabel="CAM mass share / area share",
        title="where the CAM mass lies (part far above body: the discriminative region problem)",
    )
    axis.title.set_fontsize(9)
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)


# --------------------------------------------------------------------------- the gallery


@dataclass(frozen=True)
class GallerySamples:
    """The test images every gallery row shows: model inputs, displayable pictures, annotations."""

    indices: list[int]
    images: torch.Tensor  # (n, 3, H, W), normalised as the models expect
    labels: np.ndarray  # (n,)
    class_names: list[str]
    boxes: np.ndarray | None  # (n, 4) x0, y0, x1, y1, or None without boxes
    masks: np.ndarray | None  # (n, H, W) 0 background, 1 body, 2 part, or None without masks

    @property
    def pictures(self) -> np.ndarray:
        return denormalise(self.images).permute(0, 2, 3, 1).numpy()


def gallery_methods() -> list[str]:
    """Every registered CAM method, the gradient-free ones last and ScoreCAM (the slow one) at the end."""

    def order(name: str) -> tuple[bool, bool]:
        spec = CAM_METHODS.get(name)
        return spec.masked_forward_per_channel, not spec.uses_gradients

    return sorted(CAM_METHODS.names(), key=order)


def load_gallery_runs(runs_dir: str | Path, configurations: Sequence[str], seed: int) -> dict[str, RunResult]:
    """The finished run of `seed` for each configuration, models loaded (nothing is trained)."""
    return {name: load_run(run_folder(runs_dir, name, seed).path) for name in configurations}


def gallery_samples(results: Mapping[str, RunResult], count: int) -> GallerySamples:
    """`count` test images, one per class first (then a second per class, ...): the same for every row.

    All configurations must share the test split and image size, or the rows would show different images.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"gallery_images must be a positive integer; got {count!r}")
    first = next(iter(results.values()))
    for name, result in results.items():
        if result.splits.test != first.splits.test or result.config.image_size != first.config.image_size:
            raise ValueError(
                f"configuration {name!r} has a different test split or image size than the first one; "
                "the gallery needs the same test images in every row"
            )
    dataset = build_eval_dataset(first.config, first.splits.test)
    labels = dataset.labels.tolist()
    per_class = math.ceil(count / len(set(labels)))
    chosen = sample_indices(labels, per_class)
    rank = {
        index: sum(labels[other] == labels[index] for other in chosen[:position])
        for position, index in enumerate(chosen)
    }
    indices = sorted(chosen, key=lambda index: (rank[index], labels[index]))[:count]
    samples = [dataset[i] for i in indices]
    return GallerySamples(
        indices=indices,
        images=torch.stack([s["image"] for s in samples]),
        labels=np.array([s["label"] for s in samples]),
        class_names=list(first.splits.class_names),
        boxes=np.stack([s["box"].numpy() for s in samples]) if "box" in samples[0] else None,
        masks=np.stack([s["mask"][0].numpy() for s in samples]) if "mask" in samples[0] else None,
    )


def gallery_cams(
    results: Mapping[str, RunResult],
    samples: GallerySamples,
    methods: Sequence[str] | None = None,
    scorecam_images: int = 1,
) -> dict[str, dict[str, np.ndarray]]:
    """configuration -> method -> CAMs (k, H, W) of the ground-truth class, as WSOL evaluation explains.

    Every method sees all gallery images except ScoreCAM (one masked forward pass per channel of the
    CAM layer, hundreds per image), which sees only the first `scorecam_images`.
    """
    methods = gallery_methods() if methods is None else list(methods)
    for method in methods:
        CAM_METHODS.get(method, "method")
    if not isinstance(scorecam_images, int) or not 0 <= scorecam_images <= len(samples.indices):
        raise ValueError(
            f"scorecam_images must be an integer in [0, {len(samples.indices)}] (the gallery images); "
            f"got {scorecam_images!r}"
        )
    cams: dict[str, dict[str, np.ndarray]] = {}
    for name, result in results.items():
        cams[name] = {}
        for method in methods:
            count = (
                scorecam_images
                if CAM_METHODS.get(method).masked_forward_per_channel
                else len(samples.indices)
            )
            if count:
                cams[name][method] = compute_cams(
                    result.model, samples.images[:count], samples.labels[:count], method=method
                )
    return cams


def gallery_predictions(results: Mapping[str, RunResult], samples: GallerySamples) -> dict[str, np.ndarray]:
    """configuration -> predicted class of every gallery image."""
    predictions = {}
    for name, result in results.items():
        with borrowed_for_evaluation(result.model) as model:
            predictions[name] = predict_classes(model, samples.images).numpy()
    return predictions


GALLERY_PANEL_INCHES = 1.0
CAM_OPACITY = 0.5


def plot_image_gallery(
    samples: GallerySamples,
    position: int,
    cams: Mapping[str, Mapping[str, np.ndarray]],
    predictions: Mapping[str, np.ndarray],
) -> plt.Figure:
    """One gallery image: rows = configurations, columns = the input, then every CAM method computed
    for this image. Ground-truth box in green on every panel; on the input, the synthetic object's
    distinctive part outlined in magenta and the row model's prediction (green: right, red: wrong).

    The layout is fixed in inches rather than left to tight_layout, which is slow on a hundred panels.
    """
    if not 0 <= position < len(samples.indices):
        raise ValueError(f"position must be in [0, {len(samples.indices)}); got {position!r}")
    rows = list(cams)
    computed = list(dict.fromkeys(method for per_method in cams.values() for method in per_method))
    methods = [m for m in computed if all(m in cams[r] and len(cams[r][m]) > position for r in rows)]
    figure, axes = _gallery_grid(len(rows), len(methods) + 1, max(len(name) for name in rows))
    picture = samples.pictures[position]
    label = int(samples.labels[position])
    for row, name in enumerate(rows):
        _draw_input(axes[row, 0], picture, samples, position, int(predictions[name][position]))
        axes[row, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        for column, method in enumerate(methods, start=1):
            axes[row, column].imshow(overlay(picture, cams[name][method][position]))
    for column, title in enumerate(["input", *methods]):
        axes[0, column].set_title(title, fontsize=8)
    for axis in axes.ravel():
        if samples.boxes is not None:
            draw_box(axis, samples.boxes[position].tolist())
        axis.set_xticks([])
        axis.set_yticks([])
    skipped = [m for m in computed if m not in methods]
    note = f"; not computed for this image: {', '.join(skipped)}" if skipped else ""
    annotations = "green box: ground truth" if samples.boxes is not None else "no boxes in this dataset"
    figure.suptitle(
        f"test image {samples.indices[position]} (class {samples.class_names[label]}): "
        f"CAMs of the true class; {annotations}{note}",
        fontsize=8,
        y=1 - 0.1 / figure.get_figheight(),
        va="top",
    )
    return figure


def _gallery_grid(rows: int, columns: int, label_characters: int) -> tuple[plt.Figure, np.ndarray]:
    panel, gap, top, bottom = GALLERY_PANEL_INCHES, 0.06, 0.55, 0.08
    left = 0.2 + 0.055 * label_characters
    width = left + columns * panel + (columns - 1) * gap + 0.08
    height = top + rows * panel + (rows - 1) * gap + bottom
    figure, axes = plt.subplots(rows, columns, figsize=(width, height), squeeze=False)
    figure.subplots_adjust(
        left=left / width,
        right=1 - 0.08 / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=gap / panel,
        hspace=gap / panel,
    )
    return figure, axes


def _draw_input(
    axis: plt.Axes, picture: np.ndarray, samples: GallerySamples, position: int, guess: int
) -> None:
    axis.imshow(picture)
    if samples.masks is not None:
        axis.contour(samples.masks[position] == MASK_PART, levels=[0.5], colors="magenta", linewidths=0.8)
    axis.text(
        0.5,
        0.02,
        f"pred: {samples.class_names[guess]}",
        transform=axis.transAxes,
        ha="center",
        va="bottom",
        fontsize=5,
        color="white",
        bbox={
            "facecolor": "green" if guess == samples.labels[position] else "red",
            "alpha": 0.8,
            "pad": 1,
            "linewidth": 0,
        },
    )


def overlay(picture: np.ndarray, cam: np.ndarray, opacity: float = CAM_OPACITY) -> np.ndarray:
    """The picture (H, W, 3) in [0, 1] blended with the jet-coloured CAM (H, W) in [0, 1]."""
    colours = plt.cm.jet(np.clip(cam, 0, 1))[..., :3]
    return (1 - opacity) * picture + opacity * colours

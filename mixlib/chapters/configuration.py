"""Tables and figures of one configuration's chapter (`notebooks/train.ipynb`), over all its seeds."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mixlib.cams import compute_cams
from mixlib.chapters.scores import CLASSIFICATION, SCORES, label_in_header, localisation_scalars
from mixlib.chapters.shown_images import draw_box, sample_indices
from mixlib.config import RunConfig
from mixlib.data import AnnotatedImageDataset, denormalise
from mixlib.runs import RunResult

# the localisation rows of a configuration's chapter (the CAM chapter shows every score)
LOCALISATION_ROWS = (
    "max_box_acc_v2",
    "wsolevaluation_max_box_acc_v2",
    "top1_localisation",
    "pointing_game",
    "pxap",
    "part_ratio",
    "part_share",
    "deletion_auc",
    "insertion_auc",
)


# what each RunConfig field means, in the glossary's words (the table shows the field's name too: it is
# what `papermill -p` takes)
PARAMETER_WORDS = {
    "dataset": "dataset",
    "data_root": "dataset folder",
    "images_per_class": "training images per class",
    "val_per_class": "validation images per class",
    "test_per_class": "test images per class",
    "image_size": "image size (px)",
    "split_seed": "seed of the train/validation/test split",
    "crop_scale_min": "smallest random-crop area (share)",
    "color_jitter": "colour jitter strength",
    "short_classes": "a class with too few images",
    "model": "network",
    "small_input": "dilated last stages for small inputs",
    "min_feature_size": "smallest CAM grid (cells)",
    "method": "training method",
    "method_params": "method parameters",
    "mix_probability": "application probability",
    "label_smoothing": "label smoothing",
    "lambda_ent": "weight of the CAM entropy loss",
    "lambda_con": "weight of the CAM concentration loss",
    "lambda_eq": "weight of the equivariance loss (SEAM)",
    "seam_scale": "rescaling factor of SEAM",
    "cam_method": "CAM method of the scores",
    "epochs": "epochs",
    "batch_size": "batch size",
    "optimizer": "optimiser",
    "lr": "learning rate",
    "momentum": "momentum",
    "weight_decay": "weight decay",
    "warmup_epochs": "learning-rate warm-up epochs",
    "seed": "training seed(s)",
    "deterministic": "deterministic kernels",
    "amp": "mixed precision on the GPU",
    "amp_dtype": "mixed-precision type",
    "cpu_amp": "mixed precision on the CPU",
    "torch_compile": "torch.compile",
    "device": "device",
    "num_workers": "data-loading workers",
    "memory_budget_gib": "memory for in-memory data (GiB)",
}


def parameter_table(config: RunConfig, seeds: Sequence[int]) -> pd.DataFrame:
    """The configuration in words, with each value and the parameter's name for papermill (the seed row
    lists every seed of the chapter)."""
    values = {**config.to_dict(), "seed": ", ".join(str(s) for s in seeds)}
    table = pd.DataFrame(
        {
            "parameter": [PARAMETER_WORDS[name] for name in values],
            "value": [str(value) for value in values.values()],
            "papermill name": list(values),
        }
    )
    return label_in_header(table.set_index("parameter"))


def metrics_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per seed, one column per classification score."""
    rows = [{"seed": r.config.seed, **{k: r.metrics[k] for k in CLASSIFICATION}} for r in results]
    return pd.DataFrame(rows).set_index("seed")


def localisation_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per seed, one column per localisation score the runs have (none without boxes)."""
    rows = []
    for result in results:
        scalars = localisation_scalars(result.metrics.get("localisation", {}))
        shown = {k: scalars[k] for k in LOCALISATION_ROWS if k in scalars}
        rows.append({"seed": result.config.seed, **shown})
    return pd.DataFrame(rows).set_index("seed").dropna(axis=1, how="all")


def seed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame with one row per seed turned into one row per score, under the heading, unit and
    precision every chapter shows it with: a column per seed, then 'mean ± std' over seeds (narrow
    enough for the text column with the five seeds of a study)."""
    rows = {}
    for name in frame.columns:
        score = SCORES[name]
        values = frame[name]
        cells = {f"seed {seed}": score.text(value) for seed, value in values.items()}
        cells["mean ± std"] = score.mean_std(values.mean(), values.std(ddof=1))
        rows[score.heading] = cells
    return label_in_header(pd.DataFrame.from_dict(rows, orient="index").rename_axis("score"))


def plot_learning_curves(results: Sequence[RunResult]) -> plt.Figure:
    """Training loss and validation accuracy per epoch, one line per seed."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.4))
    for result in results:
        history = result.history
        label = f"seed {result.config.seed}"
        loss_axis.plot(history["epoch"], history["train_loss"], marker="o", label=f"{label} train")
        loss_axis.plot(history["epoch"], history["val_loss"], linestyle="--", label=f"{label} val")
        accuracy_axis.plot(history["epoch"], history["val_accuracy"], marker="o", label=label)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="loss (train: on mixed batches)")
    accuracy_axis.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy", ylim=(0, 1))
    loss_axis.legend(fontsize=7)
    accuracy_axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_confusion_matrix(results: Sequence[RunResult], class_names: Sequence[str]) -> plt.Figure:
    """Test confusion matrix summed over seeds, rows normalised to the true class."""
    counts = np.sum([np.asarray(r.metrics["confusion_matrix"]) for r in results], axis=0)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size * 0.85))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(class_names)), class_names, fontsize=8)
    axis.set(xlabel="predicted", ylabel="true", title=f"test confusion ({len(results)} seed(s) summed)")
    for (row, col), value in np.ndenumerate(counts):
        if value:
            axis.text(
                col,
                row,
                int(value),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if rates[row, col] > 0.5 else "black",
            )
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of true class")
    figure.tight_layout()
    return figure


def plot_cam_grid(
    result: RunResult, dataset: AnnotatedImageDataset, method: str = "gradcam", per_class: int = 1
) -> plt.Figure:
    """Test images (ground-truth box in green) above their CAM for the predicted class."""
    indices = sample_indices(dataset.labels.tolist(), per_class)
    samples = [dataset[i] for i in indices]
    images = torch.stack([s["image"] for s in samples])
    with torch.no_grad():
        predicted = result.model(images.to(next(result.model.parameters()).device)).argmax(1).cpu()
    cams = compute_cams(result.model, images, predicted, method=method)
    pictures = denormalise(images).permute(0, 2, 3, 1).numpy()
    names = result.splits.class_names
    figure, axes = plt.subplots(2, len(samples), figsize=(1.5 * len(samples), 3.4), squeeze=False)
    for column, (sample, picture, cam, guess) in enumerate(
        zip(samples, pictures, cams, predicted, strict=True)
    ):
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(picture)
        bottom.imshow(picture)
        bottom.imshow(cam, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        colour = "green" if int(guess) == sample["label"] else "red"
        top.set_title(f"{names[sample['label']][:14]}", fontsize=7)
        bottom.set_title(f"pred: {names[int(guess)][:12]}", fontsize=7, color=colour)
        if "box" in sample:
            for axis in (top, bottom):
                draw_box(axis, sample["box"].tolist())
        for axis in (top, bottom):
            axis.axis("off")
    figure.suptitle(
        f"{method} for the predicted class (seed {result.config.seed}); green box: ground truth", fontsize=9
    )
    figure.tight_layout()
    return figure

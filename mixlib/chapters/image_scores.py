"""Scores recomputed from each run's per-image test predictions on resamples of the test images.

The test-sample part of every interval (`mixlib.chapters.statistics`) needs each run's score on the same
resamples of the test images. A resample is a row of multinomial counts (how often each image is
drawn), so a score is a function of the per-image predictions (`predictions.csv`, see
`mixlib.runs.folder`) and a (B, N) matrix of counts; the row of ones gives the score on the test split
itself, equal to what `metrics.json` holds (the tests check it against torchmetrics).

Each score is written here in its weighted form because torchmetrics and scikit-learn take one sample
at a time: 1000 resamples x 34 runs of confusion matrices is one matrix product here, minutes there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mixlib.chapters.statistics import FixedReference, Resampled, compare_with_reference
from mixlib.evaluation import BOX_HIT
from mixlib.metrics import ECE_BINS
from mixlib.runs import RunFolder

RESAMPLES = 1000
RESAMPLE_SEED = 0  # the same resamples for every chapter, so the book's pages agree


def resample_counts(images: int, resamples: int = RESAMPLES, seed: int = RESAMPLE_SEED) -> np.ndarray:
    """(resamples, images) multinomial counts: each row draws `images` test images with replacement."""
    generator = np.random.default_rng(seed)
    return generator.multinomial(images, np.full(images, 1 / images), size=resamples).astype(float)


def weighted_mean(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of per-image values on each resample; images without a value (NaN) are left out."""
    known = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts @ np.where(known, values, 0.0) / (counts @ known)


def accuracy(predictions: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    return weighted_mean(counts, (predictions["label"] == predictions["predicted"]).to_numpy(float))


def ece(predictions: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    """L1 expected calibration error with torchmetrics' 15 equal-width confidence bins: the sum over
    bins of |sum of (confidence - correct)| over the weighted total."""
    confidence = predictions["confidence"].to_numpy(float)
    correct = (predictions["label"] == predictions["predicted"]).to_numpy(float)
    edges = np.linspace(0, 1, ECE_BINS + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, ECE_BINS - 1)
    gap = np.zeros((len(confidence), ECE_BINS))
    gap[np.arange(len(confidence)), bins] = confidence - correct
    return np.abs(counts @ gap).sum(axis=1) / counts.sum(axis=1)


def confusion(predictions: pd.DataFrame, counts: np.ndarray, classes: int) -> np.ndarray:
    """(B, classes, classes) weighted confusion matrices, true class by row."""
    pair = predictions["label"].to_numpy() * classes + predictions["predicted"].to_numpy()
    one_hot = np.zeros((len(pair), classes * classes))
    one_hot[np.arange(len(pair)), pair] = 1.0
    return (counts @ one_hot).reshape(len(counts), classes, classes)


def macro_average(per_class: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The mean over the classes that occur (as a true or predicted class), as torchmetrics averages."""
    return (per_class * present).sum(axis=1) / present.sum(axis=1)


def class_counts(predictions: pd.DataFrame, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """True positives, false positives, false negatives, true negatives and presence, per class."""
    classes = len([c for c in predictions.columns if c.startswith("logit_")])
    matrix = confusion(predictions, counts, classes)
    true_positive = np.diagonal(matrix, axis1=1, axis2=2)
    false_positive = matrix.sum(axis=1) - true_positive
    false_negative = matrix.sum(axis=2) - true_positive
    true_negative = counts.sum(axis=1, keepdims=True) - true_positive - false_positive - false_negative
    present = (true_positive + false_positive + false_negative) > 0
    return true_positive, false_positive, false_negative, true_negative, present


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def macro_precision(predictions: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    tp, fp, _, _, present = class_counts(predictions, counts)
    return macro_average(ratio(tp, tp + fp), present)


def macro_recall(predictions: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    tp, _, fn, _, present = class_counts(predictions, counts)
    return macro_average(ratio(tp, tp + fn), present)


def macro_f1(predictions: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    tp, fp, fn, _, present = class_counts(predictions, counts)
    return macro_average(ratio(2 * tp, 2 * tp + fp + fn), present)


def macro_fpr(predictions: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    tp, fp, fn, tn, present = class_counts(predictions, counts)
    return macro_average(ratio(fp, fp + tn), present)


def max_box_acc_v2(predictions: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    """MaxBoxAccV2 (%) at the validation-fitted thresholds: the mean over IoU thresholds of box hits."""
    hits = predictions[[c for c in predictions.columns if c.startswith(BOX_HIT)]].to_numpy(float)
    return 100.0 * weighted_mean(counts, hits.mean(axis=1))


def column_mean(column: str) -> Callable[[pd.DataFrame, np.ndarray], np.ndarray]:
    return lambda predictions, counts: weighted_mean(counts, predictions[column].to_numpy(float))


@dataclass(frozen=True)
class ImageScore:
    """A score with a per-image form: how to compute it on resamples, the per-image columns it needs,
    and its range (one test image moves it by at most range / N: the variance floor of a comparison)."""

    compute: Callable[[pd.DataFrame, np.ndarray], np.ndarray]
    needs: str  # a column (or column prefix) the predictions must have
    range: float


IMAGE_SCORES = {
    "accuracy": ImageScore(accuracy, "predicted", 1.0),
    "ece": ImageScore(ece, "confidence", 1.0),
    "macro_precision": ImageScore(macro_precision, "predicted", 1.0),
    "macro_recall": ImageScore(macro_recall, "predicted", 1.0),
    "macro_f1": ImageScore(macro_f1, "predicted", 1.0),
    "macro_fpr": ImageScore(macro_fpr, "predicted", 1.0),
    "max_box_acc_v2": ImageScore(max_box_acc_v2, BOX_HIT, 100.0),
    "part_ratio": ImageScore(column_mean("part_ratio"), "part_ratio", 0.0),
    "body_ratio": ImageScore(column_mean("body_ratio"), "body_ratio", 0.0),
}


# --------------------------------------------------------------------------- the runs of a report


@dataclass(frozen=True)
class TestSample:
    """Every run's per-image predictions on the shared test split, and the resamples drawn from it."""

    predictions: dict[tuple[str, int], pd.DataFrame]
    counts: np.ndarray

    @property
    def images(self) -> int:
        return self.counts.shape[1]

    def has(self, metric: str) -> bool:
        score = IMAGE_SCORES.get(metric)
        return score is not None and all(
            any(column.startswith(score.needs) for column in frame.columns)
            for frame in self.predictions.values()
        )

    def resampled(self, metric: str) -> Resampled:
        compute = IMAGE_SCORES[metric].compute
        return {run: compute(frame, self.counts) for run, frame in self.predictions.items()}

    def floor(self, metric: str) -> float:
        return (IMAGE_SCORES[metric].range / self.images) ** 2


def load_test_sample(runs: pd.DataFrame, resamples: int = RESAMPLES) -> TestSample | None:
    """The predictions of every run in `runs` (one row per configuration and seed, with `run_dir`);
    None when some run has none. Raises ValueError when two runs were tested on different images: the
    pairing by image would be wrong."""
    if "run_dir" not in runs:
        return None
    predictions = {}
    for _, row in runs.iterrows():
        folder = RunFolder(Path(row["run_dir"]))
        if not folder.predictions_file.is_file():
            return None
        predictions[(row["configuration"], int(row["seed"]))] = folder.read_predictions()
    labels = [frame["label"].to_numpy() for frame in predictions.values()]
    if any(len(other) != len(labels[0]) or (other != labels[0]).any() for other in labels[1:]):
        raise ValueError("the runs were tested on different images; rerun the report so they share one split")
    return TestSample(predictions, resample_counts(len(labels[0]), resamples))


def compare_runs(
    runs: pd.DataFrame,
    metric: str,
    reference: str | FixedReference,
    direction: str | None,
    sample: TestSample | None,
    log_scale: bool = False,
) -> pd.DataFrame:
    """`compare_with_reference` with the test-sample part wherever the metric has a per-image form and
    the runs have predictions (else seed noise only)."""
    if sample is None or not sample.has(metric):
        return compare_with_reference(runs, metric, reference, direction, log_scale=log_scale)
    return compare_with_reference(
        runs,
        metric,
        reference,
        direction,
        resampled=sample.resampled(metric),
        images=sample.images,
        floor=sample.floor(metric),
        log_scale=log_scale,
    )


def describe_sources(sample: TestSample | None, metrics: Sequence[str]) -> str:
    """Which of `metrics` carry test-sample noise in their intervals, for a chapter's note."""
    if sample is None:
        return "Intervals count seed noise only: these runs have no per-image predictions."
    without = [m for m in metrics if not sample.has(m)]
    return (
        f"Intervals count seed noise and test-sample noise ({sample.images} test images, "
        f"{len(sample.counts)} resamples)"
        + (f"; seed noise only for {', '.join(without)}." if without else ".")
    )

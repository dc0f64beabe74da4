"""Test-split metrics from torchmetrics: accuracy, macro precision/recall/F1, FPR, confusion, ECE."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
    multiclass_specificity,
)

ECE_BINS = 15  # the usual choice since Guo et al. 2017


def classification_metrics(logits: Tensor, labels: Tensor, num_classes: int) -> dict:
    """Scalar metrics (fractions in [0, 1]) plus the confusion matrix as nested lists.

    The false-positive rate is one-vs-rest per class, macro-averaged: 1 - specificity.
    """
    probs = logits.float().softmax(dim=1)
    common = {"num_classes": num_classes}
    scalars = {
        "accuracy": multiclass_accuracy(probs, labels, average="micro", **common),
        "macro_precision": multiclass_precision(probs, labels, average="macro", **common),
        "macro_recall": multiclass_recall(probs, labels, average="macro", **common),
        "macro_f1": multiclass_f1_score(probs, labels, average="macro", **common),
        "macro_fpr": 1 - multiclass_specificity(probs, labels, average="macro", **common),
        "ece": multiclass_calibration_error(probs, labels, n_bins=ECE_BINS, norm="l1", **common),
        "nll": torch.nn.functional.cross_entropy(logits.float(), labels),
    }
    metrics: dict = {name: float(value) for name, value in scalars.items()}
    metrics["confusion_matrix"] = multiclass_confusion_matrix(probs, labels, **common).tolist()
    metrics["num_samples"] = int(len(labels))
    return metrics

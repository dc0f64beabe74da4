"""The evaluation stage of a run: read the trained checkpoint, score it on the test split, and write
predictions.csv and then metrics.json.

Evaluation reads the checkpoint and never writes it, and it always starts from the checkpoint (also
right after training), so a run re-evaluated after an edit of the evaluation code scores exactly the
model it scored before. What this module imports is the code a run's evaluation key hashes
(`mixlib.runs.keys`), so it imports nothing of training but what reading a checkpoint needs.
"""

from __future__ import annotations

import pandas as pd
import torch

from mixlib.config import RunConfig
from mixlib.evaluation import localisation_scores
from mixlib.metrics import classification_metrics
from mixlib.run_data import build_eval_dataset, load_config_splits
from mixlib.runs.folder import RunFolder
from mixlib.runs.load import model_from_checkpoint
from mixlib.training import eval_loader, predict, select_device, set_deterministic


def evaluate_checkpoint(config: RunConfig, folder: RunFolder, training: dict, fingerprint: str) -> dict:
    """Score the checkpoint of `folder` (trained as `training`, its training record says) and write its
    records under `fingerprint`, the run's evaluation key: predictions.csv, then metrics.json, whose
    presence marks the run finished. Returns the metrics."""
    set_deterministic(config.deterministic)
    folder.write_config(config)  # its evaluation-only fields are this evaluation's
    device = select_device(config.device)
    splits = load_config_splits(config)
    model = model_from_checkpoint(config, folder, len(splits.classes)).to(device)
    val_set, test_set = build_eval_dataset(config, splits.val), build_eval_dataset(config, splits.test)
    logits, labels = predict(model, eval_loader(test_set, training["batch_size"], config, device), device)
    metrics = classification_metrics(logits, labels, len(splits.classes))
    metrics["localisation"], localisation = localisation_scores(model, val_set, test_set, config.cam_method)
    skipped = [*training["skipped_files"], *test_set.skipped]
    metrics = {
        **training,
        **metrics,
        "skipped_files": skipped,
        "corrupt_images_skipped": len(skipped),
        "evaluation_fingerprint": fingerprint,
    }
    folder.write_predictions(pd.concat([test_predictions(logits, labels), localisation], axis=1))
    folder.write_metrics(metrics)
    return metrics


def test_predictions(logits: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """One row per test image: true class, predicted class, its softmax confidence and the logits."""
    logits = logits.float()
    confidence, predicted = logits.softmax(dim=1).max(dim=1)
    frame = pd.DataFrame(
        {"label": labels.numpy(), "predicted": predicted.numpy(), "confidence": confidence.numpy()}
    )
    logit_columns = pd.DataFrame(logits.numpy(), columns=[f"logit_{k}" for k in range(logits.shape[1])])
    return pd.concat([frame, logit_columns], axis=1)

"""Localisation and faithfulness scores of a trained model, for every run on annotated data.

The CAM threshold is fitted on the validation split (annotated images drawn from the training folder)
and then applied to the test split, so no choice is made on test data (Choe et al. 2020's protocol):
`max_box_acc_v2`. Next to it, `wsolevaluation_max_box_acc_v2` is the same CAMs' score computed exactly
as clovaai/wsolevaluation does (best threshold on the test maps themselves, its box convention), the
scale of published tables; it is reported, never used for a choice.

Faithfulness (deletion/insertion) runs on a seeded, class-stratified sample of the test split, the
same images for every run of a profile: the split is sorted by class, so its first images would
score one or two classes only.

Next to the scores, each function returns their per-image form (a frame with one row per test image,
in the split's order): whether the CAM box reaches each IoU threshold at the fitted CAM threshold, and
the part and body ratios where masks exist. The report resamples test images from them
(`mixlib.chapters.statistics`), so its intervals carry test-sample noise as well as seed noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mixlib.cams import (
    box_hits_at,
    boxes_to_masks,
    centre_gaussian_maps,
    compute_cams,
    deletion_auc,
    fit_cam_threshold,
    insertion_auc,
    part_coverage,
    pixel_average_precision,
    pointing_game,
    region_shares,
    top1_localisation,
    wsolevaluation_box_accuracy,
)
from mixlib.data import AnnotatedImageDataset
from mixlib.data.splits import stratified_indices
from mixlib.model_state import evaluation_mode

FAITHFULNESS_STEPS = 10  # deletion/insertion curves in 10 steps: coarse, but far cheaper than RISE's rows
FAITHFULNESS_SEED = 0  # the same sample of test images for every run on the same test split
BOX_HIT = "box_hit_"  # per-image column prefix: box_hit_0.3, box_hit_0.5, box_hit_0.7


def stack(dataset: AnnotatedImageDataset) -> dict[str, Tensor]:
    """All samples of an evaluation dataset as tensors (images, labels, and boxes/masks if present)."""
    samples = [dataset[i] for i in range(len(dataset))]
    stacked = {
        "image": torch.stack([s["image"] for s in samples]),
        "label": torch.tensor([s["label"] for s in samples]),
    }
    for key in ("box", "mask"):
        if samples and key in samples[0]:
            stacked[key] = torch.stack([s[key] for s in samples])
    return stacked


@torch.no_grad()
def predict_classes(model: nn.Module, images: Tensor, batch_size: int = 128) -> Tensor:
    device = next(model.parameters()).device
    return torch.cat(
        [
            model(images[i : i + batch_size].to(device)).argmax(1).cpu()
            for i in range(0, len(images), batch_size)
        ]
    )


def localisation_scores(
    model: nn.Module,
    val_set: AnnotatedImageDataset,
    test_set: AnnotatedImageDataset,
    cam_method: str = "gradcam",
    faithfulness_images: int = 32,
) -> tuple[dict, pd.DataFrame]:
    """MaxBoxAccV2 at validation-fitted thresholds and on wsolevaluation's scale, top-1 localisation,
    pointing game, PxAP and part coverage (where masks exist), and deletion/insertion AUC on
    `faithfulness_images` test images (a seeded class-stratified sample). Percentages are in [0, 100].

    CAMs explain the ground-truth class, as in WSOL evaluation; top-1 localisation additionally needs
    the prediction to be right. Returns the scores and their per-image form; ({}, an empty frame) for
    data without boxes.
    """
    val, test = stack(val_set), stack(test_set)
    if "box" not in val or "box" not in test:
        return {}, pd.DataFrame(index=range(len(test_set)))
    with evaluation_mode(model):
        val_cams = compute_cams(model, val["image"], val["label"], method=cam_method)
        thresholds = fit_cam_threshold(val_cams, test_boxes(val))
        test_cams = compute_cams(model, test["image"], test["label"], method=cam_method)
        predicted = predict_classes(model, test["image"])
        height, width = test_cams.shape[1:]
        object_masks = (
            (test["mask"][:, 0] > 0).numpy()
            if "mask" in test
            else boxes_to_masks(test_boxes(test), height, width)
        )
        scores, per_image = box_scores(test_cams, test_boxes(test), thresholds)
        scores = {
            "cam_method": cam_method,
            "cam_thresholds": {f"{delta:.1f}": tau for delta, tau in thresholds.items()},
            **scores,
            **wsolevaluation_scores(test_cams, test_boxes(test)),
            "top1_localisation": top1_localisation(
                test_cams, test_boxes(test), predicted.numpy(), test["label"].numpy(), thresholds[0.5]
            ),
            "pointing_game": pointing_game(test_cams, object_masks),
        }
        if "mask" in test:
            part_masks = test["mask"][:, 0].numpy()
            scores["pxap"] = pixel_average_precision(test_cams, object_masks)
            scores["part_coverage"] = part_coverage(test_cams, part_masks)
            shares = region_shares(test_cams, part_masks)
            per_image["part_ratio"], per_image["body_ratio"] = shares["part_ratio"], shares["body_ratio"]
        sample = torch.from_numpy(
            stratified_indices(test["label"].numpy(), faithfulness_images, FAITHFULNESS_SEED)
        )
        scores.update(faithfulness(model, test["image"][sample], predicted[sample], cam_method))
    return scores, per_image


def centre_baseline_scores(
    val_set: AnnotatedImageDataset, test_set: AnnotatedImageDataset
) -> tuple[dict, pd.DataFrame]:
    """MaxBoxAccV2 of the centre-Gaussian map (no model) under the protocol of `localisation_scores`,
    and its per-image form.

    The threshold is fitted on the validation split and applied to the test split, exactly as for a
    CAM, so the two scores are comparable; the wsolevaluation-scale score is there too. Returns
    ({}, an empty frame) for data without boxes.
    """
    val, test = stack(val_set), stack(test_set)
    if "box" not in val or "box" not in test:
        return {}, pd.DataFrame(index=range(len(test_set)))
    height, width = test["image"].shape[-2:]
    thresholds = fit_cam_threshold(centre_gaussian_maps(len(val["box"]), height, width), test_boxes(val))
    test_maps = centre_gaussian_maps(len(test["box"]), height, width)
    scores, per_image = box_scores(test_maps, test_boxes(test), thresholds)
    return {**scores, **wsolevaluation_scores(test_maps, test_boxes(test))}, per_image


def box_scores(
    maps: np.ndarray, boxes: np.ndarray, thresholds: dict[float, float]
) -> tuple[dict, pd.DataFrame]:
    """Box accuracy per IoU threshold at the fitted CAM thresholds and their mean, MaxBoxAccV2; and
    per image the hits behind them (columns `box_hit_<IoU threshold>`, 0 or 1)."""
    hits = box_hits_at(maps, boxes, thresholds)
    box_accuracy = {delta: 100.0 * float(hit.mean()) for delta, hit in hits.items()}
    per_image = pd.DataFrame({f"{BOX_HIT}{delta:.1f}": hit.astype(np.int8) for delta, hit in hits.items()})
    scores = {
        "box_accuracy": {f"{delta:.1f}": value for delta, value in box_accuracy.items()},
        "max_box_acc_v2": float(np.mean(list(box_accuracy.values()))),
    }
    return scores, per_image


def wsolevaluation_scores(maps: np.ndarray, boxes: np.ndarray) -> dict:
    """Box accuracy per IoU threshold and MaxBoxAccV2 as clovaai/wsolevaluation computes them."""
    result = wsolevaluation_box_accuracy(maps, boxes)
    return {
        "wsolevaluation_box_accuracy": {f"{delta:.1f}": value for delta, value in result.max_box_acc.items()},
        "wsolevaluation_max_box_acc_v2": result.max_box_acc_v2,
    }


def test_boxes(stacked: dict[str, Tensor]) -> np.ndarray:
    """(N, 1, 4): one ground-truth box per image, in the layout the box metrics take."""
    return stacked["box"].numpy()[:, None, :]


def faithfulness(model: nn.Module, images: Tensor, predicted: Tensor, cam_method: str) -> dict:
    """Mean deletion AUC (lower is better) and insertion AUC (higher is better) of the predicted class."""
    cams = compute_cams(model, images, predicted, method=cam_method)
    height, width = images.shape[-2:]
    options = {"targets": predicted, "step": max(1, height * width // FAITHFULNESS_STEPS)}
    return {
        "deletion_auc": float(deletion_auc(model, images, cams, **options).mean()),
        "insertion_auc": float(insertion_auc(model, images, cams, **options).mean()),
    }

"""Class activation maps: batched grad-cam CAMs, a differentiable CAM, CAM-aware losses, and
localisation and faithfulness scores. Functions are composable; the report wires them together."""

from mixlib.cams.compute import CAM_METHODS, CamMethod, compute_cams
from mixlib.cams.differentiable import class_activation_maps, linear_head, upsample_cams
from mixlib.cams.faithfulness import area_under_curve, causal_curves, deletion_auc, insertion_auc
from mixlib.cams.localisation import (
    IOU_THRESHOLDS,
    BoxAccuracy,
    box_accuracy_at,
    box_hits_at,
    boxes_to_masks,
    centre_gaussian_maps,
    fit_cam_threshold,
    max_box_accuracy,
    normalise_cams,
    part_coverage,
    pixel_average_precision,
    pointing_game,
    region_shares,
    top1_localisation,
    wsolevaluation_box_accuracy,
)
from mixlib.cams.losses import (
    MixupCamConcentration,
    MixupCamEntropy,
    SeamEquivariance,
    class_entropy,
    create_loss_terms,
    spatial_concentration,
)

__all__ = [
    "CAM_METHODS",
    "IOU_THRESHOLDS",
    "BoxAccuracy",
    "CamMethod",
    "MixupCamConcentration",
    "MixupCamEntropy",
    "SeamEquivariance",
    "area_under_curve",
    "box_accuracy_at",
    "box_hits_at",
    "boxes_to_masks",
    "centre_gaussian_maps",
    "causal_curves",
    "class_activation_maps",
    "class_entropy",
    "compute_cams",
    "create_loss_terms",
    "deletion_auc",
    "fit_cam_threshold",
    "insertion_auc",
    "linear_head",
    "max_box_accuracy",
    "normalise_cams",
    "part_coverage",
    "pixel_average_precision",
    "pointing_game",
    "region_shares",
    "spatial_concentration",
    "top1_localisation",
    "upsample_cams",
    "wsolevaluation_box_accuracy",
]

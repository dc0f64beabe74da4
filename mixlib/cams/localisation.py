"""How well CAMs localise objects: MaxBoxAccV2, top-1 localisation, pointing game, PxAP and the
part-versus-whole coverage of the embedded synthetic set.

Conventions shared by every function here:

- `cams` is (N, H, W), any range; each map is min-max normalised first, a constant (or NaN) map
  becoming all zeros (wsolevaluation `inference.py` `normalize_scoremap`).
- boxes are (x0, y0, x1, y1) in pixels of the CAM's image with x1/y1 exclusive (the project's
  dataset convention); `gt_boxes` is (N, 4), (N, M, 4) or a list of (M_i, 4) arrays (several boxes).
- masks are (N, H, W) integers, 0 background and > 0 object (the synthetic set: 1 body, 2 part).
- accuracy-like scores are percentages (as wsolevaluation and the published tables report them);
  average precision and mass/area shares are fractions in [0, 1].

MaxBoxAccV2 follows clovaai/wsolevaluation `evaluation.py` (Choe et al. 2020): maps quantised to
uint8, a pixel is foreground when its value is *above* `int(tau * max)`, boxes around all contours
(`cv2.findContours`, RETR_TREE), a hit when any box reaches IoU >= delta with any GT box, accuracy
maximised over tau for each delta in {0.3, 0.5, 0.7}, V2 the mean over deltas. Two box conventions:

- `EXCLUSIVE_CORNERS` (the default, this project's): IoU with exclusive corners, no clipping, and a
  map with no foreground gets no box; used with tau fitted on validation (`fit_cam_threshold`).
- `WSOLEVALUATION` (the published scale): the original's own arithmetic, which adds 1 to widths and
  heights in the IoU (as for inclusive corners, while its boxes from `boundingRect` are exclusive),
  clips box ends to W - 1 and H - 1, and scores a map with no foreground as the box (0, 0, 0, 0).
  `wsolevaluation_box_accuracy` pairs it with the original's sweep, step 0.001, and its maximum over
  tau on the scored split itself: the number published tables report.

The sweep's default step here is 0.01 (0.001 in the original; `step` changes it).

The threshold sweep is the original's loop over thresholds and images, made cheaper by one
observation: thresholded masks are nested, so two thresholds that leave the same number of
foreground pixels give the same mask and the same boxes. Contours are traced once per distinct
mask (`_best_iou_per_threshold`), which for 8x8 CAMs upsampled to 64x64 and 100 thresholds skips
most calls; hand-written because no library offers box accuracy over a threshold sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from sklearn.metrics import average_precision_score

CAM_THRESHOLD_STEP = 0.01  # wsolevaluation: cam_curve_interval = 0.001
WSOLEVALUATION_STEP = 0.001  # wsolevaluation `evaluate_wsol(cam_curve_interval=.001)`
IOU_THRESHOLDS = (0.3, 0.5, 0.7)  # wsolevaluation: --iou_threshold_list 30 50 70
TOP1_IOU_THRESHOLD = 0.5
POINTING_TOLERANCE = 15.0  # TorchRay PointingGame: tolerance=15 pixels
POINTING_REFERENCE_SIZE = 224  # image side the 15 pixels refer to (see pointing_game)

BoxesLike = np.ndarray | Sequence[np.ndarray]


# --------------------------------------------------------------------------- inputs


def normalise_cams(cams: np.ndarray) -> np.ndarray:
    """Per-map min-max to [0, 1]; constant or NaN-containing maps become zeros (wsolevaluation)."""
    cams = _as_maps(cams, "cams").astype(np.float32)
    flat = cams.reshape(len(cams), -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    valid = np.isfinite(flat).all(axis=1) & (high > low)
    span = np.where(valid, high - low, 1.0)[:, None, None]
    normalised = (cams - np.where(valid, low, 0.0)[:, None, None]) / span
    return np.where(valid[:, None, None], normalised, 0.0).astype(np.float32)


def cam_thresholds(step: float = CAM_THRESHOLD_STEP) -> np.ndarray:
    """The swept CAM thresholds [0, step, 2 step, ...) below 1, as in wsolevaluation."""
    if not (isinstance(step, (int, float)) and 0 < step < 1):
        raise ValueError(f"step must be a number in (0, 1); got {step!r}")
    return np.arange(0.0, 1.0, step)


def _as_maps(array, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, H, W) array; got shape {array.shape}")
    return array


def _as_box_lists(gt_boxes: BoxesLike, count: int) -> list[np.ndarray]:
    if isinstance(gt_boxes, np.ndarray) and gt_boxes.ndim == 2:
        gt_boxes = gt_boxes[:, None, :]
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in gt_boxes]
    if len(boxes) != count:
        raise ValueError(f"gt_boxes must hold boxes for each of the {count} CAMs; got {len(boxes)}")
    for image_boxes in boxes:
        if (
            len(image_boxes) == 0
            or (image_boxes[:, 2] < image_boxes[:, 0]).any()
            or (image_boxes[:, 3] < image_boxes[:, 1]).any()
        ):
            raise ValueError(
                f"each image needs >= 1 box (x0, y0, x1, y1) with x1 >= x0, y1 >= y0; got {image_boxes}"
            )
    return boxes


def _as_masks(masks, cams: np.ndarray) -> np.ndarray:
    masks = _as_maps(masks, "masks")
    if masks.shape != cams.shape:
        raise ValueError(f"masks must have the CAMs' shape {cams.shape}; got {masks.shape}")
    return masks


# --------------------------------------------------------------------------- boxes


@dataclass(frozen=True)
class BoxConvention:
    """How CAM boxes are drawn and compared with ground-truth boxes (see the module docstring)."""

    size_offset: int  # added to every width and height in the IoU: 0, or 1 as in wsolevaluation
    clip_to_last_pixel: bool  # box ends clipped to W - 1 and H - 1, as wsolevaluation does
    empty_box: tuple[float, ...] | None  # the box of a map without foreground; None: no box, IoU 0


EXCLUSIVE_CORNERS = BoxConvention(size_offset=0, clip_to_last_pixel=False, empty_box=None)
WSOLEVALUATION = BoxConvention(size_offset=1, clip_to_last_pixel=True, empty_box=(0.0, 0.0, 0.0, 0.0))


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray, size_offset: int = 0) -> np.ndarray:
    """IoU of every box in (n, 4) with every box in (m, 4) -> (n, m); exclusive corners by default,
    `size_offset=1` for wsolevaluation's `calculate_multiple_iou` (degenerate unions give 0 in both)."""
    a, b = boxes_a[:, None, :], boxes_b[None, :, :]
    width = np.clip(
        np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + size_offset, 0, None
    )
    height = np.clip(
        np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + size_offset, 0, None
    )
    intersection = width * height
    area_a = (a[..., 2] - a[..., 0] + size_offset) * (a[..., 3] - a[..., 1] + size_offset)
    area_b = (b[..., 2] - b[..., 0] + size_offset) * (b[..., 3] - b[..., 1] + size_offset)
    union = area_a + area_b - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)


def boxes_from_mask(foreground: np.ndarray) -> np.ndarray:
    """Bounding boxes (exclusive corners) of all contours of a uint8 0/255 mask -> (n, 4)."""
    contours = cv2.findContours(foreground, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    rects = np.array([cv2.boundingRect(contour) for contour in contours], dtype=np.float64).reshape(-1, 4)
    rects[:, 2:] += rects[:, :2]
    return rects


def _best_iou_per_threshold(
    cams: np.ndarray,
    gt_boxes: list[np.ndarray],
    thresholds: np.ndarray,
    convention: BoxConvention = EXCLUSIVE_CORNERS,
) -> np.ndarray:
    """(N, T): for each image and CAM threshold, the best IoU of any CAM box with any GT box."""
    scoremaps = (normalise_cams(cams) * 255).astype(np.uint8)
    best = np.zeros((len(cams), len(thresholds)))
    for index, (scoremap, boxes) in enumerate(zip(scoremaps, gt_boxes, strict=True)):
        levels = (thresholds * scoremap.max()).astype(np.int64)
        values = np.sort(scoremap.ravel())
        foreground_counts = values.size - np.searchsorted(values, levels, side="right")
        counts, first, which = np.unique(foreground_counts, return_index=True, return_inverse=True)
        traced = counts > 0 if convention.empty_box is None else np.ones(len(counts), dtype=bool)
        box_sets = [_boxes_above(scoremap, level, convention) for level in levels[first[traced]]]
        if not box_sets:
            continue
        ious = box_iou(np.concatenate(box_sets), boxes, convention.size_offset).max(axis=1)
        offsets = np.cumsum([0] + [len(b) for b in box_sets[:-1]])
        per_mask = np.zeros(len(counts))
        per_mask[traced] = np.maximum.reduceat(ious, offsets)
        best[index] = per_mask[which]
    return best


def _boxes_above(scoremap: np.ndarray, level: int, convention: BoxConvention) -> np.ndarray:
    # THRESH_BINARY keeps pixels strictly above `level`, as wsolevaluation's scoremap2bbox.
    _, foreground = cv2.threshold(scoremap, int(level), 255, cv2.THRESH_BINARY)
    boxes = boxes_from_mask(foreground)
    if not len(boxes) and convention.empty_box is not None:
        return np.array([convention.empty_box])
    if convention.clip_to_last_pixel:
        height, width = scoremap.shape
        boxes[:, 2] = np.minimum(boxes[:, 2], width - 1)
        boxes[:, 3] = np.minimum(boxes[:, 3], height - 1)
    return boxes


@dataclass(frozen=True)
class BoxAccuracy:
    """Box accuracy (%) at every CAM threshold (rows) and IoU threshold (columns)."""

    cam_thresholds: np.ndarray
    iou_thresholds: tuple[float, ...]
    accuracy: np.ndarray

    @property
    def max_box_acc(self) -> dict[float, float]:
        """MaxBoxAcc per IoU threshold: the best accuracy over CAM thresholds."""
        return {delta: float(self.accuracy[:, j].max()) for j, delta in enumerate(self.iou_thresholds)}

    @property
    def best_threshold(self) -> dict[float, float]:
        """The CAM threshold reaching MaxBoxAcc per IoU threshold (the lowest one on ties)."""
        return {
            delta: float(self.cam_thresholds[self.accuracy[:, j].argmax()])
            for j, delta in enumerate(self.iou_thresholds)
        }

    @property
    def max_box_acc_v2(self) -> float:
        """MaxBoxAccV2: MaxBoxAcc averaged over the IoU thresholds."""
        return float(np.mean(list(self.max_box_acc.values())))


def max_box_accuracy(
    cams: np.ndarray,
    gt_boxes: BoxesLike,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    step: float = CAM_THRESHOLD_STEP,
    convention: BoxConvention = EXCLUSIVE_CORNERS,
) -> BoxAccuracy:
    """MaxBoxAcc(V2) of `cams` against `gt_boxes` over a CAM threshold sweep (see the module docstring)."""
    cams = _as_maps(cams, "cams")
    deltas = _iou_thresholds(iou_thresholds)
    thresholds = cam_thresholds(step)
    best_iou = _best_iou_per_threshold(cams, _as_box_lists(gt_boxes, len(cams)), thresholds, convention)
    accuracy = 100.0 * (best_iou[:, :, None] >= np.asarray(deltas)).mean(axis=0)
    return BoxAccuracy(thresholds, deltas, accuracy)


def wsolevaluation_box_accuracy(cams: np.ndarray, gt_boxes: BoxesLike) -> BoxAccuracy:
    """MaxBoxAcc(V2) exactly as clovaai/wsolevaluation computes it, on the published scale.

    Its `BoxEvaluator` with `multi_contour_eval=True`, IoU 30/50/70 and `cam_curve_interval=0.001`:
    its box convention (`WSOLEVALUATION`) and the best tau on the scored maps themselves. Choose
    nothing with it; it exists to set this project's maps next to published numbers.
    """
    return max_box_accuracy(cams, gt_boxes, IOU_THRESHOLDS, WSOLEVALUATION_STEP, WSOLEVALUATION)


def fit_cam_threshold(
    cams: np.ndarray,
    gt_boxes: BoxesLike,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    step: float = CAM_THRESHOLD_STEP,
) -> dict[float, float]:
    """Choose the CAM threshold per IoU threshold on an annotated held-out set (never the test split)."""
    return max_box_accuracy(cams, gt_boxes, iou_thresholds, step).best_threshold


def box_accuracy_at(
    cams: np.ndarray,
    gt_boxes: BoxesLike,
    cam_threshold: float | Mapping[float, float],
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> dict[float, float]:
    """Box accuracy (%) per IoU threshold at fixed CAM thresholds (e.g. those `fit_cam_threshold` chose).

    `cam_threshold` is one threshold for every IoU threshold, or a mapping IoU threshold -> CAM
    threshold, whose keys then replace `iou_thresholds`.
    """
    hits = box_hits_at(cams, gt_boxes, cam_threshold, iou_thresholds)
    return {delta: 100.0 * float(hit.mean()) for delta, hit in hits.items()}


def box_hits_at(
    cams: np.ndarray,
    gt_boxes: BoxesLike,
    cam_threshold: float | Mapping[float, float],
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> dict[float, np.ndarray]:
    """Per image, whether its CAM box reaches each IoU threshold at fixed CAM thresholds (the
    per-image form of `box_accuracy_at`, which the report's test-image resampling needs)."""
    cams = _as_maps(cams, "cams")
    boxes = _as_box_lists(gt_boxes, len(cams))
    chosen = _threshold_mapping(cam_threshold, iou_thresholds)
    return {delta: _best_iou_at(cams, boxes, tau) >= delta for delta, tau in chosen.items()}


def centre_gaussian_maps(count: int, height: int, width: int) -> np.ndarray:
    """(count, H, W) copies of one Gaussian on the image centre, standard deviation half of each side.

    Choe et al. 2020's centre-Gaussian baseline: a "CAM" that looks at no pixel. Its thresholded
    regions are centred ellipses from a dot to the whole image, so the threshold sweep finds the best
    box around the centre; a CAM method must beat it to show more than the photographer's centre bias.
    """
    rows = (np.arange(height) + 0.5 - height / 2) / (height / 2)
    cols = (np.arange(width) + 0.5 - width / 2) / (width / 2)
    blob = np.exp(-(rows[:, None] ** 2 + cols[None, :] ** 2) / 2).astype(np.float32)
    return np.repeat(blob[None], count, axis=0)


def top1_localisation(
    cams: np.ndarray,
    gt_boxes: BoxesLike,
    predictions: np.ndarray,
    labels: np.ndarray,
    cam_threshold: float,
    iou_threshold: float = TOP1_IOU_THRESHOLD,
) -> float:
    """Top-1 localisation (%): the predicted class is right AND the CAM box reaches `iou_threshold`."""
    cams = _as_maps(cams, "cams")
    predictions, labels = np.asarray(predictions).reshape(-1), np.asarray(labels).reshape(-1)
    if len(predictions) != len(cams) or len(labels) != len(cams):
        raise ValueError(f"predictions and labels need one entry per CAM ({len(cams)})")
    (delta,) = _iou_thresholds([iou_threshold])
    located = _best_iou_at(cams, _as_box_lists(gt_boxes, len(cams)), _cam_threshold(cam_threshold)) >= delta
    return 100.0 * float((located & (predictions == labels)).mean())


def _best_iou_at(cams: np.ndarray, boxes: list[np.ndarray], threshold: float) -> np.ndarray:
    return _best_iou_per_threshold(cams, boxes, np.array([threshold]))[:, 0]


def _iou_thresholds(values: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if not values or any(not 0 < v <= 1 for v in values):
        raise ValueError(f"iou_thresholds must be a non-empty list of numbers in (0, 1]; got {values}")
    return values


def _cam_threshold(value: float) -> float:
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ValueError(f"cam_threshold must be a number in [0, 1); got {value!r}")
    return float(value)


def _threshold_mapping(cam_threshold, iou_thresholds) -> dict[float, float]:
    if isinstance(cam_threshold, Mapping):
        deltas = _iou_thresholds(list(cam_threshold))
        return {
            delta: _cam_threshold(cam_threshold[key])
            for delta, key in zip(deltas, cam_threshold, strict=True)
        }
    return dict.fromkeys(_iou_thresholds(iou_thresholds), _cam_threshold(cam_threshold))


# --------------------------------------------------------------------------- masks


def boxes_to_masks(gt_boxes: BoxesLike, height: int, width: int) -> np.ndarray:
    """(N, H, W) boolean masks of the union of each image's boxes (pixel centres inside the box)."""
    box_lists = _as_box_lists(gt_boxes, len(gt_boxes))
    ys = np.arange(height)[:, None] + 0.5
    xs = np.arange(width)[None, :] + 0.5
    masks = np.zeros((len(box_lists), height, width), dtype=bool)
    for mask, boxes in zip(masks, box_lists, strict=True):
        for x0, y0, x1, y1 in boxes:
            mask |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return masks


def pointing_game(
    cams: np.ndarray,
    masks: np.ndarray,
    tolerance: float = POINTING_TOLERANCE,
    reference_size: int | None = POINTING_REFERENCE_SIZE,
) -> float:
    """Pointing game (%): a hit when an object pixel lies within the tolerance of the CAM maximum.

    TorchRay's rule (`PointingGame.evaluate`): hit if some mask pixel p has ||p - argmax||^2 <
    tolerance^2, with tolerance 15 px. Those 15 px were meant for images of a few hundred pixels, so
    the tolerance is scaled by image side / `reference_size` (224 by default): 15 px at 224 px
    becomes about 4.3 px on a 64x64 image. `reference_size=None` keeps the tolerance in pixels.
    The maximum is the first one in row-major order when several pixels tie.
    """
    cams = _as_maps(cams, "cams")
    masks = _as_masks(masks, cams) > 0
    if not (isinstance(tolerance, (int, float)) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number of pixels; got {tolerance!r}")
    height, width = cams.shape[1:]
    radius = tolerance if reference_size is None else tolerance * max(height, width) / reference_size
    peak = cams.reshape(len(cams), -1).argmax(axis=1)
    peak_y, peak_x = np.divmod(peak, width)
    rows = (np.arange(height)[None, :, None] - peak_y[:, None, None]) ** 2
    cols = (np.arange(width)[None, None, :] - peak_x[:, None, None]) ** 2
    hits = (masks & (rows + cols < radius**2)).any(axis=(1, 2))
    return 100.0 * float(hits.mean())


def pixel_average_precision(cams: np.ndarray, masks: np.ndarray) -> float:
    """PxAP: average precision of the normalised CAM values as a pixel-wise object detector.

    All pixels of all images are pooled into one precision-recall curve, as wsolevaluation's
    `MaskEvaluator` does; the curve here is scikit-learn's exact one over every distinct value
    (`average_precision_score`) rather than wsolevaluation's histogram with 0.001-wide bins.
    """
    cams = _as_maps(cams, "cams")
    foreground = _as_masks(masks, cams) > 0
    if foreground.all() or not foreground.any():
        raise ValueError("masks must contain both object (> 0) and background (0) pixels for PxAP")
    return float(average_precision_score(foreground.ravel(), normalise_cams(cams).ravel()))


MASK_REGIONS = {"background": 0, "body": 1, "part": 2}  # mixlib.data.synthetic: 0 background, 1 body, 2 part


def part_coverage(cams: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Where the CAM mass lies on part/body/background masks: the discriminative region problem as numbers.

    For each region (part, body = the object without its part, background): `<region>_share` is the
    mean over images of the share of CAM mass in the region, `<region>_area` the share of pixels,
    and `<region>_ratio` = mass share / area share (1 = no preference; a part ratio far above 1 with
    a body ratio below 1 means the CAM sits on the distinctive part). CAMs are min-max normalised
    first; images whose CAM is all zero are left out, and so are images without a part pixel from
    the ratios that need one. `images` says how many images were counted.
    """
    shares = region_shares(cams, masks)
    counted = shares["counted"]
    if not counted.any():
        raise ValueError("every CAM is all zero (constant before normalisation); part coverage is undefined")
    result: dict[str, float] = {"images": int(counted.sum())}
    for region in MASK_REGIONS:
        mass_share, area_share = shares[f"{region}_share"][counted], shares[f"{region}_area"][counted]
        ratio = shares[f"{region}_ratio"][counted]
        result[f"{region}_share"] = float(mass_share.mean())
        result[f"{region}_area"] = float(area_share.mean())
        result[f"{region}_ratio"] = float(np.nanmean(ratio)) if np.isfinite(ratio).any() else float("nan")
    return result


def region_shares(cams: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: `counted` (the CAM is not all zero) and, for each region, its share of the CAM mass,
    its share of the pixels and their ratio (NaN where the image has no such pixel or no CAM mass)."""
    cams = normalise_cams(cams)
    masks = _as_masks(masks, cams)
    if not np.isin(masks, list(MASK_REGIONS.values())).all():
        raise ValueError(f"masks must hold only {MASK_REGIONS}; got values {np.unique(masks).tolist()}")
    mass = cams.sum(axis=(1, 2))
    counted = mass > 0
    shares: dict[str, np.ndarray] = {"counted": counted}
    for region, value in MASK_REGIONS.items():
        inside = masks == value
        mass_share = np.divide((cams * inside).sum(axis=(1, 2)), mass, out=np.zeros(len(mass)), where=counted)
        area_share = inside.mean(axis=(1, 2))
        usable = counted & (area_share > 0)
        shares[f"{region}_share"] = mass_share
        shares[f"{region}_area"] = area_share
        shares[f"{region}_ratio"] = np.divide(
            mass_share, area_share, out=np.full(len(mass), np.nan), where=usable
        )
    return shares

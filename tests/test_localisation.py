"""Localisation scores: MaxBoxAccV2, threshold fit/apply, top-1 localisation, pointing game, PxAP,
part-versus-whole coverage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mixlib.cams import (
    box_accuracy_at,
    boxes_to_masks,
    centre_gaussian_maps,
    fit_cam_threshold,
    max_box_accuracy,
    normalise_cams,
    part_coverage,
    pixel_average_precision,
    pointing_game,
    top1_localisation,
    wsolevaluation_box_accuracy,
)
from mixlib.cams.localisation import box_iou

SIZE = 64
BOXES = np.array([[10, 12, 40, 44], [20, 5, 60, 30], [5, 30, 25, 60], [16, 16, 48, 48]], dtype=float)


def box_cams(boxes: np.ndarray, size: int = SIZE) -> np.ndarray:
    return boxes_to_masks(boxes, size, size).astype(np.float32)


def gaussian_cams(boxes: np.ndarray, spread: float = 0.5, size: int = SIZE) -> np.ndarray:
    """Smooth maps centred on each box, wider boxes giving wider blobs."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    maps = []
    for x0, y0, x1, y1 in boxes:
        sx, sy = spread * (x1 - x0), spread * (y1 - y0)
        maps.append(np.exp(-(((xs - (x0 + x1) / 2) / sx) ** 2 + ((ys - (y0 + y1) / 2) / sy) ** 2) / 2))
    return np.array(maps, dtype=np.float32)


def centre_baseline(boxes: np.ndarray) -> float:
    return max_box_accuracy(centre_gaussian_maps(len(boxes), SIZE, SIZE), boxes).max_box_acc_v2


def wsolevaluation_loop(cams: np.ndarray, boxes: np.ndarray, thresholds: np.ndarray, deltas) -> np.ndarray:
    """The original's plain loop (every image x every threshold), exclusive-corner IoU."""
    hits = np.zeros((len(thresholds), len(deltas)))
    for cam, box in zip(normalise_cams(cams), boxes, strict=True):
        scoremap = (cam * 255).astype(np.uint8)
        for t, tau in enumerate(thresholds):
            _, binary = cv2.threshold(scoremap, int(tau * scoremap.max()), 255, cv2.THRESH_BINARY)
            contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
            if not contours:
                continue
            rects = np.array([cv2.boundingRect(c) for c in contours], dtype=float)
            rects[:, 2:] += rects[:, :2]
            best = box_iou(rects, box[None]).max()
            hits[t] += [best >= d for d in deltas]
    return 100 * hits / len(cams)


def test_cam_equal_to_the_box_scores_100():
    result = max_box_accuracy(box_cams(BOXES), BOXES)
    assert result.max_box_acc_v2 == pytest.approx(100.0)
    assert result.max_box_acc == {0.3: 100.0, 0.5: 100.0, 0.7: 100.0}


def test_zero_and_uniform_cams_score_at_most_the_centre_baseline():
    baseline = centre_baseline(BOXES)
    assert baseline > 0, "the centred objects must be findable by a centred blob"
    for cams in (np.zeros((4, SIZE, SIZE)), np.full((4, SIZE, SIZE), 0.7)):
        assert max_box_accuracy(cams, BOXES).max_box_acc_v2 <= baseline


def test_the_centre_baseline_finds_centred_objects_and_misses_corner_ones():
    for side in (16, 48):  # one threshold serves the whole set, so each set has one object size
        start = (SIZE - side) / 2
        centred = np.tile([[start, start, start + side, start + side]], (3, 1))
        assert centre_baseline(centred) == pytest.approx(100.0)
    corners = np.array([[0, 0, 12, 12], [52, 52, 64, 64], [0, 50, 14, 64]], dtype=float)
    assert centre_baseline(corners) == 0.0
    maps = centre_gaussian_maps(2, 6, 8)
    assert maps.shape == (2, 6, 8) and np.array_equal(maps[0], maps[1])
    assert np.array_equal(maps[0], maps[0][::-1, ::-1])  # symmetric about the centre


def test_cam_shifted_off_the_object_scores_low():
    shifted = BOXES.copy()
    shifted[:, [0, 2]] = np.where(BOXES[:, [0]] >= 16, BOXES[:, [0, 2]] - 16, BOXES[:, [0, 2]] + 36)
    shifted = np.clip(shifted, 0, SIZE)
    shifted[:, [1, 3]] = SIZE - BOXES[:, [3, 1]]  # and mirrored vertically
    assert max_box_accuracy(box_cams(shifted), BOXES).max_box_acc_v2 < 20


def test_all_contours_count_not_only_the_largest():
    small_object = np.array([[4, 4, 14, 14]], dtype=float)
    cam = box_cams(small_object) + box_cams(np.array([[30, 30, 60, 60]], dtype=float))  # larger distractor
    assert max_box_accuracy(cam, small_object).max_box_acc[0.7] == 100.0


def test_the_fast_sweep_matches_the_plain_loop():
    rng = np.random.default_rng(0)
    low = rng.random((12, 8, 8)).astype(np.float32)
    cams = np.stack([cv2.resize(m, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for m in low])
    boxes = np.tile(BOXES, (3, 1))
    result = max_box_accuracy(cams, boxes, step=0.05)
    expected = wsolevaluation_loop(cams, boxes, result.cam_thresholds, result.iou_thresholds)
    assert np.allclose(result.accuracy, expected, atol=1e-9)
    assert result.accuracy.max() > 0  # the comparison covers hits, not only misses


def test_threshold_fitted_on_one_set_applies_to_another():
    validation, test = gaussian_cams(BOXES), gaussian_cams(BOXES[::-1])
    chosen = fit_cam_threshold(validation, BOXES)
    assert set(chosen) == {0.3, 0.5, 0.7}
    applied = box_accuracy_at(test, BOXES[::-1], chosen)
    best_on_test = max_box_accuracy(test, BOXES[::-1]).max_box_acc
    assert applied == pytest.approx(best_on_test)  # same kind of maps: the fitted threshold transfers
    assert box_accuracy_at(test, BOXES[::-1], 0.99)[0.5] < applied[0.5]  # a bad threshold costs accuracy


def test_best_threshold_reproduces_max_box_acc_on_the_same_set():
    cams = gaussian_cams(BOXES, spread=0.8)
    result = max_box_accuracy(cams, BOXES)
    assert box_accuracy_at(cams, BOXES, result.best_threshold) == pytest.approx(result.max_box_acc)


def test_top1_localisation_needs_class_and_box():
    cams, labels = box_cams(BOXES), np.array([0, 1, 2, 3])
    assert top1_localisation(cams, BOXES, labels, labels, cam_threshold=0.5) == 100.0
    assert top1_localisation(cams, BOXES, np.array([0, 1, 0, 0]), labels, cam_threshold=0.5) == 50.0
    assert top1_localisation(np.zeros_like(cams), BOXES, labels, labels, cam_threshold=0.5) == 0.0


def test_several_gt_boxes_per_image_any_can_be_hit():
    two_boxes = [np.array([[0, 0, 8, 8], BOXES[0]])]
    assert max_box_accuracy(box_cams(BOXES[:1]), two_boxes).max_box_acc_v2 == 100.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iou_thresholds": (0.5, 1.5)}, "iou_thresholds"),
        ({"step": 0}, "step"),
    ],
)
def test_box_accuracy_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        max_box_accuracy(box_cams(BOXES), BOXES, **kwargs)
    with pytest.raises(ValueError, match="gt_boxes"):
        max_box_accuracy(box_cams(BOXES), BOXES[:2])


def test_boxes_to_masks_uses_exclusive_corners():
    mask = boxes_to_masks(np.array([[2, 3, 5, 7]]), 10, 10)[0]
    assert mask.sum() == 3 * 4 and mask[3, 2] and mask[6, 4] and not mask[7, 4] and not mask[3, 5]


def peak_map(y: int, x: int, size: int = SIZE) -> np.ndarray:
    cam = np.zeros((1, size, size), dtype=np.float32)
    cam[0, y, x] = 1.0
    return cam


def test_pointing_game_hits_and_misses():
    mask = boxes_to_masks(np.array([[20, 20, 40, 40]]), SIZE, SIZE)
    assert pointing_game(peak_map(30, 30), mask) == 100.0  # inside
    assert pointing_game(peak_map(30, 43), mask) == 100.0  # 4 px right of the object: within 15*64/224
    assert pointing_game(peak_map(30, 45), mask) == 0.0  # 6 px away: a miss
    assert pointing_game(peak_map(30, 45), mask, reference_size=None) == 100.0  # 15 px absolute
    assert pointing_game(peak_map(5, 60), mask, reference_size=None) == 0.0
    assert pointing_game(np.concatenate([peak_map(30, 30), peak_map(5, 60)]), np.repeat(mask, 2, 0)) == 50.0


def test_pxap_is_one_for_a_cam_equal_to_the_mask():
    masks = boxes_to_masks(BOXES, SIZE, SIZE)
    assert pixel_average_precision(masks.astype(float), masks) == pytest.approx(1.0)
    assert (
        pixel_average_precision(1.0 - masks, masks) < masks.mean() + 0.05
    )  # inverted map: no better than chance
    random = np.random.default_rng(0).random(masks.shape)
    assert pixel_average_precision(random, masks) == pytest.approx(masks.mean(), abs=0.03)


def synthetic_mask() -> np.ndarray:
    mask = np.zeros((1, 8, 8), dtype=np.uint8)
    mask[0, 2:6, 2:6] = 1  # body: 16 pixels
    mask[0, 2:4, 2:4] = 2  # part: 4 of them
    return mask


def test_part_coverage_on_a_constructed_mask():
    mask = synthetic_mask()
    on_part = part_coverage((mask == 2).astype(float), mask)
    assert on_part["part_share"] == pytest.approx(1.0) and on_part["body_share"] == 0.0
    assert on_part["part_area"] == pytest.approx(4 / 64) and on_part["part_ratio"] == pytest.approx(16.0)
    on_object = part_coverage((mask > 0).astype(float), mask)
    assert on_object["part_share"] == pytest.approx(4 / 16) and on_object["body_share"] == pytest.approx(
        12 / 16
    )
    assert on_object["part_ratio"] == pytest.approx(4.0) and on_object["body_ratio"] == pytest.approx(4.0)
    assert on_object["background_share"] == 0.0 and on_object["images"] == 1


def test_part_coverage_rejects_bad_masks_and_empty_cams():
    with pytest.raises(ValueError, match="only"):
        part_coverage(np.ones((1, 8, 8)), synthetic_mask() + 1)
    with pytest.raises(ValueError, match="all zero"):
        part_coverage(np.zeros((1, 8, 8)), synthetic_mask())
    with pytest.raises(ValueError, match="shape"):
        part_coverage(np.ones((1, 8, 9)), synthetic_mask())


# --------------------------------------------------------------------------- wsolevaluation's scale


def wsolevaluation_reference(cams: np.ndarray, gt_boxes: np.ndarray, interval: float = 0.001) -> list[float]:
    """clovaai/wsolevaluation's `BoxEvaluator` (multi_contour_eval=True, IoU 30/50/70), re-implemented
    as its plain loop: min-max normalisation, uint8 scoremap, every threshold of arange(0, 1, interval),
    all contours, box ends clipped to W - 1 / H - 1, [0, 0, 0, 0] for no contour, IoU with +1 on sizes,
    accuracy per threshold and its maximum. Returns MaxBoxAcc per IoU threshold."""
    thresholds = list(np.arange(0, 1, interval))
    correct = {delta: np.zeros(len(thresholds)) for delta in (30, 50, 70)}
    for cam, gt in zip(cams, gt_boxes, strict=True):
        cam = cam.copy()
        cam = np.zeros_like(cam) if cam.min() == cam.max() else (cam - cam.min()) / (cam - cam.min()).max()
        height, width = cam.shape
        image = np.expand_dims((cam * 255).astype(np.uint8), 2)
        found, counts = [], []
        for threshold in thresholds:
            _, binary = cv2.threshold(image, int(threshold * np.max(image)), 255, cv2.THRESH_BINARY)
            contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            boxes = [[0, 0, 0, 0]]
            if contours:
                boxes = []
                for contour in contours:
                    x, y, w, h = cv2.boundingRect(contour)
                    boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
            found.append(np.asarray(boxes))
            counts.append(len(boxes))
        a, b = np.concatenate(found)[:, None, :], np.asarray(gt, dtype=float).reshape(1, 1, 4)
        inter_w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
        inter_h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
        area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
        area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
        denominator = area_a + area_b - inter_w * inter_h
        ious = np.where(denominator > 0, inter_w * inter_h / np.where(denominator > 0, denominator, 1), 0)
        best, start = [], 0
        for count in counts:
            best.append(ious.max(1)[start : start + count].max())
            start += count
        for delta, hits in correct.items():
            hits[np.asarray(best) >= delta / 100] += 1
    return [float((hits * 100.0 / len(cams)).max()) for hits in correct.values()]


def fixed_cams() -> tuple[np.ndarray, np.ndarray]:
    """Random 8x8 maps upsampled to 64 px, a constant map, boxes touching the border and the origin."""
    rng = np.random.default_rng(7)
    low = rng.random((15, 8, 8)).astype(np.float32)
    cams = np.stack([cv2.resize(m, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for m in low])
    cams = np.concatenate([cams, np.zeros((1, SIZE, SIZE), np.float32)])
    boxes = np.concatenate([np.tile(BOXES, (3, 1)), [[30, 20, 64, 64], [0, 0, 64, 40], [0, 0, 12, 12]]])
    return cams, np.concatenate([boxes, [[0, 0, 0, 0]]])


def test_the_published_scale_score_is_wsolevaluations_loop():
    cams, boxes = fixed_cams()
    result = wsolevaluation_box_accuracy(cams, boxes)
    expected = wsolevaluation_reference(cams, boxes)
    assert list(result.max_box_acc.values()) == pytest.approx(expected, abs=1e-9)
    assert result.max_box_acc_v2 == pytest.approx(np.mean(expected))
    assert len(result.cam_thresholds) == 1000  # step 0.001
    assert 0 < result.max_box_acc_v2 < 100


def test_the_two_box_conventions_score_the_same_maps_differently():
    cams, boxes = fixed_cams()
    published = wsolevaluation_box_accuracy(cams, boxes).max_box_acc_v2
    exclusive = max_box_accuracy(cams, boxes, step=0.001).max_box_acc_v2
    assert published != pytest.approx(exclusive)
    # a constant map has no foreground: no box here, wsolevaluation's (0, 0, 0, 0) box there
    constant = np.zeros((1, SIZE, SIZE), np.float32)
    origin = np.array([[0.0, 0.0, 0.0, 0.0]])
    assert wsolevaluation_box_accuracy(constant, origin).max_box_acc_v2 == 100.0
    assert max_box_accuracy(constant, origin).max_box_acc_v2 == 0.0

"""Batched training augmentation and the stored training tensors: draws, geometry, colour, seeding."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from mixlib.data import BatchAugment, ImageTensors, load_splits, load_training_images
from mixlib.data.augment import AugmentParams, crop_grid, draw_crops, jitter, normalise_pixels


def params(count: int, crops, flips, factors=None, order=None) -> AugmentParams:
    return AugmentParams(
        crops=torch.tensor(crops, dtype=torch.float32).expand(count, 4),
        flips=torch.tensor(flips).expand(count),
        factors=torch.ones(count, 3) if factors is None else factors,
        order=torch.arange(3).expand(count, 3) if order is None else order,
    )


def test_crop_scales_and_ratios_are_drawn_per_sample_within_the_ranges():
    crops = draw_crops(4000, 64, (0.35, 1.0), torch.Generator().manual_seed(0))
    x0, y0, width, height = crops.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + width <= 64).all() and (y0 + height <= 64).all()
    scale, ratio = width * height / 64**2, width / height
    rounding = 2 / 20  # integer sides move the area and ratio by at most a pixel per side
    assert scale.min() >= 0.35 - rounding and scale.max() <= 1.0
    assert ratio.min() >= 3 / 4 - rounding and ratio.max() <= 4 / 3 + rounding
    assert scale.std() > 0.15 and ratio.std() > 0.1  # drawn per sample, not once per batch
    assert scale.quantile(0.05) < 0.42 and scale.quantile(0.95) > 0.85  # spread over the whole range
    assert abs(ratio.log().mean()) < 0.02  # log-uniform ratio: symmetric around 1


def test_flip_rate_is_one_half_and_jitter_factors_lie_in_range():
    drawn = BatchAugment(32, color_jitter=0.4).draw(4000, 32, torch.Generator().manual_seed(1))
    assert abs(drawn.flips.float().mean() - 0.5) < 0.03
    assert drawn.factors.min() >= 0.6 and drawn.factors.max() <= 1.4 and drawn.factors.std(0).min() > 0.2
    assert all(sorted(row) == [0, 1, 2] for row in drawn.order.tolist())
    assert len({tuple(row) for row in drawn.order.tolist()}) == math.factorial(3)


def test_crop_and_flip_match_torchvision_resized_crop():
    images = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    crop = [5.0, 7.0, 24.0, 30.0]  # x0, y0, width, height
    augment = BatchAugment(32, color_jitter=0.0)
    for flip in (False, True):
        got = augment.apply(images, params(2, crop, flip)).images
        expected = TF.resized_crop(images.float(), 7, 5, 30, 24, [32, 32], antialias=False)
        expected = TF.horizontal_flip(expected) if flip else expected
        expected = normalise_pixels(expected / 255)
        # torchvision clamps samples to the crop, grid_sample reads the neighbouring stored pixel: the
        # outermost output row/column may differ, the inside must agree
        assert torch.allclose(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-4)


def test_jitter_matches_torchvision_in_each_samples_order():
    pixels = torch.rand(6, 3, 16, 16)
    factors = torch.rand(6, 3) * 0.8 + 0.6
    order = torch.stack([torch.randperm(3, generator=torch.Generator().manual_seed(i)) for i in range(6)])
    got = jitter(pixels.clone(), factors, order)
    operations = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
    for row in range(6):
        expected = pixels[row]
        for op in order[row].tolist():
            expected = operations[op](expected, float(factors[row, op]))
        assert torch.allclose(got[row], expected, atol=1e-5), row


def boxed_batch(count: int, side: int = 48) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images bright inside their box and dark outside, with the box as the mask."""
    generator = torch.Generator().manual_seed(3)
    corners = torch.randint(4, side // 2, (count, 2), generator=generator).float()
    sizes = torch.randint(8, side // 2, (count, 2), generator=generator).float()
    boxes = torch.cat([corners, corners + sizes], dim=1)
    masks = torch.zeros(count, 1, side, side, dtype=torch.uint8)
    for row, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        masks[row, :, y0:y1, x0:x1] = 1
    return masks.expand(count, 3, side, side) * 255, boxes, masks


def test_boxes_and_masks_follow_the_image():
    images, boxes, masks = boxed_batch(64)
    out = BatchAugment(32, crop_scale_min=0.35, color_jitter=0.0)(
        images, torch.Generator().manual_seed(4), boxes, masks
    )
    bright = normalise_pixels(torch.ones(1, 3, 1, 1))[0, :, 0, 0]
    inside = (out.images > bright.view(1, 3, 1, 1) / 2).all(dim=1)  # bilinear edges: half-bright or more
    for row in range(64):
        x0, y0, x1, y1 = out.boxes[row].tolist()
        ys, xs = inside[row].nonzero(as_tuple=True)
        if x1 - x0 < 2 or y1 - y0 < 2:  # the crop missed (almost all of) the box
            assert len(xs) <= 2 * 32
            continue
        # the box drawn on the image still encloses the same (bright) pixels, to a pixel
        assert xs.min() >= math.floor(x0) - 1 and xs.max() <= math.ceil(x1) and ys.min() >= math.floor(y0) - 1
        assert ys.max() <= math.ceil(y1) and abs(xs.min() - x0) <= 1 and abs(ys.max() + 1 - y1) <= 1
    # the mask moves with the image: they disagree only on the one-pixel bilinear rim
    assert (out.masks[:, 0].bool() != inside).float().mean() < 0.03


def test_the_same_seed_gives_the_same_batch_and_another_seed_another():
    images, boxes, masks = boxed_batch(8)
    augment = BatchAugment(32)
    first = augment(images, torch.Generator().manual_seed(5), boxes, masks)
    again = augment(images, torch.Generator().manual_seed(5), boxes, masks)
    other = augment(images, torch.Generator().manual_seed(6), boxes, masks)
    assert torch.equal(first.images, again.images) and torch.equal(first.masks, again.masks)
    assert torch.equal(first.boxes, again.boxes)
    assert not torch.equal(first.images, other.images)


def test_crop_grid_flip_mirrors_columns():
    crops, flips = torch.tensor([[2.0, 3.0, 20.0, 10.0]]), torch.tensor([False])
    plain = crop_grid(crops, flips, 32, 8)
    mirrored = crop_grid(crops, ~flips, 32, 8)
    assert torch.allclose(mirrored[..., 0], plain[..., 0].flip(-1))
    assert torch.equal(mirrored[..., 1], plain[..., 1])


def test_streamed_batches_equal_resident_batches_and_extra_images_join(tmp_path):
    splits = load_splits("synthetic", images_per_class=4, val_per_class=1, image_size=32)
    resident = load_training_images(splits.train, 32, torch.device("cpu"))
    streamed = load_training_images(splits.train, 32, torch.device("cpu"), memory_budget_gib=1e-9)
    assert type(resident).__name__ == "ResidentImages" and type(streamed).__name__ == "StreamedImages"
    assert resident.images.images.dtype == torch.uint8 and resident.side == 32
    extra = ImageTensors(
        torch.full((3, 3, 16, 16), 7, dtype=torch.uint8),
        torch.tensor([0, 1, 2]),
        torch.tensor([[0.0, 0.0, 8.0, 8.0]]).expand(3, 4),
        torch.ones(3, 1, 16, 16, dtype=torch.uint8),
    )
    resident, streamed = resident.with_extra(extra), streamed.with_extra(extra)
    assert len(resident) == len(streamed) == len(splits.train) + 3
    order = torch.randperm(len(resident), generator=torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")
    for a, b in zip(resident.batches(order, 5, cpu), streamed.batches(order, 5, cpu), strict=True):
        for x, y in zip(a.parts(), b.parts(), strict=True):
            assert torch.equal(x, y)
    added = resident.images.take(torch.arange(len(splits.train), len(resident)))
    assert added.images.shape[-1] == 32 and (added.images == 7).all()  # resized to the stored side
    assert torch.equal(added.boxes, torch.tensor([[0.0, 0.0, 16.0, 16.0]]).expand(3, 4))


@pytest.mark.parametrize("side", [64, 200])
def test_stored_side_is_the_common_square_side_up_to_twice_the_training_size(side):
    from mixlib.data.stored import stored_side

    assert stored_side([(side, side)] * 3, 64) == min(side, 128)
    assert stored_side([(64, 64), (80, 60)], 64) == 128

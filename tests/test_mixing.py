"""Tests of the mixing methods: the shared contract over every registered method, then per method."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data import Mixup

from mixlib.losses import MixedBatch, mixed_cross_entropy
from mixlib.mixing import METHODS as MIXING_CLASSES
from mixlib.mixing import MIXING, create_batch_transform
from mixlib.mixing.attentive_cutmix import class_activation_maps
from mixlib.mixing.base import Boxes, blend_with_partner, check_batch
from mixlib.mixing.cutmix import cutmix_boxes
from mixlib.mixing.fmix import HISTOGRAM_BINS, top_pixels
from mixlib.mixing.mixup import mixup_images
from mixlib.mixing.puzzlemix import checkerboard_icm, gradient_saliency
from mixlib.mixing.saliencymix import saliency_peaks, spectral_residual_saliency
from mixlib.models import create_model

NUM_CLASSES = 4
SIZE = 32
METHODS = [method.name for method in MIXING_CLASSES]  # this library's methods (the registry holds more)
ERASING = {"cutout", "random_erasing"}
MIXING_METHODS = [name for name in METHODS if name not in ERASING]
MODEL_BASED = {"attentive_cutmix", "puzzlemix"}
PER_SAMPLE = [name for name in METHODS if "per_sample" in inspect.signature(MIXING.get(name)).parameters]

INVALID = {
    "mixup": [{"alpha": 0.0}, {"alpha": "1"}, {"per_sample": "yes"}],
    "cutmix": [{"alpha": -1.0}],
    "fmix": [{"decay_power": 0.0}, {"alpha": float("nan")}],
    "resizemix": [{"scale": (0.0, 0.5)}, {"scale": (0.9, 0.2)}, {"scale": 0.5}],
    "smoothmix": [{"sigma_scale": (0.0, 0.5)}],
    "hmix": [{"ratio": 1.5}, {"ratio": 0.0}],
    "gmix": [{"alpha": 0.0}],
    "cutout": [{"size": 0.0}, {"size": 1.5}],
    "random_erasing": [{"probability": 2.0}, {"area": (0.5, 0.2)}, {"aspect": 0.0}],
    "saliencymix": [{"alpha": 0.0}],
    "attentive_cutmix": [{"top_k": 0}, {"grid_size": 0}],
    "puzzlemix": [{"n_labels": 1}, {"beta": -1.0}, {"iterations": 0}],
}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    # timm's tiny test ResNet (fc head, 4 x 4 last map at 32 px): a resnet10t-shaped model at 1/3 the cost.
    return create_model("test_resnet", num_classes=NUM_CLASSES, input_size=SIZE).train()


def make_batch(batch_size: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch_size, 3, SIZE, SIZE, generator=generator)
    targets = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)
    return inputs, targets


def mix(name: str, inputs, targets, model, seed: int = 1, **params) -> MixedBatch:
    transform = create_batch_transform(name, **{"p": 1.0, **params})
    return transform(inputs, targets, torch.Generator().manual_seed(seed), model)


# -- the shared contract ---------------------------------------------------------------------------


def test_every_method_is_registered():
    assert set(METHODS) == set(INVALID)
    assert all(MIXING.get(method.name) is method for method in MIXING_CLASSES)


@pytest.mark.parametrize("name", METHODS)
def test_output_shapes_dtypes_and_label_weights(name, model):
    inputs, targets = make_batch()
    batch = mix(name, inputs, targets, model)
    assert batch.inputs.shape == inputs.shape and batch.inputs.dtype == inputs.dtype
    assert batch.lam.shape == (len(inputs),) and batch.lam.dtype == torch.float32
    assert bool(((batch.lam >= 0) & (batch.lam <= 1)).all())
    assert batch.targets_a.equal(targets)
    soft = batch.soft_targets(NUM_CLASSES)
    torch.testing.assert_close(soft.sum(1), torch.ones(len(inputs)))
    if batch.mask is not None:
        assert batch.mask.shape == (len(inputs), 1, SIZE, SIZE)
        torch.testing.assert_close(batch.mask.mean(dim=(1, 2, 3)), batch.lam, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", MIXING_METHODS)
def test_mixing_methods_mix_with_their_partner(name, model):
    inputs, targets = make_batch()
    batch = mix(name, inputs, targets, model)
    assert sorted(batch.partner.tolist()) == list(range(len(inputs)))
    assert not batch.partner.eq(torch.arange(len(inputs))).any()  # nobody is paired with itself
    assert batch.targets_b.equal(targets[batch.partner])
    if batch.mask is not None:
        # Where the mask is 1 the pixel is the sample's own; where 0, the partner's (except ResizeMix,
        # which pastes the shrunk partner rather than the pixels at the same place).
        own = batch.mask.expand_as(inputs) == 1
        assert batch.inputs[own].equal(inputs[own])
        if name != "resizemix":
            partner = batch.mask.expand_as(inputs) == 0
            assert batch.inputs[partner].equal(inputs[batch.partner][partner])


@pytest.mark.parametrize("name", METHODS)
def test_p_zero_returns_the_batch_unchanged(name, model):
    inputs, targets = make_batch()
    for seed in range(3):
        batch = mix(name, inputs, targets, model, seed=seed, p=0.0)
        assert batch.inputs is inputs and batch.targets_b is targets
        assert batch.lam.eq(1).all() and batch.partner is None and batch.mask is None


@pytest.mark.parametrize("name", METHODS)
def test_p_one_always_transforms(name, model):
    inputs, targets = make_batch()
    for seed in range(3):
        batch = mix(
            name,
            inputs,
            targets,
            model,
            seed=seed,
            **({"probability": 1.0} if name == "random_erasing" else {}),
        )
        assert not batch.inputs.equal(inputs)
        if name not in ERASING:
            assert batch.partner is not None


@pytest.mark.parametrize("name", METHODS)
def test_p_is_a_per_batch_probability(name, model):
    inputs, targets = make_batch(2)
    transform = create_batch_transform(name, p=0.5)
    decisions = []
    for seed in range(6):  # the batch is transformed exactly when the generator's first draw is below p
        applied = torch.rand(1, generator=torch.Generator().manual_seed(seed)).item() < 0.5
        batch = transform(inputs, targets, torch.Generator().manual_seed(seed), model)
        assert (batch.inputs is not inputs) == applied
        decisions.append(applied)
    assert any(decisions) and not all(decisions)


@pytest.mark.parametrize("name", METHODS)
def test_gradients_flow_to_the_model_and_the_inputs(name, model):
    inputs, targets = make_batch()
    inputs.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    batch = mix(name, inputs, targets, model)
    if name in MODEL_BASED:
        assert all(parameter.grad is None for parameter in model.parameters())
    loss = mixed_cross_entropy(model(batch.inputs), batch)
    loss.backward()
    assert inputs.grad is not None and inputs.grad.abs().sum() > 0
    assert all(parameter.grad is not None for parameter in model.parameters() if parameter.requires_grad)
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_batch(name, model):
    inputs, targets = make_batch()
    first, second = mix(name, inputs, targets, model, seed=7), mix(name, inputs, targets, model, seed=7)
    other = mix(name, inputs, targets, model, seed=8)
    assert first.inputs.equal(second.inputs) and first.lam.equal(second.lam)
    assert not first.inputs.equal(other.inputs)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("batch_size", [1, 5])
def test_odd_batch_sizes(name, batch_size, model):
    inputs, targets = make_batch(batch_size)
    batch = mix(name, inputs, targets, model)
    assert batch.inputs.shape == inputs.shape and batch.lam.shape == (batch_size,)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_one_draw_per_batch(name, model):
    inputs, targets = make_batch()
    batch = mix(name, inputs, targets, model, per_sample=False)
    assert batch.lam.shape == (len(inputs),)
    if batch.mask is not None:  # a shared mask is expanded to the batch and still matches lam
        assert batch.mask.shape == (len(inputs), 1, *inputs.shape[2:])
        torch.testing.assert_close(batch.mask.mean(dim=(1, 2, 3)), batch.lam.float())
    if batch.mask is not None and name != "puzzlemix":  # PuzzleMix's mask depends on each pair's saliency
        assert batch.mask.eq(batch.mask[:1]).all()
    elif name == "mixup":
        assert batch.lam.eq(batch.lam[0]).all()


@pytest.mark.parametrize("name", METHODS)
def test_invalid_hyperparameters_name_the_parameter(name):
    for params in [*INVALID[name], {"p": 1.5}, {"p": -0.1}]:
        (parameter,) = params
        with pytest.raises(ValueError, match=rf"^method_params of method '{name}': {parameter} must"):
            create_batch_transform(name, **params)


def test_unknown_method_and_bad_batches_fail_early():
    with pytest.raises(ValueError, match="unknown method 'mixpu'.*mixup"):
        create_batch_transform("mixpu")
    inputs, targets = make_batch()
    with pytest.raises(ValueError, match="^inputs must"):
        check_batch(inputs[0], targets)
    with pytest.raises(ValueError, match="^targets must"):
        check_batch(inputs, targets.float())
    with pytest.raises(ValueError, match="^targets must"):
        check_batch(inputs, targets[:-1])


@pytest.mark.parametrize("name", sorted(MODEL_BASED))
def test_model_based_methods_need_the_model_and_restore_its_modes(name, model):
    inputs, targets = make_batch()
    with pytest.raises(ValueError, match="^model is required"):
        mix(name, inputs, targets, None)
    model.train()
    model.get_submodule("bn1").eval()  # a frozen layer must stay frozen
    mix(name, inputs, targets, model)
    assert model.training and not model.get_submodule("bn1").training
    model.train()
    model.eval()
    mix(name, inputs, targets, model)
    assert not any(module.training for module in model.modules())
    model.train()


# -- per method -------------------------------------------------------------------------------------


def test_mixup_is_a_lerp_with_the_partner(model):
    inputs, targets = make_batch()
    batch = mix("mixup", inputs, targets, model)
    expected = torch.lerp(inputs[batch.partner], inputs, batch.lam.view(-1, 1, 1, 1))
    torch.testing.assert_close(batch.inputs, expected, atol=0, rtol=0)
    assert inputs.equal(make_batch()[0])  # the input batch is not modified in place


def test_mixup_matches_timm_for_the_same_lambda():
    inputs, _ = make_batch(8)
    targets = torch.tensor([0, 1, 2, 3, 1, 2, 3, 0])
    # timm pairs position p with 7 - p, a roll by 4 pairs sample i with i + 4: in this order they agree.
    order = torch.tensor([0, 1, 2, 3, 7, 6, 5, 4])
    np.random.seed(3)  # noqa: NPY002 (timm draws from the global NumPy state)
    timm_mixup = Mixup(
        mixup_alpha=1.0, cutmix_alpha=0.0, prob=1.0, label_smoothing=0.0, num_classes=NUM_CLASSES
    )
    timm_inputs, timm_targets = timm_mixup(inputs[order].clone(), targets[order])
    lam = timm_targets[0, targets[0]].item()  # sample 0 (class 0) is paired with sample 4 (class 1)
    assert 0 < lam < 1
    ours = mixup_images(inputs, 4, torch.full((8,), lam))
    torch.testing.assert_close(ours[order], timm_inputs, atol=1e-6, rtol=1e-6)


def test_blending_with_and_without_gradients_agrees():
    inputs, _ = make_batch(5)
    weight = torch.rand(5, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    for shift in range(5):
        plain = blend_with_partner(inputs, shift, weight)
        differentiable = blend_with_partner(inputs.clone().requires_grad_(True), shift, weight)
        expected = weight * inputs + (1 - weight) * inputs.roll(-shift, 0)
        torch.testing.assert_close(plain, expected)
        assert plain.equal(differentiable.detach()) and differentiable.requires_grad


@pytest.mark.parametrize("name", ["cutmix", "saliencymix"])
def test_a_shared_box_is_pasted_like_the_blend_under_its_outside_mask(name, model):
    inputs, targets = make_batch(7)
    for seed in range(4):
        batch = mix(name, inputs, targets, model, seed=seed, per_sample=False)
        top, bottom, left, right = _hole_box(batch.mask[0, 0])
        box = Boxes(*(torch.tensor([edge]) for edge in (top, bottom, left, right)))
        assert batch.mask[0].equal(box.outside(SIZE, SIZE)[0])
        shift = int(batch.partner[0])
        assert batch.inputs.equal(blend_with_partner(inputs, shift, box.outside(SIZE, SIZE)))


def _hole_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero((mask == 0).any(1)).flatten()
    cols = torch.nonzero((mask == 0).any(0)).flatten()
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def test_cutmix_lambda_is_one_minus_the_clipped_box_area(model):
    inputs, targets = make_batch(64)
    batch = mix("cutmix", inputs, targets, model)
    clipped = 0
    for mask, lam in zip(batch.mask[:, 0], batch.lam, strict=True):
        if lam == 1:  # an empty box
            continue
        top, bottom, left, right = _hole_box(mask)
        assert mask[top:bottom, left:right].eq(0).all()  # the hole is exactly one rectangle
        area = (bottom - top) * (right - left)
        assert lam.item() == pytest.approx(1 - area / SIZE**2, abs=1e-7)
        clipped += top == 0 or left == 0 or bottom == SIZE or right == SIZE
    assert clipped > 0  # the test covered boxes clipped at the border


def test_cutmix_boxes_follow_the_reference_geometry():
    lam = torch.tensor([0.75, 0.75, 0.0])
    generator = torch.Generator().manual_seed(0)
    boxes = cutmix_boxes(lam, 32, 32, generator)
    side = int(32 * math.sqrt(0.25))
    for index in range(2):
        centre_y = int(boxes.top[index] + boxes.bottom[index]) // 2
        height = int(boxes.bottom[index] - boxes.top[index])
        assert height <= side and (height == side or boxes.top[index] == 0 or boxes.bottom[index] == 32)
        assert 0 <= centre_y < 32
    assert int(boxes.area()[2]) <= 32 * 32


@pytest.mark.parametrize("per_sample", [True, False])
def test_resizemix_pastes_the_downsampled_partner(model, per_sample):
    inputs, targets = make_batch()
    pasted = 0
    for seed in range(4):  # a few batches, so that some draw a non-empty box
        batch = mix("resizemix", inputs, targets, model, per_sample=per_sample, seed=seed)
        pasted += _check_resized_paste(batch, inputs)
    assert pasted > 0


def _check_resized_paste(batch: MixedBatch, inputs: torch.Tensor) -> int:
    pasted = 0
    for index in range(len(inputs)):
        hole = batch.mask[index, 0] == 0
        if not hole.any():
            continue
        top, bottom, left, right = _hole_box(batch.mask[index, 0])
        partner = inputs[batch.partner[index]][None]
        expected = F.interpolate(partner, size=(bottom - top, right - left), mode="nearest")[0]
        assert batch.inputs[index, :, top:bottom, left:right].equal(expected)
        assert hole.sum() == (bottom - top) * (right - left)
        assert batch.inputs[index][:, ~hole].equal(inputs[index][:, ~hole])
        pasted += 1
    return pasted


def test_fmix_keeps_the_highest_pixels_with_the_exact_count():
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(16, 1024, generator=generator)
    counts = torch.tensor([0, 1, 2, 10, 100, 500, 512, 513, 700, 900, 1000, 1020, 1022, 1023, 1024, 333])
    kept = top_pixels(values, counts)
    assert kept.sum(1).equal(counts)
    tolerance = (values.amax(1) - values.amin(1)) / HISTOGRAM_BINS  # one histogram bin
    for row in range(len(values)):
        if 0 < counts[row] < values.shape[1]:
            assert values[row][kept[row]].min() >= values[row][~kept[row]].max() - tolerance[row]


def test_fmix_masks_are_smooth_regions(model):
    inputs, targets = make_batch()
    batch = mix("fmix", inputs, targets, model)
    mask = batch.mask[:, 0]
    changes = (mask[:, 1:] != mask[:, :-1]).float().mean()
    assert changes < 0.1  # low-frequency masks: few label changes between neighbouring pixels


def test_hmix_blends_outside_the_box_and_pastes_inside(model):
    inputs, targets = make_batch()
    batch = mix("hmix", inputs, targets, model)
    for mask in batch.mask[:, 0]:
        outside = mask[mask > 0]
        assert outside.eq(outside[0]).all() and outside[0] <= 1
        if (mask == 0).any():
            top, bottom, left, right = _hole_box(mask)
            assert mask[top:bottom, left:right].eq(0).all()


def _is_blob(image: torch.Tensor) -> bool:
    """True when the values fall off monotonically from the peak along its row and its column."""
    peak = int(image.flatten().argmax())
    row, col = image[peak // image.shape[1]], image[:, peak % image.shape[1]]
    for line, centre in ((row, peak % image.shape[1]), (col, peak // image.shape[1])):
        rising, falling = line[: centre + 1], line[centre:]
        if not ((rising[1:] >= rising[:-1] - 1e-6).all() and (falling[1:] <= falling[:-1] + 1e-6).all()):
            return False
    return True


@pytest.mark.parametrize("name", ["gmix", "smoothmix"])
def test_gmix_and_smoothmix_masks_are_soft_gaussian_blobs(name, model):
    inputs, targets = make_batch()
    mask = mix(name, inputs, targets, model).mask[:, 0]
    assert bool(((mask > 0) & (mask < 1)).any())
    for image in mask:  # the blob is the sample's own weight or the partner's
        assert _is_blob(image) or _is_blob(1 - image)
    assert not _is_blob(torch.rand(SIZE, SIZE, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", sorted(ERASING))
def test_erasing_leaves_labels_unmixed_and_zeroes_one_box(name, model):
    inputs, targets = make_batch()
    params = {"probability": 1.0} if name == "random_erasing" else {}
    batch = mix(name, inputs, targets, model, **params)
    assert batch.targets_b.equal(targets) and batch.lam.eq(1).all()
    assert batch.partner is None and batch.mask is None
    for index in range(len(inputs)):
        erased = (batch.inputs[index] != inputs[index]).any(0)
        assert erased.any()
        top, bottom, left, right = _hole_box((~erased).float())
        assert batch.inputs[index, :, top:bottom, left:right].eq(0).all()
        assert erased.sum() == (bottom - top) * (right - left)


def test_random_erasing_boxes_lie_inside_the_image_with_the_sampled_area(model):
    inputs, targets = make_batch(64)
    batch = mix("random_erasing", inputs, targets, model, probability=1.0)
    areas = (batch.inputs == 0).all(1).float().mean(dim=(1, 2))
    assert bool(((areas >= 0.01) & (areas <= 0.45)).all())
    erased_half = mix("random_erasing", inputs, targets, model, probability=0.5)
    fraction = (erased_half.inputs != inputs).flatten(1).any(1).float().mean()
    assert 0.25 <= fraction <= 0.75


def _spot_image(peak_y: int, peak_x: int, size: int = SIZE) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    image = 0.05 * torch.randn(3, size, size, generator=generator)
    image[:, peak_y - 1 : peak_y + 2, peak_x - 1 : peak_x + 2] = 3.0
    return image


def test_spectral_residual_saliency_peaks_at_a_bright_spot():
    images = torch.stack([_spot_image(9, 20), _spot_image(22, 6)])
    saliency = spectral_residual_saliency(images)
    assert saliency.shape == (2, SIZE, SIZE) and float(saliency.max()) <= 1.0
    peaks = saliency.flatten(1).argmax(1)
    for (peak_y, peak_x), peak in zip([(9, 20), (22, 6)], peaks.tolist(), strict=True):
        assert abs(peak // SIZE - peak_y) <= 1 and abs(peak % SIZE - peak_x) <= 1


def test_saliencymix_centres_the_box_on_the_partners_saliency_peak(model):
    spots = [(16, 16), (14, 18), (17, 15), (15, 15)]
    inputs = torch.stack([_spot_image(y, x) for y, x in spots])
    peak_y, peak_x = saliency_peaks(inputs)
    assert (peak_y - torch.tensor(spots)[:, 0]).abs().le(1).all()  # the peak is on the bright spot
    assert (peak_x - torch.tensor(spots)[:, 1]).abs().le(1).all()
    for seed in range(3):
        batch = mix("saliencymix", inputs, torch.arange(4), model, seed=seed, alpha=0.5)
        for index in range(4):
            if batch.lam[index] == 1:  # a box too small to hold a pixel
                continue
            top, bottom, left, right = _hole_box(batch.mask[index, 0])
            y, x = int(peak_y[batch.partner[index]]), int(peak_x[batch.partner[index]])
            assert top <= y < bottom and left <= x < right
            assert top == 0 or bottom == SIZE or top + bottom == 2 * y  # centred unless clipped
            assert left == 0 or right == SIZE or left + right == 2 * x


def test_attentive_cutmix_pastes_the_partners_top_cells(model):
    inputs, targets = make_batch()
    batch = mix("attentive_cutmix", inputs, targets, model, top_k=3)
    cams = class_activation_maps(model, inputs, targets)[batch.partner]
    cell = SIZE // cams.shape[-1]
    pasted = (batch.mask[:, 0, ::cell, ::cell] == 0).flatten(1)
    assert pasted.sum(1).eq(3).all()
    expected = cams.flatten(1).topk(3, dim=1).indices
    assert pasted.gather(1, expected).all()
    assert model.training


@pytest.mark.parametrize(("grid_size", "pasted"), [(4, 2), (6, 4), (7, 6), (8, 8)])
def test_attentive_cutmix_pastes_the_papers_share_of_any_grid(model, grid_size, pasted):
    """The paper pastes 6 of 7 x 7 cells (lam 0.878); on a 4 x 4 grid 6 cells would give lam 0.625."""
    inputs, targets = make_batch()
    batch = mix("attentive_cutmix", inputs, targets, model, grid_size=grid_size)
    cells = grid_size * grid_size
    assert abs(pasted / cells - 6 / 49) < 0.02
    # cells of a grid that does not divide the 32 px image differ by a pixel row or column
    exact = SIZE % grid_size == 0
    assert torch.allclose(
        batch.lam, torch.full_like(batch.lam, 1 - pasted / cells), atol=0 if exact else 0.03
    )
    explicit = mix("attentive_cutmix", inputs, targets, model, grid_size=grid_size, top_k=1)
    assert (explicit.lam > batch.lam).all() if pasted > 1 else torch.equal(explicit.lam, batch.lam)


def test_puzzlemix_saliency_leaves_parameter_gradients_alone(model):
    inputs, targets = make_batch()
    model.zero_grad(set_to_none=True)
    saliency = gradient_saliency(model, inputs, targets)
    assert saliency.shape == (len(inputs), SIZE, SIZE) and bool((saliency >= 0).all())
    assert all(parameter.grad is None for parameter in model.parameters())
    assert model.training


def test_puzzlemix_mask_has_block_structure_and_mixing_levels(model):
    inputs, targets = make_batch()
    batch = mix("puzzlemix", inputs, targets, model)
    assert set(batch.mask.unique().tolist()) <= {0.0, 0.5, 1.0}
    levels = batch.mask[:, 0]
    blocks = levels.unfold(1, 2, 2).unfold(2, 2, 2)  # blocks are at least 2 x 2 px on a 32 px image
    assert blocks.eq(blocks[..., :1, :1]).all()


def test_puzzlemix_keeps_each_images_salient_half():
    inputs = torch.zeros(2, 3, SIZE, SIZE)  # identical flat images: no data-smoothness cost
    saliency = torch.zeros(2, SIZE, SIZE)
    saliency[0, :, : SIZE // 2] = 1.0  # sample 0 is salient on the left, sample 1 on the right
    saliency[1, :, SIZE // 2 :] = 1.0
    partner = torch.tensor([1, 0])
    method = create_batch_transform("puzzlemix")
    unary, rows, cols = method.energy(inputs, saliency, partner, torch.full((2,), 0.5), blocks=4)
    levels = torch.linspace(0, 1, 3)
    own_weight = 1 - levels[checkerboard_icm(unary, rows, cols, levels, 8)]
    left, right = own_weight[:, :, :2], own_weight[:, :, 2:]
    assert left[0].eq(1).all() and right[0].eq(0).all()
    assert left[1].eq(0).all() and right[1].eq(1).all()


def _energy(unary, row_weights, col_weights, levels, labels):
    values = levels[labels]
    chosen = unary.gather(1, labels[:, None])[:, 0].sum(dim=(1, 2))
    pairwise = (row_weights * (values[:, 1:] - values[:, :-1]) ** 2).sum(dim=(1, 2))
    pairwise += (col_weights * (values[:, :, 1:] - values[:, :, :-1]) ** 2).sum(dim=(1, 2))
    return chosen + pairwise


def test_checkerboard_icm_lowers_the_energy_and_smooths():
    generator = torch.Generator().manual_seed(0)
    levels = torch.linspace(0, 1, 3)
    unary = torch.rand(4, 3, 8, 8, generator=generator)
    no_edges = (torch.zeros(4, 7, 8), torch.zeros(4, 8, 7))
    assert checkerboard_icm(unary, *no_edges, levels, 5).equal(unary.argmin(1))
    strong = (torch.full((4, 7, 8), 10.0), torch.full((4, 8, 7), 10.0))
    labels = checkerboard_icm(unary, *strong, levels, 20)
    start = unary.argmin(1)
    assert bool((_energy(unary, *strong, levels, labels) <= _energy(unary, *strong, levels, start)).all())
    changes = (labels[:, 1:] != labels[:, :-1]).float().mean()
    assert changes < (start[:, 1:] != start[:, :-1]).float().mean()


def test_box_masks_match_slicing():
    boxes = Boxes(torch.tensor([0, 3]), torch.tensor([4, 3]), torch.tensor([2, 1]), torch.tensor([5, 6]))
    inside = boxes.outside(6, 7)[:, 0] == 0
    expected = torch.zeros(2, 6, 7, dtype=torch.bool)
    expected[0, 0:4, 2:5] = True
    assert inside.equal(expected) and boxes.area().tolist() == [12, 0]

"""Shared machinery of the mixing methods: validation, random draws, pairing, boxes and blending.

Every method is a `MixingMethod`: its `__call__` checks the batch, decides with probability `p`
whether this batch is mixed at all, and otherwise hands over to the method's `apply`. Methods that
blend each sample with a partner under a per-pixel weight subclass `MaskMixing` and only say how the
mask is drawn; `blend_with_partner` then does the one memory-bound pass. Methods that paste one box per
sample subclass `BoxMixing` and say how the boxes are drawn; a box shared by the batch is pasted with
slice copies (`paste_partner_box`). Partners are a random roll of the batch (`random_shift`).

Randomness: every draw comes from the `torch.Generator` passed in (drawn on the generator's device,
then moved to the batch's device), so a seeded generator reproduces a batch exactly on CPU and CUDA.
Beta variates come from NumPy seeded by one draw of that generator, because torch's Beta
distribution cannot take a generator (Beta(1, 1) is drawn as the uniform it is).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mixlib.checks import (  # noqa: F401  the methods import their checks from here
    check_flag,
    check_int,
    check_interval,
    check_positive,
    check_probability,
    check_range,
)
from mixlib.losses import MixedBatch

# -- validation ----------------------------------------------------------------------------------


def check_batch(inputs: Tensor, targets: Tensor) -> None:
    if not isinstance(inputs, Tensor) or inputs.dim() != 4 or not inputs.is_floating_point():
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a floating-point tensor of shape (B, C, H, W), got {shape}")
    if not isinstance(targets, Tensor) or targets.shape != inputs.shape[:1] or targets.is_floating_point():
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be an integer tensor of shape ({len(inputs)},), got {shape}")


def require_model(model: nn.Module | None, method: str) -> nn.Module:
    if model is None:
        raise ValueError(f"model is required by {method}: pass the model being trained as model=")
    return model


# -- random draws ------------------------------------------------------------------------------


def draw_device(generator: torch.Generator | None) -> torch.device:
    """Where draws land: the generator's device (geometry is computed there, then moved to the batch)."""
    return generator.device if generator is not None else torch.device("cpu")


def uniform(count: int, generator: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> Tensor:
    """`count` float32 draws from U(low, high), on the generator's device."""
    draws = torch.rand(count, generator=generator, device=draw_device(generator))
    return draws if (low, high) == (0.0, 1.0) else draws * (high - low) + low


def integers(high: Tensor | int, count: int, generator: torch.Generator | None) -> Tensor:
    """`count` int64 draws uniform over 0..high-1; `high` is an int or a (count,) tensor of bounds."""
    if isinstance(high, int):
        return torch.randint(high, (count,), generator=generator, device=draw_device(generator))
    return (uniform(count, generator) * high).long().minimum(high - 1)


def beta(alpha: float, count: int, generator: torch.Generator | None) -> Tensor:
    """`count` float32 draws from the symmetric Beta(alpha, alpha), reproducible from the generator.

    Beta(1, 1), every method's default, is U(0, 1) and is drawn directly: seeding a NumPy generator
    costs more than the rest of a CutMix mask.
    """
    if alpha == 1.0:
        return uniform(count, generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=draw_device(generator)))
    draws = np.random.default_rng(seed).beta(alpha, alpha, size=count)
    return torch.from_numpy(draws).float().to(draw_device(generator))


def random_shift(batch_size: int, generator: torch.Generator | None) -> int:
    """A random roll 1..B-1: sample i is paired with sample (i + shift) mod B (0 for a batch of one).

    Any batch size works, and no sample is paired with itself (the reference code's random
    permutation leaves about one sample per batch unmixed; timm's flip needs an even batch). With
    the loader's shuffled batches every pair is equally likely. A roll also lets `blend_with_partner`
    read the partners as two slices of the batch instead of gathering a permuted copy.
    """
    return 1 + int(integers(batch_size - 1, 1, generator)) if batch_size > 1 else 0


def partner_index(batch_size: int, shift: int, device: torch.device) -> Tensor:
    """(B,) index of each sample's partner under a roll by `shift`."""
    return (torch.arange(batch_size, device=device) + shift) % batch_size


def draw_count(batch_size: int, per_sample: bool) -> int:
    """How many independent draws a method makes: one per sample, or one shared by the batch."""
    return batch_size if per_sample else 1


def to_batch(draws: Tensor, batch_size: int) -> Tensor:
    """A (B, ...) tensor from one draw per sample, or from one draw shared by the batch."""
    return draws.expand(batch_size, *draws.shape[1:]).contiguous() if len(draws) == 1 else draws


# -- boxes and masks ---------------------------------------------------------------------------


@dataclass
class Boxes:
    """Per-sample boxes, rows [top, bottom) and columns [left, right), int64 tensors of shape (B,)."""

    top: Tensor
    bottom: Tensor
    left: Tensor
    right: Tensor

    def to(self, device: torch.device) -> Boxes:
        return Boxes(self.top.to(device), self.bottom.to(device), self.left.to(device), self.right.to(device))

    def __len__(self) -> int:
        return len(self.top)

    def bounds(self) -> tuple[int, int, int, int]:
        """top, bottom, left, right of the first box as Python ints, for slicing a box shared by the batch."""
        return int(self.top[0]), int(self.bottom[0]), int(self.left[0]), int(self.right[0])

    def area(self) -> Tensor:
        return (self.bottom - self.top) * (self.right - self.left)

    def outside(self, height: int, width: int) -> Tensor:
        """Float (B, 1, H, W) mask, 1 outside each box and 0 inside: CutMix's own-image weight.

        A pixel is outside when its row or its column is: the mask is one broadcast maximum of a (B, H)
        and a (B, W) vector, several times faster than building, negating and converting a boolean mask.
        """
        rows = torch.arange(height, device=self.top.device)
        cols = torch.arange(width, device=self.top.device)
        out_rows = ((rows < self.top[:, None]) | (rows >= self.bottom[:, None])).float()
        out_cols = ((cols < self.left[:, None]) | (cols >= self.right[:, None])).float()
        return torch.maximum(out_rows[:, :, None], out_cols[:, None, :]).unsqueeze(1)


def centred_boxes(
    centre_y: Tensor, centre_x: Tensor, cut_h: Tensor, cut_w: Tensor, height: int, width: int
) -> Boxes:
    """clovaai/CutMix-PyTorch `rand_bbox`: half-sides cut // 2 around the centre, clipped to the image."""
    return Boxes(
        top=(centre_y - cut_h // 2).clamp(0, height),
        bottom=(centre_y + cut_h // 2).clamp(0, height),
        left=(centre_x - cut_w // 2).clamp(0, width),
        right=(centre_x + cut_w // 2).clamp(0, width),
    )


def uniform_centres(
    height: int, width: int, count: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """(count,) rows and columns of box centres, uniform over the pixels."""
    return integers(height, count, generator), integers(width, count, generator)


def box_sides(scale: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Integer box sides `int(side * scale)` (the reference code's truncation)."""
    return (scale * height).long(), (scale * width).long()


def gaussian_blobs(
    centre_y: Tensor, centre_x: Tensor, denominator: Tensor, height: int, width: int
) -> Tensor:
    """(B, 1, H, W) masks exp(-||p - c||^2 / denominator), built as an outer product of two 1-D Gaussians."""
    rows = torch.arange(height, device=centre_y.device)[None, :] - centre_y[:, None]
    cols = torch.arange(width, device=centre_x.device)[None, :] - centre_x[:, None]
    along_rows = torch.exp(-(rows.float() ** 2) / denominator[:, None])
    along_cols = torch.exp(-(cols.float() ** 2) / denominator[:, None])
    return (along_rows[:, :, None] * along_cols[:, None, :]).unsqueeze(1)


def mask_mean(mask: Tensor) -> Tensor:
    """Per-sample mean of a (B, 1, H, W) mask, float32 (B,): the own label's weight `lam`."""
    return mask.float().mean(dim=(1, 2, 3))


def blend_with_partner(inputs: Tensor, shift: int, weight: Tensor) -> Tensor:
    """`weight * inputs + (1 - weight) * partner` with partner i = inputs[(i + shift) mod B].

    `weight` broadcasts against the batch: (B, 1, 1, 1) for MixUp, a (B, 1, H, W) mask otherwise.
    The partners of the first B - shift samples are the batch's last B - shift samples and vice versa,
    so two `torch.lerp` calls on slices write the result in one pass, the memory traffic of a single
    lerp, with no permuted copy. lerp with weight 0 or 1 returns either end exactly, so hard masks copy
    pixels unchanged. `out=` is not differentiable, so when a gradient is needed the rolled batch is
    materialised instead.
    """
    weight = weight.to(inputs.dtype).expand(len(inputs), *weight.shape[1:])
    if torch.is_grad_enabled() and (inputs.requires_grad or weight.requires_grad):
        return torch.lerp(inputs.roll(-shift, 0), inputs, weight)
    mixed = torch.empty_like(inputs)
    split = len(inputs) - shift
    torch.lerp(inputs[shift:], inputs[:split], weight[:split], out=mixed[:split])
    torch.lerp(inputs[:shift], inputs[split:], weight[split:], out=mixed[split:])
    return mixed


def paste_partner_box(inputs: Tensor, shift: int, bounds: tuple[int, int, int, int]) -> Tensor:
    """The batch with its partners' pixels (those of `blend_with_partner`) inside one box shared by the batch.

    A copy of the batch, then the box `bounds` (top, bottom, left, right) copied from the partners as two
    slices (partners are a roll): no mask is read and no rolled copy is made, so this moves no more
    memory than timm's flip of the whole batch followed by its box paste. The pixels are the ones
    `blend_with_partner` writes with the box's outside mask.
    """
    top, bottom, left, right = bounds
    mixed = inputs.clone()
    split = len(inputs) - shift
    mixed[:split, :, top:bottom, left:right] = inputs[shift:, :, top:bottom, left:right]
    mixed[split:, :, top:bottom, left:right] = inputs[:shift, :, top:bottom, left:right]
    return mixed


# -- the method interface ----------------------------------------------------------------------


class MixingMethod(ABC):
    """A `BatchTransform` applied to a whole batch with probability `p`.

    Subclasses implement `apply`, which always mixes. Methods with random draws take `per_sample`:
    True draws lambda and geometry independently for each sample (the vector lambda of the seed run
    report); False draws once per batch, as the original MixUp, CutMix, FMix and ResizeMix code does.
    `mixes_images` is False for the single-image baselines (Cutout, Random Erasing), which share the
    interface but mix no second image in.
    """

    name: str = ""
    mixes_images: bool = True

    def __init__(self, p: float = 1.0) -> None:
        self.p = check_probability("p", p)

    def __call__(
        self,
        inputs: Tensor,
        targets: Tensor,
        generator: torch.Generator | None = None,
        model: nn.Module | None = None,
    ) -> MixedBatch:
        check_batch(inputs, targets)
        # The draw happens even for p = 1, so the generator's stream does not depend on p.
        if float(uniform(1, generator)) >= self.p:
            return MixedBatch.unmixed(inputs, targets)
        return self.apply(inputs, targets, generator, model)

    @abstractmethod
    def apply(
        self, inputs: Tensor, targets: Tensor, generator: torch.Generator | None, model: nn.Module | None
    ) -> MixedBatch:
        """Mix the batch unconditionally."""

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({params})"


class MaskMixing(MixingMethod):
    """A method that pastes or blends a partner under a per-pixel own-image weight mask.

    `sample_mask` returns the weight of each sample's own image (bool or float in [0, 1]), shape
    (B, 1, H, W), or (1, 1, H, W) when one mask is shared by the batch (`per_sample=False`); lam is the
    mask's mean, so the label weights always match the pixels. A shared mask is built once and
    expanded as a view: the per-batch variants then cost what the per-batch library versions cost.
    """

    def apply(self, inputs, targets, generator, model):
        shift = random_shift(len(inputs), generator)
        partner = partner_index(len(inputs), shift, inputs.device)
        mask = self.sample_mask(inputs, targets, partner, generator, model).float()
        return masked_batch(blend_with_partner(inputs, shift, mask), targets, partner, mask)

    @abstractmethod
    def sample_mask(
        self,
        inputs: Tensor,
        targets: Tensor,
        partner: Tensor,
        generator: torch.Generator | None,
        model: nn.Module | None,
    ) -> Tensor:
        """The own-image weight, shape (B, 1, H, W) or (1, 1, H, W) if shared, on the batch's device."""


class BoxMixing(MixingMethod):
    """A method that pastes the partner's pixels inside one box per sample (CutMix, SaliencyMix).

    `sample_boxes` returns one box per sample, or one box shared by the batch (`per_sample=False`),
    which is then pasted with slice copies instead of blended under a mask; lam is 1 - box area / (H * W)
    either way.
    """

    def apply(self, inputs, targets, generator, model):
        batch_size, _, height, width = inputs.shape
        shift = random_shift(batch_size, generator)
        partner = partner_index(batch_size, shift, inputs.device)
        boxes = self.sample_boxes(inputs, partner, generator, model).to(inputs.device)
        mask = boxes.outside(height, width)
        if len(boxes) == 1:
            mixed = paste_partner_box(inputs, shift, boxes.bounds())
        else:
            mixed = blend_with_partner(inputs, shift, mask)
        return masked_batch(mixed, targets, partner, mask)

    @abstractmethod
    def sample_boxes(
        self, inputs: Tensor, partner: Tensor, generator: torch.Generator | None, model: nn.Module | None
    ) -> Boxes:
        """One box per sample, or one shared by the batch; on any device (moved to the batch's)."""


def masked_batch(mixed: Tensor, targets: Tensor, partner: Tensor, mask: Tensor) -> MixedBatch:
    """The `MixedBatch` of a mask method; a shared (1, 1, H, W) mask is expanded as a view, not copied."""
    batch_size = len(mixed)
    return MixedBatch(
        inputs=mixed,
        targets_a=targets,
        targets_b=targets[partner],
        lam=mask_mean(mask).expand(batch_size),
        mask=mask.expand(batch_size, -1, -1, -1),
        partner=partner,
    )

"""Faithfulness of saliency maps: RISE's deletion and insertion curves (Petsiuk et al. 2018,
eclique/RISE `evaluation.py`, `CausalMetric`), batched.

Deletion starts from the image and replaces its pixels, most salient first, by the substrate
(zeros: the mean colour, since inputs are normalised); a faithful map makes the class probability
fall fast, so a *low* area under the curve is good. Insertion starts from a blurred copy and puts
the original pixels back in the same order; a *high* area is good. The probability is the softmax
of the explained class (by default the class the model predicts on the intact image), and the area
is RISE's trapezoid over evenly spaced steps, normalised to [0, 1].

RISE runs one forward pass per step and image, `step` pixels at a time (224 pixels, one row, on
224x224 inputs). Here all the perturbed copies of a chunk of images are built at once from the
pixels' saliency ranks and go through the model in large batches; the default step is likewise one
image row. Hand-written because grad-cam's metrics (ROAD, confidence change) measure a single
perturbation level, not the curve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn

from mixlib.model_state import borrowed_for_evaluation
from mixlib.registry import Registry

BLUR_KERNEL_SIZE = 11  # RISE: gkern(klen=11, nsig=5)
BLUR_SIGMA = 5.0

# mode -> (start image, finish image) from the original images
CAUSAL_MODES: Registry[Callable[[Tensor], tuple[Tensor, Tensor]]] = Registry("mode")
CAUSAL_MODES.register("deletion")(lambda images: (images, torch.zeros_like(images)))
CAUSAL_MODES.register("insertion")(
    lambda images: (TF.gaussian_blur(images, [BLUR_KERNEL_SIZE] * 2, [BLUR_SIGMA] * 2), images)
)


def causal_curves(
    model: nn.Module,
    images: Tensor,
    saliency: np.ndarray | Tensor,
    mode: str = "deletion",
    targets: Sequence[int] | Tensor | np.ndarray | None = None,
    step: int | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Class probability after each step of deletion or insertion: (B, n_steps + 1), RISE's `single_run`.

    `saliency` is (B, H, W) at the images' resolution; `step` pixels change per step (default: the
    image width, one row's worth, as RISE's 224 on 224x224 images); `batch_size` bounds the perturbed
    images per forward pass.
    """
    make_start_finish = CAUSAL_MODES.get(mode, "mode")
    saliency = _check(images, saliency, batch_size)
    height, width = images.shape[-2:]
    step = width if step is None else step
    if int(step) != step or not 1 <= step <= height * width:
        raise ValueError(f"step must be an integer number of pixels in [1, {height * width}]; got {step!r}")
    n_steps = -(-height * width // step)
    ranks = _saliency_ranks(saliency).to(images.device)
    images_per_chunk = max(1, batch_size // (n_steps + 1))
    with borrowed_for_evaluation(model), torch.no_grad():
        classes = _explained_classes(model, images, targets, batch_size)
        curves = [
            _chunk_curves(
                model,
                images[i : i + images_per_chunk],
                ranks[i : i + images_per_chunk],
                classes[i : i + images_per_chunk],
                make_start_finish,
                step,
                n_steps,
                batch_size,
            )
            for i in range(0, len(images), images_per_chunk)
        ]
    return torch.cat(curves).cpu().numpy()


def area_under_curve(curves: np.ndarray) -> np.ndarray:
    """RISE's `auc`: trapezoid rule over evenly spaced steps, normalised by the number of intervals."""
    curves = np.asarray(curves, dtype=np.float64)
    return (curves.sum(axis=-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / (curves.shape[-1] - 1)


def deletion_auc(model: nn.Module, images: Tensor, saliency, **options) -> np.ndarray:
    """Per-image deletion AUC (lower = more faithful)."""
    return area_under_curve(causal_curves(model, images, saliency, "deletion", **options))


def insertion_auc(model: nn.Module, images: Tensor, saliency, **options) -> np.ndarray:
    """Per-image insertion AUC (higher = more faithful)."""
    return area_under_curve(causal_curves(model, images, saliency, "insertion", **options))


def _check(images: Tensor, saliency, batch_size: int) -> Tensor:
    if not isinstance(images, Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError("images must be a non-empty (B, C, H, W) tensor")
    saliency = saliency if isinstance(saliency, Tensor) else torch.as_tensor(np.asarray(saliency))
    if saliency.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(
            f"saliency must be (B, H, W) = {(images.shape[0], *images.shape[-2:])}; "
            f"got {tuple(saliency.shape)}"
        )
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    return saliency


def _saliency_ranks(saliency: Tensor) -> Tensor:
    """Rank of every pixel in descending saliency (0 = most salient), ties in row-major order."""
    flat = saliency.flatten(1).float()
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1]).expand_as(order))
    return ranks.view_as(saliency)


def _explained_classes(model: nn.Module, images: Tensor, targets, batch_size: int) -> Tensor:
    if targets is not None:
        classes = torch.as_tensor(np.asarray(targets)).reshape(-1).long().to(images.device)
        if len(classes) != len(images):
            raise ValueError(f"targets must have one class per image ({len(images)}); got {len(classes)}")
        return classes
    return torch.cat(
        [model(images[i : i + batch_size]).argmax(dim=1) for i in range(0, len(images), batch_size)]
    )


def _chunk_curves(model, images, ranks, classes, make_start_finish, step, n_steps, batch_size) -> Tensor:
    start, finish = make_start_finish(images)
    revealed = torch.arange(n_steps + 1, device=images.device) * step  # pixels swapped before each step
    swapped = (ranks[:, None] < revealed[None, :, None, None])[:, :, None]  # (b, steps, 1, H, W)
    perturbed = torch.where(swapped, finish[:, None], start[:, None]).flatten(0, 1)
    probabilities = torch.cat(
        [model(perturbed[i : i + batch_size]).softmax(dim=1) for i in range(0, len(perturbed), batch_size)]
    )
    wanted = classes.repeat_interleave(n_steps + 1)
    return probabilities[torch.arange(len(wanted)), wanted].view(len(images), n_steps + 1)

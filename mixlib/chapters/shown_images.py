"""The test images the chapters show and the ground-truth box drawn on them, shared by each
configuration's chapter (its CAM grid) and the CAM chapter (its gallery), so both show the same
images drawn the same way."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt


def sample_indices(labels: Sequence[int], per_class: int = 1) -> list[int]:
    """The first `per_class` test images of every class: the same images in every chapter."""
    chosen: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        if len(chosen.setdefault(int(label), [])) < per_class:
            chosen[int(label)].append(index)
    return [i for label in sorted(chosen) for i in chosen[label]]


def draw_box(axis: plt.Axes, box: Sequence[float]) -> None:
    x0, y0, x1, y1 = box
    axis.add_patch(
        plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime", lw=1.2)
    )

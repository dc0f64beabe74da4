"""Simulated reports for the calibration tests of `mixlib.chapters.statistics`.

A report is K configurations plus a baseline, S seeds and N test images. Whether run (c, s) gets
image i right is 1[difficulty_i + seed_s + seed_image_si + run_cs + shift_c + logistic noise > 0]:
image difficulty is shared by every run, the seed's effects (its initial weights) by every run of
that seed, and accuracy moves in whole images. Under the null every shift_c is 0, so every
configuration equals the baseline in distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixlib.chapters.image_scores import resample_counts
from mixlib.chapters.statistics import compare_with_reference

DIFFICULTY_MEAN, DIFFICULTY_SD = 0.6, 1.5
SEED_SD, SEED_IMAGE_SD, RUN_SD = 0.3, 0.6, 0.15


@dataclass(frozen=True)
class Shape:
    seeds: int
    images: int
    configurations: int  # besides the baseline


def simulate_correct(shape: Shape, shifts: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """(K + 1, S, N) 0/1 correctness; configuration 0 is the baseline, `shifts` (K + 1,) on the logit."""
    runs = shape.configurations + 1
    difficulty = generator.normal(DIFFICULTY_MEAN, DIFFICULTY_SD, shape.images)
    seed = generator.normal(0, SEED_SD, shape.seeds)[:, None]
    seed_image = generator.normal(0, SEED_IMAGE_SD, (shape.seeds, shape.images))
    run = generator.normal(0, RUN_SD, (runs, shape.seeds, 1))
    noise = generator.logistic(0, 1, (runs, shape.seeds, shape.images))
    logit = difficulty + seed + seed_image + run + shifts[:, None, None]
    return (logit + noise > 0).astype(float)


def simulated_report(
    shape: Shape, shifts: np.ndarray, generator: np.random.Generator, resamples: int = 200
) -> pd.DataFrame:
    """The comparison table of test accuracy against the baseline for one simulated report."""
    correct = simulate_correct(shape, shifts, generator)
    names = ["baseline", *(f"c{k}" for k in range(shape.configurations))]
    counts = resample_counts(shape.images, resamples, seed=int(generator.integers(2**31)))
    rows, resampled = [], {}
    for c, name in enumerate(names):
        for s in range(shape.seeds):
            rows.append({"configuration": name, "seed": s, "accuracy": correct[c, s].mean()})
            resampled[(name, s)] = counts @ correct[c, s] / shape.images
    runs = pd.DataFrame(rows)
    floor = (1.0 / shape.images) ** 2
    return compare_with_reference(runs, "accuracy", "baseline", "higher", resampled, shape.images, floor)


def expected_accuracy(shift: float, samples: int = 200_000, seed: int = 0) -> float:
    """The model's mean accuracy at a logit shift (Monte Carlo over every random effect)."""
    generator = np.random.default_rng(seed)
    spread = np.sqrt(DIFFICULTY_SD**2 + SEED_SD**2 + SEED_IMAGE_SD**2 + RUN_SD**2)
    logit = generator.normal(DIFFICULTY_MEAN + shift, spread, samples)
    return float((1 / (1 + np.exp(-logit))).mean())

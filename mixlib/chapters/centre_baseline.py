"""The centre-Gaussian map as a reference for MaxBoxAccV2: its scores on a profile's splits, and each
configuration's paired comparison with it on the same test images.

The CAM chapter states the comparison and the findings page answers its localisation question with
it, so both read it from here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mixlib.chapters.image_scores import IMAGE_SCORES, TestSample, compare_runs
from mixlib.chapters.statistics import FixedReference
from mixlib.evaluation import centre_baseline_scores
from mixlib.run_data import build_eval_dataset, load_config_splits
from mixlib.runs import RunFolder

CENTRE_GUESS = "centre guess"


def centre_baseline_reference(runs: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Scores of the centre-Gaussian map on the splits of the first of `runs` and their per-image form
    (({}, empty) without boxes); all runs of a profile share the splits."""
    config = RunFolder(Path(runs["run_dir"].iloc[0])).read_config()
    splits = load_config_splits(config)
    return centre_baseline_scores(
        build_eval_dataset(config, splits.val), build_eval_dataset(config, splits.test)
    )


def compare_with_centre(
    runs: pd.DataFrame, centre: tuple[dict, pd.DataFrame], sample: TestSample | None
) -> pd.DataFrame:
    """Each configuration's MaxBoxAccV2 against the centre guess's on the same test images (a
    reference without seed noise), Holm-corrected across the configurations."""
    scores, per_image = centre
    resampled = (
        IMAGE_SCORES["max_box_acc_v2"].compute(per_image, sample.counts)
        if sample is not None and len(per_image) == sample.images
        else None
    )
    reference = FixedReference(CENTRE_GUESS, scores["max_box_acc_v2"], resampled)
    return compare_runs(runs, "max_box_acc_v2", reference, "higher", sample)

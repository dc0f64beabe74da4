"""Every score the book shows, defined once: its column heading, its name in sentences, the factor
from the stored value to the shown one, its decimals and which way it is better; and the flat view of
a run's metrics.json that every chapter reads scores from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixlib.cams import IOU_THRESHOLDS
from mixlib.chapters.statistics import mean_std_text

NO_BREAK = "\u00a0"


def label_in_header(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its index's name moved into the header row, above the index column. pandas renders
    a named index as a second header row of empty cells, which doubles a narrow table's header."""
    if frame.index.nlevels > 1 or frame.columns.nlevels > 1 or frame.index.name is None:
        return frame
    return frame.rename_axis(index=None, columns=frame.index.name)


@dataclass(frozen=True)
class Score:
    heading: str  # the column heading, unit included
    name: str  # in sentences and in the headings of comparisons
    scale: float = 1.0  # accuracy-like scores are stored as fractions, localisation percentages as 0-100
    digits: int = 2
    better: str | None = "higher"  # or "lower"; None: neither way is better
    significant: bool = False  # `digits` counts significant figures (times), not decimals

    def decimals(self, shown: float) -> int:
        """The decimals of a value in the shown unit: `digits`, or as many as leave `digits`
        significant figures."""
        if not self.significant or not np.isfinite(shown) or shown == 0:
            return self.digits
        return max(0, self.digits - 1 - math.floor(math.log10(abs(shown))))

    def text(self, value: float) -> str:
        """A stored value in the shown unit and precision ('–' for none)."""
        shown = value * self.scale
        return f"{shown:.{self.decimals(shown)}f}" if np.isfinite(shown) else "–"

    def mean_std(self, mean: float, std: float) -> str:
        """'mean ± std' in the shown unit, both with the mean's decimals, joined by no-break spaces so
        that a narrow table column never splits it."""
        text = mean_std_text(mean, std, self.decimals(mean * self.scale), self.scale)
        return text.replace(" ± ", f"{NO_BREAK}±{NO_BREAK}")


CLASSIFICATION: dict[str, Score] = {
    "accuracy": Score("accuracy %", "accuracy", 100.0, digits=1),
    "macro_precision": Score("macro precision %", "macro precision", 100.0, digits=1),
    "macro_recall": Score("macro recall %", "macro recall", 100.0, digits=1),
    "macro_f1": Score("macro F1 %", "macro F1", 100.0, digits=1),
    "macro_fpr": Score("macro FPR %", "macro FPR", 100.0, digits=1, better="lower"),
    "ece": Score("ECE % (15 bins)", "ECE", 100.0, better="lower"),
    "nll": Score("test NLL", "test NLL", digits=3, better="lower"),
    "epoch_seconds": Score("s / epoch", "time per epoch", digits=3, better="lower", significant=True),
}
# box accuracy at each IoU threshold, a column of its own: box_acc_0.3 ...
BOX_ACCURACY_COLUMNS = {f"box_acc_{delta:.1f}": f"{delta:.1f}" for delta in IOU_THRESHOLDS}
PART_COVERAGE = ("part_share", "part_ratio", "body_ratio", "background_ratio")
LOCALISATION: dict[str, Score] = {
    "max_box_acc_v2": Score("MaxBoxAccV2 %, τ from val", "MaxBoxAccV2", digits=1),
    "wsolevaluation_max_box_acc_v2": Score(
        "MaxBoxAccV2 %, wsolevaluation (best τ on test)", "MaxBoxAccV2 (wsolevaluation)", digits=1
    ),
    **{
        column: Score(f"box acc. IoU {key} %", f"box accuracy at IoU {key}", digits=1)
        for column, key in BOX_ACCURACY_COLUMNS.items()
    },
    "top1_localisation": Score("top-1 loc. %", "top-1 localisation", digits=1),
    "pointing_game": Score("pointing game %", "pointing game", digits=1),
    "pxap": Score("PxAP", "PxAP", digits=3),
    "part_share": Score("CAM mass on part", "CAM mass on the part", digits=3, better=None),
    "part_ratio": Score("part ratio", "part ratio", better=None),
    "body_ratio": Score("body ratio", "body ratio", better=None),
    "background_ratio": Score("background ratio", "background ratio", better=None),
    "deletion_auc": Score("deletion AUC ↓", "deletion AUC", digits=3, better="lower"),
    "insertion_auc": Score("insertion AUC ↑", "insertion AUC", digits=3),
}
SCORES: dict[str, Score] = {**CLASSIFICATION, **LOCALISATION}
# the classification scores of every run's metrics.json that the results chapter and the findings page
# tabulate per run
SUMMARY_METRICS = ("accuracy", "macro_f1", "ece", "macro_fpr", "epoch_seconds")
# why a dataset without annotation has no scores (the CAM chapter and the findings page say it)
UNAVAILABLE_WITHOUT_BOXES = (
    "This dataset has no bounding boxes and no object masks (an image folder), so these scores are "
    "unavailable: MaxBoxAccV2, the box accuracy at each IoU, top-1 localisation and the pointing game need "
    "a ground-truth box per image; PxAP and the part-versus-whole coverage need the object and part masks "
    "that only the synthetic data has; deletion and insertion AUC need no annotation, but the evaluation "
    "computes them with the box scores, so they are missing too."
)


def localisation_scalars(localisation: Mapping) -> dict:
    """The flat scalar view of one run's `localisation` entry: the `LOCALISATION` scores it has and the
    CAM method (empty for data without boxes)."""
    if not localisation:
        return {}
    row = {key: localisation[key] for key in LOCALISATION if key in localisation}
    row["cam_method"] = localisation.get("cam_method")
    row.update({column: localisation["box_accuracy"][key] for column, key in BOX_ACCURACY_COLUMNS.items()})
    coverage = localisation.get("part_coverage", {})
    row.update({key: coverage[key] for key in PART_COVERAGE if key in coverage})
    return row


def shown_scores(frame: pd.DataFrame, scores: Sequence[str]) -> pd.DataFrame:
    """The given score columns of `frame` (one row per run) as text in their shown unit and precision,
    under their headings; scores the frame lacks or has no value of are left out."""
    present = [score for score in scores if score in frame and frame[score].notna().any()]
    return pd.DataFrame(
        {SCORES[score].heading: frame[score].map(SCORES[score].text) for score in present}, index=frame.index
    )


def run_scores(metrics: Mapping) -> dict:
    """Every scalar score of one run's metrics.json: the `CLASSIFICATION` scores it has, then the
    localisation scalars."""
    return {
        **{key: metrics[key] for key in CLASSIFICATION if key in metrics},
        **localisation_scalars(metrics.get("localisation", {})),
    }

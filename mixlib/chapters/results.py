"""The results chapter (`notebooks/results.ipynb`): every configuration of a profile in one table and
one plot, over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mixlib.chapters.figures import Question, compact_cells
from mixlib.chapters.image_scores import compare_runs, load_test_sample
from mixlib.chapters.scores import SCORES, SUMMARY_METRICS, label_in_header, shown_scores
from mixlib.chapters.statistics import (
    DETECTABLE_RULE,
    TOO_FEW_SEEDS,
    per_configuration,
    smallest_detectable,
)
from mixlib.runs import application_probability, finished_runs

# metrics compared with the baseline (paired by seed, Holm-corrected): the headline table
COMPARED = ("accuracy", "ece")
DETAILS = ("macro_f1", "macro_fpr", "epoch_seconds")


def collect_runs(runs_dir: str | Path, configurations: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """One row per finished run of the given configurations and seeds."""
    rows = []
    for run in finished_runs(runs_dir, configurations, seeds):
        probability = application_probability(run.config)
        rows.append(
            {
                "configuration": run.configuration,
                "method": run.config.method,
                # NaN for plain training
                "application_probability": float("nan") if probability is None else probability,
                "seed": run.seed,
                "run_dir": str(run.folder.path),
                **{m: run.metrics[m] for m in SUMMARY_METRICS},
            }
        )
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Mean and sample std per configuration; for each COMPARED metric, the paired difference to the
    baseline with its Holm-corrected interval and verdict (`mixlib.chapters.statistics`)."""
    table = per_configuration(runs, SUMMARY_METRICS)
    if "application_probability" in runs:  # run tables from collect_runs have it
        table.insert(
            1,
            "application_probability",
            runs.groupby("configuration", sort=False)["application_probability"].first(),
        )
    if baseline not in table.index:
        return table
    table["epoch_time_vs_baseline"] = table["epoch_seconds_mean"] / table.loc[baseline, "epoch_seconds_mean"]
    sample = load_test_sample(runs)
    for metric in COMPARED:
        comparison = compare_runs(runs, metric, baseline, SCORES[metric].better, sample)
        table[f"{metric}_diff"] = comparison["estimate"]
        table[f"{metric}_diff_detectable"] = comparison["detectable"]
        table[f"{metric}_diff_verdict"] = comparison["verdict"]
        question = Question(scale=SCORES[metric].scale, digits=SCORES[metric].digits)
        table[f"{metric}_diff_text"] = compact_cells(comparison, question)
        table.loc[baseline, [f"{metric}_diff_verdict", f"{metric}_diff_text"]] = "baseline"
    return table


def mean_std_column(summary: pd.DataFrame, metric: str) -> list[str]:
    score = SCORES[metric]
    return [
        score.mean_std(m, s) for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_std"], strict=True)
    ]


def headline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """What the results page is about, narrow enough for the text column: accuracy and calibration as
    'mean ± std', each with its paired comparison with the baseline ('estimate [interval] verdict'), and
    the training time per epoch relative to the baseline's."""
    shown = pd.DataFrame(index=summary.index)
    for metric in COMPARED:
        shown[SCORES[metric].heading] = mean_std_column(summary, metric)
        if f"{metric}_diff_text" in summary:
            shown[f"Δ {SCORES[metric].name} vs baseline (pts)"] = summary[f"{metric}_diff_text"]
    if "epoch_time_vs_baseline" in summary:
        shown["epoch time vs baseline"] = summary["epoch_time_vs_baseline"].map(lambda v: f"{v:#.3g}x")
    return label_in_header(shown)


def details_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The rest of each configuration: method, how often a batch was transformed, seeds, the other
    scores ('mean ± std')."""
    shown = pd.DataFrame(index=summary.index)
    shown["method"] = summary["method"]
    if "application_probability" in summary:
        shown["application probability"] = summary["application_probability"].map(
            lambda p: "–" if np.isnan(p) else f"{p:.2f}"
        )
    shown["seeds"] = summary["seeds"]
    for metric in DETAILS:
        shown[SCORES[metric].heading] = mean_std_column(summary, metric)
    return label_in_header(shown)


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and seed, every summary score in its shown unit and precision."""
    return shown_scores(runs.set_index(["configuration", "seed"]), SUMMARY_METRICS)


def detectable_statement(summary: pd.DataFrame) -> str:
    """Markdown: the smallest differences this run could have detected, one per COMPARED metric."""
    if f"{COMPARED[0]}_diff_detectable" not in summary:
        return "There is no configuration named `baseline`, so nothing is compared with it."
    parts = []
    for metric in COMPARED:
        detectable = smallest_detectable(summary[f"{metric}_diff_detectable"])
        name = SCORES[metric].name
        parts.append(
            f"{name} {100 * detectable:.2f} points"
            if np.isfinite(detectable)
            else f"{name}: none ({TOO_FEW_SEEDS})"
        )
    return (
        f"Detectable difference of this run, the median over configurations ({DETECTABLE_RULE}): "
        + "; ".join(parts)
        + ". A smaller true difference may exist and go unseen."
    )


def plot_summary(summary: pd.DataFrame) -> plt.Figure:
    """Accuracy and calibration error per configuration, bars at the mean, error bars one std."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    positions = np.arange(len(summary))
    for axis, metric in zip(axes, COMPARED, strict=True):
        score = SCORES[metric]
        axis.bar(
            positions,
            summary[f"{metric}_mean"] * score.scale,
            yerr=summary[f"{metric}_std"].fillna(0) * score.scale,
            capsize=3,
            color="tab:blue" if metric == "accuracy" else "tab:orange",
        )
        axis.set_xticks(positions, summary.index, rotation=45, ha="right", fontsize=8)
        axis.set_ylabel(f"test {score.heading}")
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_title("accuracy (higher is better)")
    axes[1].set_title("expected calibration error (lower is better)")
    figure.tight_layout()
    return figure

"""The results page: every configuration of a profile in one table and one plot, over seeds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mixlib.mixing import application_probability
from mixlib.report.statistics import (
    DETECTABLE_RULE,
    MIN_PAIRED_SEEDS,
    compare_with_reference,
    comparison_texts,
    mean_std_text,
    per_configuration,
    smallest_detectable,
)

SUMMARY_METRICS = ("accuracy", "macro_f1", "ece", "macro_fpr", "epoch_seconds")
# metrics compared with the baseline (paired by seed, Holm-corrected), the way each is better, and
# their label in the book
COMPARED = {"accuracy": ("higher", "accuracy"), "ece": ("lower", "ECE")}


def collect_runs(runs_dir: str | Path, configurations: Sequence[str]) -> pd.DataFrame:
    """One row per (configuration, seed) run folder that has finished (has `metrics.json`)."""
    rows = []
    for name in configurations:
        for metrics_path in sorted((Path(runs_dir) / name).glob("seed*/metrics.json")):
            metrics = json.loads(metrics_path.read_text())
            config = json.loads((metrics_path.parent / "config.json").read_text())
            rows.append(
                {
                    "configuration": name,
                    "method": config["method"],
                    "application_probability": run_probability(config),
                    "seed": metrics["seed"],
                    **{m: metrics[m] for m in SUMMARY_METRICS},
                }
            )
    if not rows:
        raise FileNotFoundError(f"no finished runs under {runs_dir} for {list(configurations)}")
    return pd.DataFrame(rows)


def run_probability(config: dict) -> float:
    """The probability that a run's batches were mixed (NaN for plain training), from its config.json."""
    probability = application_probability(
        config["method"], config.get("method_params") or {}, config.get("mix_probability")
    )
    return float("nan") if probability is None else probability


def summarise(runs: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Mean and sample std per configuration; for each COMPARED metric, the paired difference to the
    baseline with its Holm-corrected interval and verdict (`mixlib.report.statistics`)."""
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
    for metric, (direction, _) in COMPARED.items():
        comparison = compare_with_reference(runs, metric, baseline, direction)
        table[f"{metric}_diff"] = comparison["estimate"]
        table[f"{metric}_diff_detectable"] = comparison["detectable"]
        table[f"{metric}_diff_verdict"] = comparison["verdict"]
        table[f"{metric}_diff_text"] = comparison_texts(comparison, scale=100)
        table.loc[baseline, [f"{metric}_diff_verdict", f"{metric}_diff_text"]] = "baseline"
    return table


def display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Percentages as 'mean ± std' strings and the comparisons with the baseline, for the book."""
    shown = pd.DataFrame(index=summary.index)
    shown["method"] = summary["method"]
    if "application_probability" in summary:
        shown["application probability"] = summary["application_probability"].map(
            lambda p: "–" if np.isnan(p) else f"{p:.2f}"
        )
    shown["seeds"] = summary["seeds"]
    for metric, label, scale in (
        ("accuracy", "accuracy %", 100),
        ("macro_f1", "macro F1 %", 100),
        ("ece", "ECE %", 100),
        ("macro_fpr", "macro FPR %", 100),
        ("epoch_seconds", "s / epoch", 1),
    ):
        shown[label] = [
            mean_std_text(m, s, scale=scale)
            for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_std"], strict=True)
        ]
    if "epoch_time_vs_baseline" in summary:
        shown["epoch time vs baseline"] = summary["epoch_time_vs_baseline"].map(lambda v: f"{v:.2f}x")
    for metric, (_, label) in COMPARED.items():
        if f"{metric}_diff_text" in summary:
            shown[f"Δ {label} vs baseline (pts)"] = summary[f"{metric}_diff_text"]
    return shown


def detectable_statement(summary: pd.DataFrame) -> str:
    """Markdown: the smallest differences this run could have detected, one per COMPARED metric."""
    if f"{next(iter(COMPARED))}_diff_detectable" not in summary:
        return "There is no configuration named `baseline`, so nothing is compared with it."
    parts = []
    for metric, (_, label) in COMPARED.items():
        detectable = smallest_detectable(summary[f"{metric}_diff_detectable"])
        parts.append(
            f"{label} {100 * detectable:.2f} points"
            if np.isfinite(detectable)
            else f"{label}: none (fewer than {MIN_PAIRED_SEEDS} paired seeds)"
        )
    return f"Smallest detectable difference of this run ({DETECTABLE_RULE}): " + "; ".join(parts) + "."


def plot_summary(summary: pd.DataFrame) -> plt.Figure:
    """Accuracy and calibration error per configuration, bars at the mean, error bars one std."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    positions = np.arange(len(summary))
    for axis, metric, label in ((axes[0], "accuracy", "test accuracy %"), (axes[1], "ece", "ECE %")):
        axis.bar(
            positions,
            summary[f"{metric}_mean"] * 100,
            yerr=summary[f"{metric}_std"].fillna(0) * 100,
            capsize=3,
            color="tab:blue" if metric == "accuracy" else "tab:orange",
        )
        axis.set_xticks(positions, summary.index, rotation=45, ha="right", fontsize=8)
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_title("accuracy (higher is better)")
    axes[1].set_title("expected calibration error (lower is better)")
    figure.tight_layout()
    return figure

"""The results page: every configuration of a profile in one table and one plot, over seeds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mixlib.mixing import application_probability

SUMMARY_METRICS = ("accuracy", "macro_f1", "ece", "macro_fpr", "epoch_seconds")
NOISE_STANDARD_ERRORS = 2.0  # a difference smaller than this many standard errors is called noise


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
    """Mean and sample std per configuration; accuracy difference to the baseline and whether it is noise.

    The noise call compares the difference of means with its standard error (Welch): below
    NOISE_STANDARD_ERRORS of them, or with a single seed on either side, the difference is not resolved.
    """
    grouped = runs.groupby("configuration", sort=False)
    table = grouped[list(SUMMARY_METRICS)].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table.insert(0, "seeds", grouped.size())
    if "application_probability" in runs:  # run tables from collect_runs have it
        table.insert(0, "application_probability", grouped["application_probability"].first())
    table.insert(0, "method", grouped["method"].first())
    if baseline in table.index:
        base = table.loc[baseline]
        table["epoch_time_vs_baseline"] = table["epoch_seconds_mean"] / base["epoch_seconds_mean"]
        table["accuracy_diff"] = table["accuracy_mean"] - base["accuracy_mean"]
        standard_error = np.sqrt(
            table["accuracy_std"] ** 2 / table["seeds"] + base["accuracy_std"] ** 2 / base["seeds"]
        )
        table["accuracy_diff_verdict"] = [
            verdict(diff, se, n, base["seeds"]) if name != baseline else "baseline"
            for name, diff, se, n in zip(
                table.index, table["accuracy_diff"], standard_error, table["seeds"], strict=True
            )
        ]
    return table


def verdict(difference: float, standard_error: float, seeds: int, baseline_seeds: int) -> str:
    if seeds < 2 or baseline_seeds < 2:
        return "single seed: not resolved"
    if abs(difference) < NOISE_STANDARD_ERRORS * standard_error:
        return "within noise"
    return "better" if difference > 0 else "worse"


def display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Percentages as 'mean ± std' strings, for the book."""
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
        mean, std = summary[f"{metric}_mean"] * scale, summary[f"{metric}_std"] * scale
        shown[label] = [
            f"{m:.2f} ± {s:.2f}" if np.isfinite(s) else f"{m:.2f}" for m, s in zip(mean, std, strict=True)
        ]
    for column, label in (
        ("epoch_time_vs_baseline", "epoch time vs baseline"),
        ("accuracy_diff", "Δ accuracy (pts)"),
        ("accuracy_diff_verdict", "Δ verdict"),
    ):
        if column in summary:
            values = summary[column]
            shown[label] = (
                values.map(lambda v: f"{v:.2f}x")
                if column == "epoch_time_vs_baseline"
                else ((values * 100).map(lambda v: f"{v:+.2f}") if column == "accuracy_diff" else values)
            )
    return shown


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

"""The Proxy Attention chapter (`notebooks/proxy.ipynb`): example proxies, accuracy and localisation
against the baseline and the best mixing method, the cost of the proxy steps, and a statement of what
the leak-free result shows, written from the numbers.

Everything is read from finished run folders (`mixlib.runs.folder`: parameters, metrics, history, and
the examples a proxy run keeps); nothing is trained here. The best mixing method is
chosen on validation accuracy (the last epoch's `val_accuracy`), never on test results, among the
mixed-sample methods: the erasing baselines, the baseline and Proxy Attention itself do not compete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mixlib.chapters.image_scores import TestSample, load_test_sample
from mixlib.chapters.scores import SCORES
from mixlib.chapters.statistics import (
    NO_DIFFERENCE,
    NOT_RESOLVED,
    TOO_FEW_SEEDS,
    Comparison,
    best_on_validation,
    compare_pairs,
    describe,
    mean_std_text,
    per_configuration,
)
from mixlib.mixing import MIXING, mixes_two_images
from mixlib.runs import FinishedRun, RunFolder, finished_runs

PROXY_METHOD = "proxy"
NO_PROXY = (
    "This profile has no Proxy Attention configuration (`method: proxy`), so there is nothing to report."
)
# the scores every proxy configuration is compared on (all higher-is-better)
COMPARED = ("accuracy", "max_box_acc_v2", "top1_localisation", "pointing_game", "pxap")
PROXY_COLUMNS = (
    "steps",
    "misclassified",
    "made",
    "used",
    "extra_optimizer_steps",
    "seconds",
    "share_of_time",
)
NO_REFERENCE = (
    "No baseline or mixing configuration of this profile has finished runs: nothing to compare with."
)
WITHOUT_PROXIES = "the same training without proxy steps"
THESIS_CLAIM = (
    "The thesis proposes Proxy Attention as a way to improve a classifier by also training on altered "
    "copies of the training images it currently gets wrong. The accuracy gains of its public reference "
    "code come from runs that re-drew the train/validation split at every schedule step and wrote the "
    "proxy images into the dataset folder, so validation images, and proxies of them, were trained on."
)
OUTCOMES = {
    "better": "improves test accuracy detectably, as the thesis claims",
    NO_DIFFERENCE: "shows no detectable difference in test accuracy at this budget; that is not evidence "
    "against the thesis's gain, which may be smaller than this run could detect or need a longer "
    "schedule (see the interval)",
    "worse": "lowers test accuracy detectably at this budget, the opposite of the thesis's claim; a "
    "longer schedule may change that",
    NOT_RESOLVED: f"cannot be judged: {TOO_FEW_SEEDS} (run more seeds)",
}


# -- reading the runs -------------------------------------------------------------------------------


@dataclass
class ProxyReport:
    """The runs of a profile and the roles the chapter compares (None where a role has no run)."""

    runs_dir: Path
    runs: pd.DataFrame  # one row per finished (configuration, seed)
    proxy_names: list[str]
    baseline: str | None
    best_mixing: str | None


def load_report(
    runs_dir: str | Path, configurations: Sequence[str], seeds: Sequence[int], baseline: str = "baseline"
) -> ProxyReport:
    runs = collect_runs(runs_dir, configurations, seeds)
    names = list(dict.fromkeys(runs["configuration"]))
    proxy_names = [n for n in names if (runs.loc[runs["configuration"] == n, "method"] == PROXY_METHOD).all()]
    return ProxyReport(
        runs_dir=Path(runs_dir),
        runs=runs,
        proxy_names=proxy_names,
        baseline=baseline if baseline in names else None,
        best_mixing=best_by_validation(runs),
    )


def collect_runs(runs_dir: str | Path, configurations: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """One row per finished run of the given configurations and seeds."""
    return pd.DataFrame([run_row(run) for run in finished_runs(runs_dir, configurations, seeds)])


# what a run's `setting` leaves out, so that two configurations that train alike compare equal
SETTING_EXCLUDES = ("seed", "method", "method_params")


def run_row(run: FinishedRun) -> dict:
    config, metrics = run.config, run.metrics
    history = run.folder.read_history()
    params = config.method_params
    proxy = metrics.get("proxy", {})
    localisation = metrics.get("localisation", {})
    return {
        "configuration": run.configuration,
        "method": config.method,
        "mixing": params.get("mixing", "none") if config.method == PROXY_METHOD else config.method,
        "method_params": params,
        "setting": {k: v for k, v in config.to_dict().items() if k not in SETTING_EXCLUDES},
        "seed": run.seed,
        "run_dir": str(run.folder.path),
        "accuracy": metrics["accuracy"],
        "val_accuracy": float(history["val_accuracy"].iloc[-1]),
        "training_seconds": float(history["epoch_seconds"].sum()),
        **{key: localisation[key] for key in COMPARED if key in localisation},
        **{f"proxy_{key}": proxy[key] for key in PROXY_COLUMNS if key in proxy},
    }


def mixes_images(method: str) -> bool:
    """Whether a method mixes two images: a mixing method that does (not "none", erasing or "proxy",
    which is a training recipe, not a mixing method)."""
    return method in MIXING and mixes_two_images(MIXING.get(method))


def best_by_validation(runs: pd.DataFrame) -> str | None:
    """The mixed-sample configuration with the highest mean final validation accuracy over seeds."""
    mixing = runs[runs["method"].map(mixes_images)]
    return None if mixing.empty else best_on_validation(mixing)


def references(report: ProxyReport, name: str) -> list[tuple[str, str]]:
    """(role, configuration) pairs a proxy configuration is compared with; a configuration in several
    roles appears once, with its roles joined."""
    candidates = [
        ("the baseline", report.baseline),
        ("the best mixing method by validation accuracy", report.best_mixing),
        (WITHOUT_PROXIES, without_proxies(report.runs, name)),
    ]
    roles: dict[str, list[str]] = {}
    for role, configuration in candidates:
        if configuration is not None:
            roles.setdefault(configuration, []).append(role)
    return [(" and ".join(names), configuration) for configuration, names in roles.items()]


def without_proxies(runs: pd.DataFrame, name: str) -> str | None:
    """The configuration that trains exactly as `name` but without proxy steps, if the profile has one."""
    mine = runs[runs["configuration"] == name].iloc[0]
    inner = {"method": mine["mixing"], "params": mine["method_params"].get("mixing_params", {})}
    for _, row in runs.drop_duplicates("configuration").iterrows():
        if (row["method"], row["method_params"], row["setting"]) == (
            inner["method"],
            inner["params"],
            mine["setting"],
        ):
            return str(row["configuration"])
    return None


# -- tables -----------------------------------------------------------------------------------------


def settings_table(report: ProxyReport) -> pd.DataFrame:
    """The method_params of every proxy configuration (what differs from the defaults)."""
    rows = {
        name: report.runs.loc[report.runs["configuration"] == name, "method_params"].iloc[0]
        for name in report.proxy_names
    }
    return pd.DataFrame(
        {name: {k: str(v) for k, v in params.items()} for name, params in rows.items()}
    ).fillna("(default)")


def comparisons(report: ProxyReport) -> pd.DataFrame:
    """Every proxy configuration against its references, per metric: means, spreads, the paired
    difference and its verdict. The comparisons of one metric are one Holm family."""
    rows = []
    pairs = [(name, role, ref) for name in report.proxy_names for role, ref in references(report, name)]
    sample = load_test_sample(report.runs)
    for metric in COMPARED:
        if metric not in report.runs:
            continue
        label, scale = SCORES[metric].heading, SCORES[metric].scale
        per_seed = report.runs.pivot(index="seed", columns="configuration", values=metric) * scale
        scored = [
            (n, role, ref)
            for n, role, ref in pairs
            if per_seed[n].notna().any() and per_seed[ref].notna().any()
        ]
        results = compare_scaled(report.runs, metric, scale, [(n, ref) for n, _, ref in scored], sample)
        rows.extend(
            comparison_row(per_seed, name, ref, role, label, results[(name, ref)])
            for name, role, ref in scored
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def compare_scaled(
    runs: pd.DataFrame,
    metric: str,
    scale: float,
    pairs: Sequence[tuple[str, str]],
    sample: TestSample | None,
) -> dict[tuple[str, str], Comparison]:
    """The pairs as one Holm family (`compare_pairs`), with the test-sample part where the metric has a
    per-image form, in the book's units (`scale`)."""
    scaled = runs.assign(**{metric: runs[metric] * scale})
    if sample is None or not sample.has(metric):
        return compare_pairs(scaled, metric, pairs, "higher")
    resampled = {run: values * scale for run, values in sample.resampled(metric).items()}
    floor = sample.floor(metric) * scale**2
    return compare_pairs(scaled, metric, pairs, "higher", resampled, sample.images, floor)


COMPARISON_COLUMNS = (
    "proxy configuration",
    "compared with",
    "reference",
    "role",
    "metric",
    "proxy mean",
    "proxy std",
    "reference mean",
    "reference std",
    "seeds",
    "difference",
    "verdict",
    "comparison",
)


def comparison_row(
    per_seed: pd.DataFrame, name: str, reference: str, role: str, label: str, result: Comparison
) -> dict:
    spread = describe(per_seed[[name, reference]])
    return {
        "proxy configuration": name,
        "compared with": f"{reference}: {role}",
        "reference": reference,
        "role": role,
        "metric": label,
        "proxy mean": spread.loc[name, "mean"],
        "proxy std": spread.loc[name, "std"],
        "reference mean": spread.loc[reference, "mean"],
        "reference std": spread.loc[reference, "std"],
        "seeds": result.seeds,
        "difference": result.estimate,
        "verdict": result.verdict,
        "comparison": result.text(),
    }


def comparison_tables(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The comparison for the book: one narrow table per proxy configuration and reference (its title,
    then one row per metric with 'mean ± std' strings), so that none is wider than the text column."""
    parts = []
    for (name, compared), part in table.groupby(["proxy configuration", "compared with"], sort=False):
        shown = pd.DataFrame(index=pd.Index(part["metric"], name="metric"))
        shown["paired seeds"] = part["seeds"].to_numpy()
        shown["proxy"] = [
            mean_std_text(m, s) for m, s in zip(part["proxy mean"], part["proxy std"], strict=True)
        ]
        shown["reference"] = [
            mean_std_text(m, s) for m, s in zip(part["reference mean"], part["reference std"], strict=True)
        ]
        shown["Δ (paired, Holm 95 %)"] = part["comparison"].to_numpy()
        parts.append((f"`{name}` against {compared}", shown))
    return parts


def cost_table(report: ProxyReport) -> pd.DataFrame:
    """Per proxy configuration, means over seeds: what the proxy steps made, used and cost."""
    runs = report.runs
    baseline_seconds = (
        runs.loc[runs["configuration"] == report.baseline, "training_seconds"].mean()
        if report.baseline
        else np.nan
    )
    rows = {}
    for name in report.proxy_names:
        mine = runs[runs["configuration"] == name]
        steps = mine["proxy_steps"].replace(0, np.nan)
        total = mine["training_seconds"] + mine["proxy_seconds"]
        rows[name] = {
            "proxy epochs": mine["proxy_steps"].mean(),
            "misclassified training images per step": (mine["proxy_misclassified"] / steps).mean(),
            "proxies made per step": (mine["proxy_made"] / steps).mean(),
            "proxy images trained on (image-epochs)": mine["proxy_used"].mean(),
            "extra optimiser steps": mine["proxy_extra_optimizer_steps"].mean(),
            "seconds per proxy step": (mine["proxy_seconds"] / steps).mean(),
            "proxy seconds per run": mine["proxy_seconds"].mean(),
            "share of training time %": 100 * mine["proxy_share_of_time"].mean(),
            "training time vs baseline": total.mean() / baseline_seconds,
        }
    return pd.DataFrame(rows).dropna(how="all").round(2)


# -- figures ----------------------------------------------------------------------------------------


def read_examples(report: ProxyReport, name: str) -> dict | None:
    """The examples the first seed of a proxy configuration kept (None if it made no proxy)."""
    folders = report.runs.loc[report.runs["configuration"] == name, "run_dir"]
    path = RunFolder(Path(folders.iloc[0])).proxy_examples
    return torch.load(path, weights_only=True) if path.is_file() else None


def plot_examples(examples: dict, title: str, count: int = 8) -> plt.Figure:
    """Columns: training images the model got wrong. Rows: original, CAM, proxy, what changed."""
    shown = min(count, len(examples["labels"]))
    names = examples["class_names"]
    figure, axes = plt.subplots(4, shown, figsize=(1.45 * shown + 0.8, 6.2), squeeze=False)
    originals = examples["originals"][:shown].permute(0, 2, 3, 1).numpy()
    proxies = examples["proxies"][:shown].permute(0, 2, 3, 1).numpy()
    change = np.abs(originals.astype(np.int16) - proxies.astype(np.int16)).mean(axis=-1)
    for column in range(shown):
        cam = examples["cams"][column].numpy()
        axes[0, column].imshow(originals[column])
        true, guess = (names[int(examples[key][column])] for key in ("labels", "predicted"))
        axes[0, column].set_title(f"{true[:16]}\npred: {guess[:16]}", fontsize=6)
        axes[1, column].imshow(originals[column])
        axes[1, column].imshow(cam, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes[1, column].contour(cam > examples["threshold"], levels=[0.5], colors="white", linewidths=0.8)
        axes[2, column].imshow(proxies[column])
        axes[3, column].imshow(change[column], cmap="magma", vmin=0, vmax=max(1.0, float(change.max())))
    for row, label in enumerate(("original", "CAM (white: > threshold)", "proxy", "|proxy - original|")):
        axes[row, 0].set_ylabel(label, fontsize=7)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"{title}: first proxy step (epoch {examples['epoch']})", fontsize=9)
    figure.tight_layout()
    return figure


def plot_accuracy(report: ProxyReport) -> plt.Figure:
    """Test accuracy, mean ± std over seeds, of every proxy configuration and its references."""
    names = list(
        dict.fromkeys([c for n in report.proxy_names for _, c in references(report, n)] + report.proxy_names)
    )
    columns = ["accuracy_mean", "accuracy_std"]
    spread = per_configuration(report.runs, ["accuracy"]).loc[names, columns] * SCORES["accuracy"].scale
    means, stds = spread["accuracy_mean"], spread["accuracy_std"].fillna(0)
    colours = ["tab:red" if n in report.proxy_names else "tab:blue" for n in names]
    figure, axis = plt.subplots(figsize=(1.1 * len(names) + 2.5, 3.4))
    axis.bar(range(len(names)), means, yerr=stds, capsize=3, color=colours)
    axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    axis.set(ylabel="test accuracy %", title="Proxy Attention (red) and its references (blue), mean ± std")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


# -- the statement ----------------------------------------------------------------------------------


def conclusion(report: ProxyReport) -> str:
    """What the leak-free runs show about the thesis's claim, written from the comparison table."""
    table = comparisons(report)
    costs = cost_table(report)
    paragraphs = [THESIS_CLAIM]
    for name in report.proxy_names:
        paragraphs.append(
            configuration_statement(name, table[table["proxy configuration"] == name], costs[name])
        )
    return "\n\n".join(paragraphs)


def configuration_statement(name: str, table: pd.DataFrame, costs: pd.Series) -> str:
    accuracy = table[table["metric"] == SCORES["accuracy"].heading]
    if accuracy.empty:
        return f"`{name}`: {NO_REFERENCE}"
    # the main comparison is the ablation (same training, no proxy steps) where the profile has it
    ablation = accuracy[accuracy["role"].str.contains(WITHOUT_PROXIES)]
    first = (ablation if len(ablation) else accuracy).iloc[0]
    sentences = [
        f"With the split fixed for the whole run and proxies only ever in the training set, `{name}` "
        f"reaches {mean_std_text(first['proxy mean'], first['proxy std'])} % test accuracy "
        "(mean ± std over seeds)."
    ]
    for _, row in accuracy.iterrows():
        reference = mean_std_text(row["reference mean"], row["reference std"])
        sentences.append(
            f"Against {row['role']}, `{row['reference']}` ({reference} %), the paired difference over "
            f"{row['seeds']} seed(s) is {row['difference']:+.2f} points: {row['comparison']}."
        )
    localisation = table[(table["metric"] != SCORES["accuracy"].heading) & (table["role"] == first["role"])]
    if not localisation.empty:
        changes = "; ".join(
            f"{row['metric']} {row['difference']:+.2f} ({row['comparison']})"
            for _, row in localisation.iterrows()
        )
        sentences.append(f"Localisation against `{first['reference']}`: {changes}.")
    share = costs["share of training time %"]
    sentences.append(
        f"So, leak-free, Proxy Attention {OUTCOMES[first['verdict']]}, compared with `{first['reference']}` "
        f"({first['role']}). "
        f"Its proxy steps took {share:.1f} % of the run's training time."
    )
    return " ".join(sentences)


def overview(report: ProxyReport, profile_name: str, profile_title: str) -> str:
    """The chapter's opening lines: which configurations play which role."""
    if not report.proxy_names:
        return f"Profile **{profile_name}** ({profile_title}). {NO_PROXY}"
    baseline = f"`{report.baseline}`" if report.baseline else "none (no configuration of that name)"
    best = f"`{report.best_mixing}`" if report.best_mixing else "none (no mixing configuration)"
    names = ", ".join(f"`{n}`" for n in report.proxy_names)
    return (
        f"Profile **{profile_name}** ({profile_title}). Proxy Attention configuration(s): {names}, "
        f"{len(report.runs)} finished run(s) in all, read from `{report.runs_dir}`. Baseline: {baseline}. "
        f"Best mixing method by mean final validation accuracy: {best}."
    )

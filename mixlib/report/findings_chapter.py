"""The findings page (`notebooks/findings.ipynb`): the report's answer to each of its questions,
written from the run's numbers, each with its interval and the command that reproduces it, and the
published figures of other papers' settings beside them.

Every comparison comes from `mixlib.report.statistics` (paired by seed, Holm-corrected across the
configurations), so the page and the chapters never disagree. The configuration to recommend is
chosen on validation accuracy; the test split only reports how it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mixlib.config import RunConfig
from mixlib.latency.table import latency_report, onnx_stem
from mixlib.models import choose_output_stride, create_model
from mixlib.report.cams_chapter import (
    UNAVAILABLE_WITHOUT_BOXES,
    centre_baseline_reference,
    compare_with_centre,
)
from mixlib.report.profiles import available_profiles
from mixlib.report.results_chapter import SUMMARY_METRICS
from mixlib.report.scores import LOCALISATION, SCORES, run_scores
from mixlib.report.statistics import (
    DETECTABLE_RULE,
    MIN_PAIRED_SEEDS,
    NO_DIFFERENCE,
    best_on_validation,
    compare_with_reference,
    comparison_texts,
    mean_ratio,
    mean_std_text,
    per_configuration,
    smallest_detectable,
)
from mixlib.runs import FinishedRun, finished_runs

# found from the package, as the mixing chapter finds methods.yml: nbval runs templates in notebooks/
PUBLISHED = Path(__file__).resolve().parents[2] / "book" / "published.yml"
MASK_SCORES = ("PxAP", "part-versus-whole coverage")
ORIN_PRECISIONS = ("fp16", "int8")


@dataclass
class Findings:
    """The finished runs of a profile and what the page needs to read them."""

    profile_name: str
    runs_dir: Path
    configurations: list[str]
    runs: pd.DataFrame  # one row per finished (configuration, seed), with its folder
    config: RunConfig  # the first run's settings (shared by all configurations but the method)
    num_classes: int
    baseline: str | None

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.runs["seed"]))

    @property
    def has_boxes(self) -> bool:
        return bool(self.runs["max_box_acc_v2"].notna().any())

    @property
    def has_masks(self) -> bool:
        return bool(self.runs["part_ratio"].notna().any())


def load_findings(
    profile_name: str,
    runs_dir: str | Path,
    configurations: Sequence[str],
    seeds: Sequence[int],
    baseline: str = "baseline",
) -> Findings:
    finished = finished_runs(runs_dir, configurations, seeds)
    runs = collect(finished)
    return Findings(
        profile_name=profile_name,
        runs_dir=Path(runs_dir),
        configurations=list(dict.fromkeys(runs["configuration"])),
        runs=runs,
        config=finished[0].config,
        num_classes=len(finished[0].metrics["confusion_matrix"]),
        baseline=baseline if baseline in set(runs["configuration"]) else None,
    )


def collect(finished: Sequence[FinishedRun]) -> pd.DataFrame:
    """One row per finished run: its folder, the results page's metrics, the last validation accuracy,
    and the localisation scalars (NaN where the data has none)."""
    rows = [
        {
            "configuration": run.configuration,
            "method": run.config.method,
            "seed": run.seed,
            "run_dir": str(run.folder.path),
            **{metric: run.metrics[metric] for metric in SUMMARY_METRICS},
            "val_accuracy": float(run.folder.read_history()["val_accuracy"].iloc[-1]),
            **run_scores(run.metrics),
        }
        for run in finished
    ]
    columns = ["configuration", "method", "seed", "run_dir", *SUMMARY_METRICS, "val_accuracy", *LOCALISATION]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))


# --------------------------------------------------------------------------- commands


def report_command(findings: Findings) -> str:
    """The command that reruns the profile (unchanged runs are reused) and rebuilds this page."""
    profile = (
        findings.profile_name if findings.profile_name in available_profiles() else "<the profile's .yml>"
    )
    data = f" --data-root {findings.config.data_root}" if findings.config.data_root else ""
    return f"python -m mixlib report --profile {profile}{data}"


def reproduce(command: str) -> str:
    return f" *Reproduce:* `{command}`."


# --------------------------------------------------------------------------- the answers


def overview(findings: Findings, profile_title: str) -> str:
    config = findings.config
    size = cam_map_size(config)
    return (
        f"Profile **{findings.profile_name}** ({profile_title}): {len(findings.configurations)} "
        f"configuration(s), {len(findings.seeds)} seed(s) ({', '.join(map(str, findings.seeds))}), "
        f"{config.epochs} epoch(s), `{config.model}` at {config.image_size} px, {config.images_per_class} "
        f"training images per class, CAM maps of {size}x{size} cells. Every comparison below is paired "
        f"by seed (runs with the same seed share the split and the initial weights): the mean per-seed "
        f"difference with a 95 % t-interval over seeds, Holm-corrected across the configurations; "
        f"*better* or *worse* only when the corrected interval excludes no difference, *not resolved* "
        f"with fewer than {MIN_PAIRED_SEEDS} paired seeds. The configuration to use is chosen on "
        f"validation accuracy; the test split only reports how it does."
    )


def cam_map_size(config: RunConfig) -> int:
    stride = choose_output_stride(config.image_size, config.min_feature_size) if config.small_input else 32
    return max(1, config.image_size // stride)


def recommended(findings: Findings) -> str:
    """The configuration to use: the highest mean final validation accuracy."""
    return best_on_validation(findings.runs)


def family_sentence(
    table: pd.DataFrame, what: str, scale: float, digits: int, unit: str, reference: str = "the baseline"
) -> str:
    """How many comparisons of one family came out which way, naming the detectable ones."""
    texts = comparison_texts(table, scale, digits, unit)
    resolved = table[table["verdict"] != "not resolved"]
    groups = []
    for word in ("better", "worse", "higher", "lower"):
        names = table.index[table["verdict"] == word]
        if len(names):
            listed = ", ".join(f"`{n}` ({texts[n].split(', ', 1)[1]})" for n in names)
            groups.append(f"{len(names)} {word} ({listed})")
    unresolved = len(table) - len(resolved)
    quiet = int((table["verdict"] == NO_DIFFERENCE).sum())
    parts = [*groups, *([f"{quiet} with no detectable difference"] if quiet else [])] if groups else []
    if unresolved:
        parts.append(f"{unresolved} not resolved (fewer than {MIN_PAIRED_SEEDS} paired seeds)")
    if not groups and quiet:
        widest = resolved.loc[(resolved["high"] - resolved["low"]).idxmax()]
        parts.insert(
            0,
            f"no configuration differs detectably from {reference} at this budget (widest corrected "
            f"interval [{widest['low'] * scale:+.{digits}f}, {widest['high'] * scale:+.{digits}f}]{unit}, "
            f"`{widest.name}`)",
        )
    detectable = smallest_detectable(table["detectable"])
    could = (
        f"; the run could have detected differences of about {detectable * scale:.{digits}f}{unit} "
        f"({DETECTABLE_RULE})"
        if np.isfinite(detectable)
        else ""
    )
    return (
        f"Against {reference} on {what}, of {len(table)} configuration(s): " + "; ".join(parts) + could + "."
    )


def accuracy_answer(findings: Findings) -> str:
    """Best accuracy and calibration: the family verdicts and the configuration chosen on validation."""
    if findings.baseline is None:
        return "There is no configuration named `baseline`, so nothing is compared with it."
    runs, baseline = findings.runs, findings.baseline
    accuracy = compare_with_reference(runs, "accuracy", baseline, "higher")
    ece = compare_with_reference(runs, "ece", baseline, "lower")
    best = recommended(findings)
    means = per_configuration(runs, ["accuracy", "ece"])[["accuracy_mean", "ece_mean"]] * 100
    means.columns = ["accuracy", "ece"]
    if best == baseline:
        choice = (
            f"The baseline itself has the highest mean validation accuracy; its test accuracy is "
            f"{means.loc[baseline, 'accuracy']:.2f} % and its ECE {means.loc[baseline, 'ece']:.2f} %."
        )
    else:
        choice = (
            f"Chosen on mean validation accuracy, the configuration to use is `{best}`: test accuracy "
            f"{means.loc[best, 'accuracy']:.2f} % against the baseline's "
            f"{means.loc[baseline, 'accuracy']:.2f} % "
            f"({comparison_texts(accuracy, 100, 2, ' pts')[best]}), ECE {means.loc[best, 'ece']:.2f} % "
            f"against {means.loc[baseline, 'ece']:.2f} % ({comparison_texts(ece, 100, 2, ' pts')[best]})."
        )
    command = reproduce(report_command(findings))
    return "\n".join(
        [
            f"- **Accuracy.** {family_sentence(accuracy, 'test accuracy', 100, 2, ' pts')}{command}",
            f"- **Calibration** (expected calibration error, lower is better). "
            f"{family_sentence(ece, 'ECE', 100, 2, ' pts')}{command}",
            f"- **Recommendation.** {choice}{command}",
        ]
    )


def localisation_answer(findings: Findings) -> str:
    """The discriminative region problem: CAMs against the baseline's and the centre guess."""
    if not findings.has_boxes:
        return (
            f"{UNAVAILABLE_WITHOUT_BOXES} The discriminative region problem is therefore not measured on "
            "this data; the CAM chapter shows the maps only."
        )
    command = reproduce(report_command(findings))
    centre = centre_baseline_reference(findings.runs)["max_box_acc_v2"]
    against_centre = compare_with_centre(findings.runs, centre)
    size = cam_map_size(findings.config)
    lines = [
        f"- **CAMs against a fixed guess.** A centre-Gaussian map that uses no model scores MaxBoxAccV2 "
        f"{centre:.1f} % on this test split. "
        + family_sentence(against_centre, "MaxBoxAccV2", 1, 1, " pts", "this centre guess")
        + distance_from_centre(findings, against_centre)
        + f" (CAM maps of {size}x{size} cells; Choe et al. 2020 score 14x14 or 28x28 maps.){command}"
    ]
    if findings.baseline is not None:
        boxes = compare_with_reference(findings.runs, "max_box_acc_v2", findings.baseline, "higher")
        lines.append(f"- **Localisation.** {family_sentence(boxes, 'MaxBoxAccV2', 1, 1, ' pts')}{command}")
    if findings.has_masks and findings.baseline is not None:
        lines.append(f"- **Part versus whole.** {part_sentence(findings)}{command}")
    elif not findings.has_masks:
        lines.append(
            f"- {' and '.join(MASK_SCORES)} are unavailable: they need object and part masks, which only "
            "the synthetic data has."
        )
    return "\n".join(lines)


def distance_from_centre(findings: Findings, against_centre: pd.DataFrame) -> str:
    """How far the baseline's CAMs and those of the configuration chosen on validation are from the
    centre guess, each with its corrected interval."""
    texts = comparison_texts(against_centre, 1, 1, " pts")
    named = dict.fromkeys(n for n in (findings.baseline, recommended(findings)) if n is not None)
    distances = [
        f"`{name}` {against_centre.loc[name, 'estimate']:+.1f} pts ({texts[name]})" for name in named
    ]
    return " Distance from the centre guess: " + "; ".join(distances) + "."


def part_sentence(findings: Findings) -> str:
    runs, baseline = findings.runs, findings.baseline
    base = runs[runs["configuration"] == baseline][["part_ratio", "body_ratio"]].mean()
    part = compare_with_reference(runs, "part_ratio", baseline, None)
    return (
        f"The baseline's CAM puts {base['part_ratio']:.2f}x its area share of mass on the distinctive "
        f"part and {base['body_ratio']:.2f}x on the rest of the body (1 = no preference; a part ratio "
        f"far above the body ratio is the discriminative region problem). "
        + family_sentence(part, "the part ratio", 1, 2, "")
    )


def cost_comparison(findings: Findings) -> pd.DataFrame:
    """Epoch time of each configuration over the baseline's: geometric mean of the per-seed ratios with
    its paired t-interval on the log scale, Holm-corrected."""
    return compare_with_reference(findings.runs, "epoch_seconds", findings.baseline, "lower", mean_ratio)


def cost_answer(findings: Findings) -> str:
    if findings.baseline is None or len(findings.configurations) < 2:
        return "Training cost is given relative to the baseline, and this run has no baseline to compare."
    table = cost_comparison(findings)
    ratios = "; ".join(ratio_text(name, row) for name, row in table.iterrows())
    slower = table.index[table["verdict"] == "worse"].tolist()
    faster = table.index[table["verdict"] == "better"].tolist()
    verdicts = (
        f"Detectably slower than the baseline: {', '.join(f'`{n}`' for n in slower) or 'none'}; detectably "
        f"faster: {', '.join(f'`{n}`' for n in faster) or 'none'}."
    )
    return (
        f"- **Training cost.** {baseline_epoch_text(findings)} Time per epoch relative to the baseline's, "
        f"measured side by side in this run on this machine (geometric mean of the per-seed ratios, 95 % "
        f"t-interval on the log scale, Holm-corrected): {ratios}. "
        f"{verdicts}{reproduce(report_command(findings))}"
    )


def baseline_epoch_text(findings: Findings) -> str:
    """The absolute scale for the ratios: a reader sizing a budget needs seconds, not only ratios."""
    seconds = findings.runs.loc[findings.runs["configuration"] == findings.baseline, "epoch_seconds"]
    return (
        f"The baseline's epoch took {seconds.mean():.1f} s on this machine (mean over {len(seconds)} "
        f"seed(s); {findings.config.epochs} epochs per run)."
    )


def ratio_text(name: str, row: pd.Series) -> str:
    if not np.isfinite(row["low"]):
        return f"`{name}` {row['estimate']:.2f}x (not resolved)"
    return f"`{name}` {row['estimate']:.2f}x [{row['low']:.2f}, {row['high']:.2f}]"


def latency_answer(findings: Findings, measured_dir: str | Path | None) -> str:
    """Orin latency of the profile's network: measured rows where a CSV has them, else the projection."""
    config = findings.config
    model = create_model(
        config.model, findings.num_classes, config.image_size, config.small_input, config.min_feature_size
    )
    stems = [onnx_stem(name, config.image_size) for name in findings.configurations]
    report = latency_report(
        config.model, model, config.image_size, measure=False, measured_dir=measured_dir, measured_stems=stems
    )
    rows = {
        row["precision"]: row
        for row in report["orin"]["rows"]
        if row["power_mode"] == "MAXN" and row["batch"] == 1 and row["precision"] in ORIN_PRECISIONS
    }
    figures = "; ".join(f"{precision.upper()} {orin_figure(rows[precision])}" for precision in rows)
    command = (
        f"python -m mixlib latency --model {config.model} --input-size {config.image_size} "
        f"--num-classes {findings.num_classes} --min-feature-size {config.min_feature_size}"
        f"{'' if config.small_input else ' --no-small-input'} --no-measure"
        f"{f' --measured-dir {measured_dir}' if measured_dir else ''}"
    )
    cost = report["cost"]
    return (
        f"- **Orin latency.** The trained network (`{config.model}`, {cost['gmacs']:.3f} GMACs and "
        f"{cost['params_m']:.2f} M parameters at {config.image_size} px; every configuration shares it) on "
        f"the Jetson AGX Orin 64 GB, TensorRT, batch 1, MAXN: {figures}.{reproduce(command)}"
    )


def orin_figure(row: dict) -> str:
    if row["kind"] == "measured":
        return f"measured {row['latency_ms']:.3f} ms (median of trtexec on the board)"
    if row["latency_ms"] is None:
        return (
            f"projected {row['low_ms']:.3f}-{row['high_ms']:.3f} ms (a range only: the network is smaller "
            "than both published anchors; not a measurement)"
        )
    return (
        f"projected {row['latency_ms']:.3f} ms (range {row['low_ms']:.3f}-{row['high_ms']:.3f} ms; not a "
        "measurement)"
    )


# --------------------------------------------------------------------------- how the profile was sized


def sizing_answer(sizing: Mapping[str, Any]) -> str:
    """How the schedule and the baseline's learning rate and weight decay were chosen: the profile's
    `pilot` and `tuning` sections, as `python -m mixlib pilot` and `python -m mixlib tune` wrote them."""
    pilot, tuning = sizing.get("pilot"), sizing.get("tuning")
    schedule = (
        pilot_sentence(pilot)
        if pilot
        else "The schedule length is the profile's own setting; no pilot (`python -m mixlib pilot`) chose it."
    )
    optimiser = (
        tuning_sentence(tuning)
        if tuning
        else "The learning rate and weight decay are the profile's own settings; no grid "
        "(`python -m mixlib tune`) chose them."
    )
    return f"- **Schedule.** {schedule}\n- **Learning rate and weight decay.** {optimiser}"


def pilot_sentence(pilot: Mapping[str, Any]) -> str:
    costs = "; ".join(
        f"`{name}` {line['fixed']:.0f} s per run + {line['per_epoch']:.1f} s per epoch"
        for name, line in pilot["seconds"].items()
    )
    seeds = pilot["seeds"]
    caveat = "; one seed shows a trend, not a tested difference" if len(seeds) == 1 else ""
    return (
        f"A pilot trained a few configurations at several schedule lengths, each length its own schedule, "
        f"seed(s) {', '.join(map(str, seeds))}, scored on validation accuracy only (the first table"
        f"{caveat}). Wall time on the machine that ran it: {costs}.{command_text(pilot)}"
    )


def tuning_sentence(tuning: Mapping[str, Any]) -> str:
    chosen = ", ".join(f"{name} {value:g}" for name, value in tuning["chosen"].items())
    return (
        f"Chosen for the baseline from a grid at {tuning['epochs']} epochs on validation accuracy only "
        f"(the second table), then used by every configuration: {chosen}; each method keeps its published "
        f"defaults.{command_text(tuning)}"
    )


def command_text(section: Mapping[str, Any]) -> str:
    return reproduce(section["command"]) if section.get("command") else ""


def pilot_table(sizing: Mapping[str, Any]) -> pd.DataFrame | None:
    """Validation accuracy (%) by schedule length and configuration, each with its gain over the
    pilot's reference in points."""
    pilot = sizing.get("pilot")
    if not pilot:
        return None
    rows = pd.DataFrame(pilot["validation_accuracy"])
    gain = next(column for column in rows.columns if column.startswith("gain_over_"))
    rows["text"] = [
        f"{accuracy * 100:.1f}" + ("" if row_gain == 0 else f" ({row_gain * 100:+.1f})")
        for accuracy, row_gain in zip(rows["val_accuracy"], rows[gain], strict=True)
    ]
    table = rows.pivot(index="epochs", columns="configuration", values="text")
    table = table[list(dict.fromkeys(rows["configuration"]))]
    table.columns.name = f"validation accuracy % ({gain.replace('_', ' ')}, pts)"
    return table


def tuning_table(sizing: Mapping[str, Any]) -> pd.DataFrame | None:
    """The tuning grid: each point's validation accuracy (mean and spread over seeds), the chosen marked."""
    tuning = sizing.get("tuning")
    if not tuning:
        return None
    rows = pd.DataFrame(tuning["grid"])
    names = list(tuning["chosen"])
    rows["validation accuracy %"] = [
        mean_std_text(mean, np.nan if std is None else std, scale=100)
        for mean, std in zip(rows["val_accuracy_mean"], rows["val_accuracy_std"], strict=True)
    ]
    rows["chosen"] = [
        "chosen" if all(row[n] == tuning["chosen"][n] for n in names) else "" for _, row in rows.iterrows()
    ]
    return rows[[*names, "validation accuracy %", "seeds", "chosen"]]


# --------------------------------------------------------------------------- other papers' settings


def load_published(path: Path = PUBLISHED) -> dict:
    return yaml.safe_load(path.read_text())


def published_accuracy_table(findings: Findings, published: dict) -> pd.DataFrame:
    """This run's configurations beside the published accuracies of the same methods (differences to
    each source's vanilla in brackets). Only methods some source reports are listed."""
    sources = published["accuracy"]
    methods = {m for source in sources for m in source["values"]}
    runs = findings.runs[findings.runs["method"].isin(methods)]
    texts = (
        comparison_texts(compare_with_reference(findings.runs, "accuracy", findings.baseline), 100, 2)
        if findings.baseline
        else pd.Series(dtype=object)
    )
    rows = {}
    for name, mine in per_configuration(runs, ["accuracy"]).iterrows():
        method = mine["method"]
        row = {
            "method": method,
            "this run: test accuracy %": mean_std_text(
                mine["accuracy_mean"], mine["accuracy_std"], scale=SCORES["accuracy"].scale
            ),
            "this run: Δ vs baseline (pts)": texts.get(
                name, "baseline" if name == findings.baseline else "no baseline in this run"
            ),
        }
        for source in sources:
            value, vanilla = source["values"].get(method), source["values"]["none"]
            row[f"{source['short']} (other paper)"] = (
                "–"
                if value is None
                else f"{value:.2f}" + ("" if method == "none" else f" ({value - vanilla:+.2f})")
            )
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def published_localisation_table(findings: Findings, published: dict) -> pd.DataFrame:
    """MaxBoxAccV2 of a vanilla CAM, of the centre guess and CutMix's change: this run beside Choe et
    al.'s ImageNet and CUB figures (other settings: pretrained backbones, 14x14 or 28x28 maps)."""
    choe = published["localisation"][0]
    mine = this_run_localisation(findings)
    rows = {
        "vanilla CAM (baseline)": ("cam", mine["cam"]),
        "centre-Gaussian guess": ("centre", mine["centre"]),
        "CutMix's change to the CAM's score": ("cutmix_change", mine["cutmix_change"]),
    }
    return pd.DataFrame.from_dict(
        {
            label: {
                "this run": value,
                **{
                    f"{dataset} (Choe et al. 2020)": f"{figure:+.1f}"
                    if key == "cutmix_change"
                    else f"{figure:.1f}"
                    for dataset, figure in choe[key].items()
                },
            }
            for label, (key, value) in rows.items()
        },
        orient="index",
    )


def this_run_localisation(findings: Findings) -> dict[str, str]:
    unavailable = "unavailable (no boxes)"
    if not findings.has_boxes:
        return dict.fromkeys(("cam", "centre", "cutmix_change"), unavailable)
    runs = findings.runs
    centre = centre_baseline_reference(runs)["max_box_acc_v2"]
    spread = per_configuration(runs, ["max_box_acc_v2"])
    change = "no CutMix configuration"
    cutmix = [
        n for n in findings.configurations if (runs[runs["configuration"] == n]["method"] == "cutmix").all()
    ]
    if findings.baseline and cutmix:
        table = compare_with_reference(runs, "max_box_acc_v2", findings.baseline, "higher")
        change = comparison_texts(table, 1, 1)[cutmix[0]]
    return {
        "cam": mean_std_text(*spread.loc[findings.baseline, ["max_box_acc_v2_mean", "max_box_acc_v2_std"]], 1)
        if findings.baseline
        else "no baseline",
        "centre": f"{centre:.1f}",
        "cutmix_change": change,
    }


def published_notes(published: dict) -> str:
    sources = [s["source"] for s in published["accuracy"]] + [s["source"] for s in published["localisation"]]
    return (
        "**Other papers' settings, not this run's.** The published columns come from larger data "
        "(200-class Tiny-ImageNet, CIFAR-100, ImageNet, CUB), ResNet-18/50 networks, schedules of 200-400 "
        "epochs and, for localisation, ImageNet-pretrained backbones with 14x14 or 28x28 maps. They show "
        "the size of effect those settings found; they are not targets this run should match. Sources: "
        + "; ".join(sources)
        + ". On schedules: "
        + " ".join(published["schedule"])
    )

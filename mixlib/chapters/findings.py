"""The findings page (`notebooks/findings.ipynb`): the report's answer to each of its questions,
written from the run's numbers, each with its interval and the command that reproduces it, and the
published figures of other papers' settings beside them.

Every comparison comes from `mixlib.chapters.statistics` (paired by seed, Holm-corrected across the
configurations), so the page and the chapters never disagree. The configuration to recommend is
chosen on validation accuracy; the test split only reports how it does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from mixlib.bench import training_cost
from mixlib.chapters import figures
from mixlib.chapters.centre_baseline import centre_baseline_reference, compare_with_centre
from mixlib.chapters.image_scores import TestSample, compare_runs, load_test_sample
from mixlib.chapters.scores import (
    LOCALISATION,
    SCORES,
    SUMMARY_METRICS,
    UNAVAILABLE_WITHOUT_BOXES,
    run_scores,
)
from mixlib.chapters.statistics import (
    NO_DIFFERENCE,
    NOT_RESOLVED,
    best_on_validation,
    compare_with_reference,
    comparison_texts,
    mean_std_text,
    per_configuration,
    smallest_detectable,
)
from mixlib.config import RunConfig
from mixlib.latency.table import latency_report, onnx_stem
from mixlib.mixing import MIXING, mixes_two_images
from mixlib.models import choose_output_stride, create_model
from mixlib.profiles import available_profiles
from mixlib.runs import FinishedRun, finished_runs

# found from the package, as the mixing chapter finds methods.yml: nbval runs templates in notebooks/
PUBLISHED = Path(__file__).resolve().parents[2] / "book" / "published.yml"
MASK_SCORES = ("PxAP", "part-versus-whole coverage")
PROXY_METHOD = "proxy"  # Proxy Attention's recipe (mixlib.runs.recipes): judged at the same budgets as mixing
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
    # (metric, direction) -> comparison: the page asks for accuracy, ECE and MaxBoxAccV2 in several
    # places, and each comparison resamples every run's test images
    comparisons: dict[tuple[str, str | None], pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.runs["seed"]))

    @property
    def has_boxes(self) -> bool:
        return bool(self.runs["max_box_acc_v2"].notna().any())

    @property
    def has_masks(self) -> bool:
        return bool(self.runs["part_ratio"].notna().any())

    @functools.cached_property
    def test_sample(self) -> TestSample | None:
        return load_test_sample(self.runs)

    @functools.cached_property
    def centre(self) -> tuple[dict, pd.DataFrame]:
        """The centre-Gaussian guess's scores on the runs' test split and their per-image form."""
        return centre_baseline_reference(self.runs)

    def method_of(self, configuration: str) -> str:
        return str(self.runs.loc[self.runs["configuration"] == configuration, "method"].iloc[0])

    def mixes_images(self, configuration: str) -> bool:
        """Whether the configuration trains with a two-image mixing method (Proxy Attention counts:
        it is judged at the same budgets)."""
        method = self.method_of(configuration)
        return method == PROXY_METHOD or (method in MIXING and mixes_two_images(MIXING.get(method)))

    def compare(self, metric: str, direction: str | None) -> pd.DataFrame:
        """Every configuration against the baseline on `metric` (seeds and test images, Holm)."""
        key = (metric, direction)
        if key not in self.comparisons:
            self.comparisons[key] = compare_runs(
                self.runs, metric, self.baseline, direction, self.test_sample
            )
        return self.comparisons[key]

    @functools.cached_property
    def against_centre(self) -> pd.DataFrame:
        """Every configuration's MaxBoxAccV2 against the centre guess (seeds and test images, Holm)."""
        return compare_with_centre(self.runs, self.centre, self.test_sample)


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
        f"training images per class, CAM maps of {size}x{size} cells."
    )


def how_to_read(findings: Findings) -> str:
    """The comparison's method, said once for the whole page, with its scope and the command."""
    sample = findings.test_sample
    images = f"the same {sample.images} test images" if sample is not None else "the same test images"
    return (
        f"Every configuration is compared with the baseline on {images} and the same seeds (runs with the "
        "same seed share the initial weights). The estimate is the mean over seeds of the per-seed "
        "difference; its interval counts two sources of noise, another training seed and another sample of "
        "test images (resampled with replacement), and is Holm-corrected across the configurations, so the "
        "whole page keeps a 5 % chance of any false *better* or *worse*. *Better* or *worse* means the "
        "corrected interval excludes no difference; *no detectable difference* means it does not, which is "
        "not evidence of no effect: the **detectable difference** is the true difference this run would "
        "find with 80 % probability, an estimate from its own "
        f"{len(findings.seeds)} seed(s). The configuration to use is chosen on validation accuracy; the test "
        "split only reports how it does.\n\n"
        f"**Scope.** These conclusions are about this data's test images and its one train/validation "
        f"split (split seed {findings.config.split_seed}), at this training budget "
        f"({findings.config.epochs} epochs); another dataset or a longer schedule can change them."
        + reproduce(report_command(findings))
    )


def cam_map_size(config: RunConfig) -> int:
    stride = choose_output_stride(config.image_size, config.min_feature_size) if config.small_input else 32
    return max(1, config.image_size // stride)


def recommended(findings: Findings) -> str:
    """The configuration with the highest mean final validation accuracy."""
    return best_on_validation(findings.runs)


def listed(table: pd.DataFrame, word: str, scale: float, digits: int, unit: str) -> str:
    texts = comparison_texts(table, scale, digits, unit)
    names = table.index[table["verdict"] == word]
    return ", ".join(f"`{n}` ({texts[n].split(', ', 1)[1]})" for n in names)


def family_sentence(
    table: pd.DataFrame, what: str, scale: float, digits: int, unit: str, reference: str = "the baseline"
) -> str:
    """What one family of comparisons found: the detectable ones by name, or that none was, with the
    size of effect that could have gone unseen."""
    groups = [
        f"{word}: {listed(table, word, scale, digits, unit)}"
        for word in ("better", "worse", "higher", "lower")
        if (table["verdict"] == word).any()
    ]
    unresolved = table[table["verdict"] == NOT_RESOLVED]
    detectable = smallest_detectable(table["detectable"])
    missed = (
        f"differences smaller than about {detectable * scale:.{digits}f}{unit} could have gone unseen"
        if np.isfinite(detectable)
        else "this run cannot say how large a difference it could have missed"
    )
    if groups:
        found = f"On {what}, against {reference}: " + "; ".join(groups) + "."
        if (table["verdict"] == NO_DIFFERENCE).any():
            found += f" For the others, {missed}."
    elif len(unresolved) == len(table):
        found = f"On {what}, no comparison with {reference} can be made"
    else:
        found = f"On {what}, no configuration differs detectably from {reference} at this budget; {missed}."
    if len(unresolved):
        names = ", ".join(f"`{n}`" for n in unresolved.index)
        found += f" Not resolved: {names} ({unresolved['reason'].iloc[0]})."
    return found


def budget_caveat(findings: Findings, table: pd.DataFrame, sizing: Mapping[str, Any]) -> str:
    """Every 'worse' of a mixing method comes with the budget it was measured at, and the profile's
    pilot trend where it has one: mixing methods are known to need longer schedules."""
    worse = [n for n in table.index[table["verdict"] == "worse"] if findings.mixes_images(n)]
    if not worse:
        return ""
    trend = pilot_trend(sizing.get("pilot"))
    return (
        f" A *worse* for a mixing method ({', '.join(f'`{n}`' for n in worse)}) holds at this budget of "
        f"{findings.config.epochs} epochs only: mixing methods are known to need longer schedules (the "
        f"MixUp authors double them; fast.ai's Imagenette notes put the gain after about 80 epochs)"
        + (f"; this profile's pilot shows the trend on validation accuracy: {trend}" if trend else "")
        + "."
    )


def pilot_trend(pilot: Mapping[str, Any] | None) -> str:
    """Each pilot configuration's gain over the pilot's reference at its shortest and longest schedule."""
    if not pilot:
        return ""
    rows = pd.DataFrame(pilot["validation_accuracy"])
    gain = next(column for column in rows.columns if column.startswith("gain_over_"))
    trends = []
    for name, mine in rows.groupby("configuration", sort=False):
        mine = mine.sort_values("epochs")
        if (mine[gain] == 0).all():
            continue
        first, last = mine.iloc[0], mine.iloc[-1]
        trends.append(
            f"`{name}` {first[gain] * 100:+.1f} pts at {first['epochs']} epochs, "
            f"{last[gain] * 100:+.1f} at {last['epochs']}"
        )
    return "; ".join(trends)


def accuracy_answer(findings: Findings, sizing: Mapping[str, Any]) -> str:
    """Best accuracy and calibration: the family verdicts, their budget caveat and the recommendation."""
    if findings.baseline is None:
        return "There is no configuration named `baseline`, so nothing is compared with it."
    accuracy, ece = findings.compare("accuracy", "higher"), findings.compare("ece", "lower")
    return "\n".join(
        [
            f"- **Accuracy.** {family_sentence(accuracy, 'test accuracy', 100, 1, ' pts')}"
            f"{budget_caveat(findings, accuracy, sizing)}",
            f"- **Calibration** (expected calibration error, lower is better). "
            f"{family_sentence(ece, 'ECE', 100, 2, ' pts')}",
            f"- **Recommendation.** {recommendation(findings, accuracy, ece)}",
        ]
    )


def recommendation(findings: Findings, accuracy: pd.DataFrame, ece: pd.DataFrame) -> str:
    """A configuration only when it is detectably better on test accuracy (the best on validation among
    those); otherwise the baseline, with what the run could have missed."""
    better = list(accuracy.index[accuracy["verdict"] == "better"])
    validation = findings.runs.groupby("configuration", sort=False)["val_accuracy"].mean()
    accuracy_texts = comparison_texts(accuracy, 100, 1, " pts")
    ece_texts = comparison_texts(ece, 100, 2, " pts")
    if better:
        chosen = str(validation[better].idxmax())
        return (
            f"Use `{chosen}`: its test accuracy is detectably above the baseline's ({accuracy_texts[chosen]})"
            f"{' and it has the highest validation accuracy of those that are' if len(better) > 1 else ''}; "
            f"its ECE against the baseline's: {ece_texts[chosen]}."
        )
    detectable = smallest_detectable(accuracy["detectable"])
    missed = (
        f"; a true gain of up to about {detectable * 100:.1f} pts could have gone unseen"
        if np.isfinite(detectable)
        else ""
    )
    leader = recommended(findings)
    longer = (
        f" For a longer or larger study, `{leader}` had the highest validation accuracy "
        f"({validation[leader] * 100:.1f} % against the baseline's "
        f"{validation[findings.baseline] * 100:.1f} %)."
        if leader != findings.baseline
        else ""
    )
    return (
        f"No configuration's test accuracy was detectably above the baseline's, so at this budget the "
        f"baseline is the safe choice{missed}.{longer}"
    )


def localisation_answer(findings: Findings, sizing: Mapping[str, Any]) -> str:
    """The discriminative region problem: CAMs against the baseline's and the centre guess."""
    if not findings.has_boxes:
        return (
            f"{UNAVAILABLE_WITHOUT_BOXES} The discriminative region problem is therefore not measured on "
            "this data; the CAM chapter shows the maps only."
        )
    centre = findings.centre[0]["max_box_acc_v2"]
    size = cam_map_size(findings.config)
    lines = [
        f"- **CAMs against a fixed guess.** A centre-Gaussian map that uses no model scores MaxBoxAccV2 "
        f"{centre:.1f} % on these test images. "
        + family_sentence(findings.against_centre, "MaxBoxAccV2", 1, 1, " pts", "this centre guess")
        + budget_caveat(findings, findings.against_centre, sizing)
        + distance_from_centre(findings)
        + f" (CAM maps of {size}x{size} cells; Choe et al. 2020 score 14x14 or 28x28 maps.)"
    ]
    if findings.baseline is not None:
        boxes = findings.compare("max_box_acc_v2", "higher")
        lines.append(
            f"- **Localisation.** {family_sentence(boxes, 'MaxBoxAccV2', 1, 1, ' pts')}"
            + budget_caveat(findings, boxes, sizing)
        )
    if findings.has_masks and findings.baseline is not None:
        lines.append(f"- **Part versus whole.** {part_sentence(findings)}")
    elif not findings.has_masks:
        lines.append(
            f"- {' and '.join(MASK_SCORES)} are unavailable: they need object and part masks, which only "
            "the synthetic data has."
        )
    return "\n".join(lines)


def distance_from_centre(findings: Findings) -> str:
    """How far the baseline's CAMs and those of the configuration chosen on validation are from the
    centre guess, each with its corrected interval."""
    against_centre = findings.against_centre
    texts = comparison_texts(against_centre, 1, 1, " pts")
    named = dict.fromkeys(n for n in (findings.baseline, recommended(findings)) if n is not None)
    return " Distance from the centre guess: " + "; ".join(f"`{name}` {texts[name]}" for name in named) + "."


def part_sentence(findings: Findings) -> str:
    runs, baseline = findings.runs, findings.baseline
    base = runs[runs["configuration"] == baseline][["part_ratio", "body_ratio"]].mean()
    part = findings.compare("part_ratio", None)
    return (
        f"The baseline's CAM puts {base['part_ratio']:.2f}x its area share of mass on the distinctive "
        f"part and {base['body_ratio']:.2f}x on the rest of the body (1 = no preference; a part ratio "
        f"far above the body ratio is the discriminative region problem). "
        + family_sentence(part, "the part ratio", 1, 2, "")
    )


def cost_comparison(findings: Findings) -> pd.DataFrame | None:
    """Step time of each configuration over the baseline's, from the training-cost measurement (every
    configuration timed alone in interleaved rounds on the same batches): geometric mean of the
    per-round ratios with its interval on the log scale, paired by round and Holm-corrected. None when
    the report has not measured it."""
    try:
        record = training_cost.read_record(findings.runs_dir)
    except FileNotFoundError:
        return None
    times = training_cost.step_times(record).rename(columns={"round": "seed"})
    if findings.baseline not in set(times["configuration"]):
        return None
    return compare_with_reference(times, "seconds_per_step", findings.baseline, "lower", log_scale=True)


def cost_answer(findings: Findings) -> str:
    table = cost_comparison(findings) if findings.baseline is not None else None
    if table is None:
        return (
            "Training cost was not measured for this page: the report's training-cost chapter (run in "
            "its timed phase) writes it, and it needs a configuration named `baseline`."
        )
    record = training_cost.read_record(findings.runs_dir)
    times = training_cost.step_times(record)
    base = times.loc[times["configuration"] == findings.baseline, "seconds_per_step"].median()
    ratios = "; ".join(ratio_text(name, row) for name, row in table.iterrows())
    named = {word: [f"`{n}`" for n in table.index[table["verdict"] == word]] for word in ("worse", "better")}
    return (
        f"- **Training cost.** Each configuration's training step was timed alone, in "
        f"{record['setting']['rounds']} interleaved rounds on the same batches "
        f"({training_cost.setting_text(record)}) "
        f"The baseline's step took {training_cost.significant(base * 1000)} ms. Step time relative to the "
        f"baseline's (geometric mean of the per-round ratios, Holm-corrected interval over rounds): "
        f"{ratios}. Detectably slower: "
        f"{', '.join(named['worse']) or 'none'}; detectably faster: {', '.join(named['better']) or 'none'}. "
        "Proxy Attention's extra proxy batches per epoch are in the training-cost chapter, not in its step."
    )


def ratio_text(name: str, row: pd.Series) -> str:
    if not np.isfinite(row["low"]):
        return f"`{name}` {row['estimate']:.3g}x (not resolved)"
    return f"`{name}` {row['estimate']:.3g}x [{row['low']:.3g}, {row['high']:.3g}]"


# --------------------------------------------------------------------------- at a glance

ACCURACY_PANEL = "Test accuracy vs baseline (pts)"
ECE_PANEL = "ECE vs baseline (pts, lower is better)"
CENTRE_PANEL = "MaxBoxAccV2 vs the centre guess (pts)"
COST_PANEL = "Training step time (x baseline)"
QUESTIONS = {
    ACCURACY_PANEL: figures.ACCURACY_POINTS,
    ECE_PANEL: figures.ECE_POINTS,
    CENTRE_PANEL: figures.LOCALISATION_POINTS,
    COST_PANEL: figures.TIME_RATIO,
}


def glance_tables(findings: Findings) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The comparison table of each question of the page, and why a question has none."""
    empty = pd.DataFrame(columns=["estimate", "low", "high", "detectable", "verdict"])
    reasons = {}
    if findings.baseline is None:
        reasons |= dict.fromkeys((ACCURACY_PANEL, ECE_PANEL, COST_PANEL), "no configuration named baseline")
    if not findings.has_boxes:
        reasons[CENTRE_PANEL] = "no boxes in this dataset"
    cost = cost_comparison(findings) if findings.baseline is not None else None
    if cost is None:
        reasons.setdefault(COST_PANEL, "not measured in this report")
    tables = {
        ACCURACY_PANEL: findings.compare("accuracy", "higher") if findings.baseline else empty,
        ECE_PANEL: findings.compare("ece", "lower") if findings.baseline else empty,
        CENTRE_PANEL: findings.against_centre if findings.has_boxes else empty,
        COST_PANEL: cost if cost is not None else empty,
    }
    return tables, reasons


def glance(findings: Findings, png: str | Path | None = None) -> tuple[Figure, pd.DataFrame]:
    """The forest plot of every question and the compact table under it; the figure is also saved
    as `png` where given (the README shows the tiny-imagenet book's)."""
    tables, reasons = glance_tables(findings)
    figure = figures.forest_plot(tables, QUESTIONS, reasons)
    if png is not None:
        figures.save_png(figure, png)
    return figure, figures.compact_table(tables, QUESTIONS)


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
        f"(the second table), then used by every configuration: {chosen}. Each method keeps its own "
        f"parameters from the profile (`mixlib/profiles/`), which are not always the published ones: every "
        f"two-image mixing method is applied to the same share of batches, and a method's parameters may "
        f"be scaled to this image size (the method's chapter lists them).{command_text(tuning)}"
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
        comparison_texts(findings.compare("accuracy", "higher"), 100, 1)
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


VALIDATION_TAU = "this run: τ fitted on validation (the book's score)"
TEST_TAU = "this run: best τ on the test maps (Choe et al.'s rule)"


def published_localisation_table(findings: Findings, published: dict) -> pd.DataFrame:
    """MaxBoxAccV2 of a vanilla CAM, of the centre guess and CutMix's change: this run under both
    threshold rules beside Choe et al.'s ImageNet and CUB figures, which take the best τ on the split
    they score (other settings too: pretrained backbones, 14x14 or 28x28 maps)."""
    choe = published["localisation"][0]
    mine = {
        VALIDATION_TAU: this_run_localisation(findings, "max_box_acc_v2"),
        TEST_TAU: this_run_localisation(findings, "wsolevaluation_max_box_acc_v2"),
    }
    rows = {
        "vanilla CAM (baseline)": "cam",
        "centre-Gaussian guess": "centre",
        "CutMix's change to the CAM's score": "cutmix_change",
    }
    return pd.DataFrame.from_dict(
        {
            label: {
                **{column: values[key] for column, values in mine.items()},
                **{
                    f"{dataset} (Choe et al. 2020, best τ on the scored split)": f"{figure:+.1f}"
                    if key == "cutmix_change"
                    else f"{figure:.1f}"
                    for dataset, figure in choe[key].items()
                },
            }
            for label, key in rows.items()
        },
        orient="index",
    )


def this_run_localisation(findings: Findings, score: str) -> dict[str, str]:
    """The baseline CAM's score, the centre guess's and CutMix's paired change, under one τ rule."""
    unavailable = "unavailable (no boxes)"
    if not findings.has_boxes:
        return dict.fromkeys(("cam", "centre", "cutmix_change"), unavailable)
    runs = findings.runs
    spread = per_configuration(runs, [score])
    change = "no CutMix configuration"
    cutmix = [n for n in findings.configurations if findings.method_of(n) == "cutmix"]
    if findings.baseline and cutmix:
        change = comparison_texts(findings.compare(score, "higher"), 1, 1)[cutmix[0]]
    return {
        "cam": mean_std_text(*spread.loc[findings.baseline, [f"{score}_mean", f"{score}_std"]], 1)
        if findings.baseline
        else "no baseline",
        "centre": f"{findings.centre[0][score]:.1f}",
        "cutmix_change": change,
    }


def published_sources_table(published: dict) -> pd.DataFrame:
    """Each accuracy source's schedule, mixing settings and accuracy rule: what its figures mean."""
    return pd.DataFrame(
        {
            "schedule": source["schedule"],
            "mixing probability and alpha": source["mixing"],
            "accuracy rule": source["accuracy_rule"],
        }
        for source in published["accuracy"]
    ).set_axis([source["short"] for source in published["accuracy"]])


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

"""The book's Orin latency chapter (`notebooks/latency.ipynb`): trained models and reference ResNets.

The configurations of a profile usually share one architecture (model, input size, classes, output
stride), and then they cost the same and run equally fast whatever their weights: the tables show one
entry per architecture and name the configurations behind it. Every configuration still gets its own
ONNX file in `<runs_dir>/onnx/`, because any of them may be the one deployed, and a measured CSV row
of any of those files counts for the whole architecture (`latency_report(measured_stems=...)`).

The reference models (timm ResNet-18 and ResNet-50 at 224x224 with 1000 classes, untrained: speed does
not depend on the weights' values) place the small trained networks next to the published anchors. They
are exported into the same folder, so one run of `orin_measure.py` on the device also checks the
anchors on the user's own board and software.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn

from mixlib.chapters.scores import label_in_header
from mixlib.config import RunConfig
from mixlib.latency.export import INT8_NOTE, write_onnx_bundle
from mixlib.latency.measure import MIN_REPEATS
from mixlib.latency.measured import MEASURED_COLUMNS, is_orin
from mixlib.latency.orin import (
    ANCHORS,
    DENSE_PEAK_MAXN,
    DEVICE_NAME,
    POWER_MODE_SCALE,
    default_calibration,
    held_out_check,
)
from mixlib.latency.table import latency_report, onnx_stem, plot_latency_vs_flops, report_rows
from mixlib.models import check_model_name, choose_output_stride, create_model
from mixlib.runs import load_run, run_folder

ONNX_FOLDER = "onnx"
# what write_onnx_bundle puts into the folder; cleared first so that a configuration dropped from the
# profile is not measured on the device any more
GENERATED_PATTERNS = ("*.onnx", "*.json", "trtexec_commands.sh", "orin_measure.py")
REFERENCE_INPUT_SIZE = 224
REFERENCE_CLASSES = 1000
STOCK_OUTPUT_STRIDE = 32
# Latency here: one warm-up call and at most 30 timed calls per backend and batch, a cell stopping once
# its timed calls pass `budget_s` (never below MIN_REPEATS calls): a ResNet-50 at batch 8 takes seconds
# per call on a small CPU, and the whole chapter has to run in about a minute.
HERE_BATCHES = (1, 8)
HERE_WARMUP = 1
HERE_REPEATS = 30
# nvpmodel mode ids of the Jetson AGX Orin 64 GB (/etc/nvpmodel.conf lists them on the board)
NVPMODEL_IDS = {"MAXN": 0, "50W": 3, "30W": 2, "15W": 1}


@dataclass(frozen=True)
class Architecture:
    """What fixes a network's cost: two runs that agree on these have the same graph."""

    model: str
    input_size: int
    num_classes: int
    output_stride: int  # 32 for the stock network; 16 or 8 where small_input dilates the last stages

    @property
    def label(self) -> str:
        dilation = "" if self.output_stride == STOCK_OUTPUT_STRIDE else f"-os{self.output_stride}"
        return f"{self.model}{dilation} ({self.num_classes} classes)"


def architecture_of(config: RunConfig, num_classes: int) -> Architecture:
    stride = (
        choose_output_stride(config.image_size, config.min_feature_size)
        if config.small_input
        else STOCK_OUTPUT_STRIDE
    )
    return Architecture(config.model, config.image_size, num_classes, stride)


@dataclass(frozen=True)
class TrainedModel:
    configuration: str
    run_dir: Path
    architecture: Architecture
    model: nn.Module

    @property
    def onnx_stem(self) -> str:
        return onnx_stem(self.configuration, self.architecture.input_size)


def load_trained_models(runs_dir: str | Path, configurations: Sequence[str], seed: int) -> list[TrainedModel]:
    """The model of run `seed<seed>` of every configuration, in eval mode on the CPU."""
    models = []
    for name in configurations:
        result = load_run(run_folder(runs_dir, name, seed).path)
        architecture = architecture_of(result.config, len(result.splits.classes))
        models.append(TrainedModel(name, result.run_dir, architecture, result.model.cpu().eval()))
    return models


def group_by_architecture(models: Sequence[TrainedModel]) -> dict[Architecture, list[TrainedModel]]:
    """Configurations that share an architecture, in the order they first appear."""
    groups: dict[Architecture, list[TrainedModel]] = {}
    for trained in models:
        groups.setdefault(trained.architecture, []).append(trained)
    return groups


def clear_onnx_folder(onnx_dir: Path) -> None:
    for pattern in GENERATED_PATTERNS:
        for path in onnx_dir.glob(pattern):
            path.unlink()


def export_trained_models(models: Sequence[TrainedModel], onnx_dir: str | Path) -> list[dict]:
    """One checked ONNX bundle per configuration, `<configuration>_<input size>px.onnx`."""
    return [
        {
            "model": trained.architecture.label,
            "configuration": trained.configuration,
            **write_onnx_bundle(trained.model, onnx_dir, trained.onnx_stem, trained.architecture.input_size),
        }
        for trained in models
    ]


def reference_model(name: str) -> nn.Module:
    """A stock timm classifier at 224x224 with 1000 classes, as in the published anchors."""
    check_model_name(name)
    return create_model(name, REFERENCE_CLASSES, REFERENCE_INPUT_SIZE, small_input=False)


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class LatencyChapter:
    """Everything the chapter shows; `table` has the library's long rows plus who each model stands for."""

    runs_dir: Path
    seed: int  # the seed whose model stands for each configuration
    reports: list[dict]  # one latency_report per table entry, plus model_kind, architecture, configurations
    table: pd.DataFrame
    exports: list[dict]  # one per ONNX file in onnx_dir
    onnx_dir: Path
    measured_dir: Path
    measured_files: list[Path]
    settings: dict  # how latency was measured here


def _entry_rows(report: dict) -> list[dict]:
    extra = {"model_kind": report["model_kind"], "configurations": ", ".join(report["configurations"])}
    return [{**row, **extra} for row in report_rows(report)]


def _as_list(value, parameter: str, kind: type, allow_empty: bool = False) -> list:
    """Papermill's `-p` passes lists as strings; anything else must be a list of `kind`."""
    values = json.loads(value) if isinstance(value, str) else value
    if (
        not isinstance(values, list | tuple)
        or not (values or allow_empty)
        or not all(isinstance(v, kind) for v in values)
    ):
        qualifier = "list" if allow_empty else "non-empty list"
        raise ValueError(f"{parameter} must be a {qualifier} of {kind.__name__}, got {value!r}")
    return list(values)


def _trained_report(architecture: Architecture, members: Sequence[TrainedModel], options: dict) -> dict:
    """One architecture, measured with its first configuration's model; any member's CSV rows count."""
    report = latency_report(
        architecture.label,
        members[0].model,
        architecture.input_size,
        measured_stems=[m.onnx_stem for m in members],
        **options,
    )
    names = [m.configuration for m in members]
    return {**report, "model_kind": "trained", "architecture": architecture, "configurations": names}


def _reference_report(name: str, onnx_dir: Path, options: dict) -> dict:
    """A reference model, exported into the device folder next to the trained ones."""
    report = latency_report(name, reference_model(name), REFERENCE_INPUT_SIZE, onnx_dir=onnx_dir, **options)
    architecture = Architecture(name, REFERENCE_INPUT_SIZE, REFERENCE_CLASSES, STOCK_OUTPUT_STRIDE)
    return {**report, "model_kind": "reference", "architecture": architecture, "configurations": []}


def build_latency_chapter(
    runs_dir: str | Path,
    configurations: Sequence[str],
    seeds: Sequence[int],
    measured_dir: str | Path = "results/orin",
    measure_here: bool = True,
    reference_models: Sequence[str] = ("resnet18", "resnet50"),
    threads: int | None = 1,
    budget_s: float = 0.5,
) -> LatencyChapter:
    """Export, measure and project every trained architecture and reference model (see module docstring).

    `threads` fixes PyTorch's and ONNX Runtime's thread count here (None: PyTorch's default); one thread
    gives figures that do not depend on how busy the other cores are.
    """
    configurations = _as_list(configurations, "configurations", str)
    seeds = _as_list(seeds, "seeds", int)
    references = _as_list(reference_models, "reference_models", str, allow_empty=True)
    for name in references:
        check_model_name(name)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be None or >= 1, got {threads}")
    onnx_dir = Path(runs_dir) / ONNX_FOLDER
    trained = load_trained_models(runs_dir, configurations, seeds[0])
    onnx_dir.mkdir(parents=True, exist_ok=True)
    clear_onnx_folder(onnx_dir)
    exports = export_trained_models(trained, onnx_dir)
    options = {
        "measure": measure_here,
        "measured_dir": measured_dir,
        "batches": HERE_BATCHES,
        "warmup": HERE_WARMUP,
        "repeats": HERE_REPEATS,
        "budget_s": budget_s,
    }
    with _torch_threads(threads):
        reports = [
            _trained_report(a, members, options) for a, members in group_by_architecture(trained).items()
        ]
        reports += [_reference_report(name, onnx_dir, options) for name in references]
        settings = {"threads": torch.get_num_threads(), "warmup": HERE_WARMUP, "repeats": HERE_REPEATS,
                    "budget_s": budget_s, "batches": HERE_BATCHES}  # fmt: skip
    exports += [
        {"model": r["label"], "configuration": "(reference)", **r["export"]}
        for r in reports
        if r["model_kind"] == "reference"
    ]
    measured_dir = Path(measured_dir)
    return LatencyChapter(
        runs_dir=Path(runs_dir),
        seed=seeds[0],
        reports=reports,
        table=pd.DataFrame([row for report in reports for row in _entry_rows(report)]),
        exports=exports,
        onnx_dir=onnx_dir,
        measured_dir=measured_dir,
        measured_files=sorted(measured_dir.rglob("*.csv")) if measured_dir.is_dir() else [],
        settings=settings,
    )


# --------------------------------------------------------------------------- what the chapter shows


def overview_markdown(chapter: LatencyChapter, profile_name: str, profile_title: str) -> str:
    trained = [r for r in chapter.reports if r["model_kind"] == "trained"]
    references = [f"`{r['label']}`" for r in chapter.reports if r["model_kind"] == "reference"]
    configurations = sum(len(r["configurations"]) for r in trained)
    return (
        f"Profile **{profile_name}** ({profile_title}): {configurations} configuration(s) read from "
        f"`{chapter.runs_dir}` (the model of seed {chapter.seed} of each), {len(trained)} distinct "
        f"architecture(s); reference models: {', '.join(references) or 'none'}."
    )


def models_table(chapter: LatencyChapter) -> pd.DataFrame:
    """One column per architecture or reference model (a profile has one or two: transposed, the table
    fits the text column), one row per property: who it stands for and its batch-1 cost."""
    rows = []
    for report in chapter.reports:
        architecture, cost = report["architecture"], report["cost"]
        rows.append(
            {
                "model": report["label"],
                "kind": report["model_kind"],
                "configurations": ", ".join(report["configurations"]) or "-",
                "input": f"{architecture.input_size}x{architecture.input_size}",
                "classes": architecture.num_classes,
                "output stride": architecture.output_stride,
                "parameters (M)": f"{cost['params_m']:#.3g}",
                "GMACs": f"{cost['gmacs']:#.3g}",
                "GFLOPs": f"{cost['gflops']:#.3g}",
                "weights FP16 (MB)": f"{cost['weights_mb_fp16']:#.3g}",
                "activations FP32 (MB)": f"{cost['activation_mb_fp32']:#.3g}",
            }
        )
    return pd.DataFrame(rows).set_index("model").T


def _ms(value: float) -> str:
    """Three significant digits, without the exponent notation that .3g gives from 1000 ms on."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _here_cell(result: dict) -> str:
    return f"{_ms(result['median_ms'])} (p90 {_ms(result['p90_ms'])}, n={result['repeats']})"


def here_table(chapter: LatencyChapter) -> pd.DataFrame:
    """Median ms per model and backend x batch on this machine (empty when not measured)."""
    rows = {
        report["label"]: {
            f"{r['backend']} b{r['batch']}": _here_cell(r) for r in report["measured_here"]["results"]
        }
        for report in chapter.reports
        if report["measured_here"]
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def here_note(chapter: LatencyChapter) -> str:
    """How and on what the figures of `here_table` were measured."""
    measured = [report["measured_here"] for report in chapter.reports if report["measured_here"]]
    if not measured:
        return "Latency was not measured on this machine (`measure_here = False`)."
    machine, settings = measured[0]["machine"], chapter.settings
    loads = [m["machine"]["load_average_1min"] for m in measured]
    gpu = f" and a {machine['cuda_device']}" if machine["cuda_device"] else ""
    busy = (
        " That is more than the number of CPUs: other processes competed for them, so the CPU figures are "
        "slower than on an idle machine."
        if max(loads) > machine["logical_cpus"]
        else ""
    )
    lines = [
        f"Measured on this machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs{gpu}; "
        f"PyTorch {machine['torch']} and ONNX Runtime {machine['onnxruntime']}, both with "
        f"{settings['threads']} CPU thread(s). The 1-minute load average was {min(loads):.1f} to "
        f"{max(loads):.1f} while measuring.{busy}",
        f"Each cell is the median in ms of up to {settings['repeats']} timed calls after "
        f"{settings['warmup']} warm-up call, with the 90th percentile and the number of calls n; a cell "
        f"stops once its calls took {settings['budget_s']} s but never below {MIN_REPEATS} calls. The "
        "large models (ResNet-50 at 224x224 in particular) therefore rest on a handful of calls, and "
        "their p90 is close to their slowest call. `b1` and `b8` are batches of 1 and 8 images.",
    ]
    return "\n\n".join(lines)


def skipped_table(chapter: LatencyChapter) -> pd.DataFrame:
    """The backends that did not run here, and why (no GPU, opt-in only)."""
    skipped = {
        name: reason
        for report in chapter.reports
        if report["measured_here"]
        for name, reason in report["measured_here"]["skipped"].items()
    }
    table = pd.DataFrame({"backend": list(skipped), "not measured because": list(skipped.values())})
    return label_in_header(table.set_index("backend"))


def _orin_cell(row: pd.Series) -> str:
    if row["kind"] == "measured":
        return f"measured {_ms(row['latency_ms'])}"
    if pd.isna(row["latency_ms"]):  # below the anchors: no point estimate
        return f"projected {row['low_ms']:.2g}-{row['high_ms']:.2g} (range only)"
    return f"projected {_ms(row['latency_ms'])} ({_ms(row['low_ms'])}-{_ms(row['high_ms'])})"


def orin_rows_batch1(chapter: LatencyChapter) -> pd.DataFrame:
    """The AGX Orin rows at batch 1: one per model, precision and power mode, measured where a CSV has it."""
    table = chapter.table
    keep = (table["backend"] == "tensorrt") & (table["batch"] == 1) & table["target"].map(is_orin)
    return table[keep]


def orin_table(chapter: LatencyChapter) -> pd.DataFrame:
    """Model x precision rows, power-mode columns, each cell marked `projected` or `measured` (ms)."""
    rows = orin_rows_batch1(chapter).assign(cell=lambda frame: frame.apply(_orin_cell, axis=1))
    table = rows.pivot_table(
        index=["label", "precision"], columns="power_mode", values="cell", aggfunc="; ".join, sort=False
    )
    modes = [m for m in POWER_MODE_SCALE if m in table.columns] + sorted(
        set(table.columns) - set(POWER_MODE_SCALE)
    )
    table = table[modes]
    table.index.names, table.columns.name = ["model", "precision"], "power mode"
    return table


def measured_note(chapter: LatencyChapter) -> str:
    """Which measured CSVs were found and what they replaced."""
    folder = f"`{chapter.measured_dir}`"
    if not chapter.measured_files:
        return (
            f"No measured CSV in {folder} yet: every Jetson figure in this chapter is a projection. "
            "The last section says how to measure on the device."
        )
    measured = chapter.table[(chapter.table["backend"] == "tensorrt") & (chapter.table["kind"] == "measured")]
    replacing = orin_rows_batch1(chapter)["kind"].eq("measured").sum()
    files = ", ".join(f"`{path.name}`" for path in chapter.measured_files)
    return (
        f"Measured CSVs in {folder}: {files}. They hold {len(measured)} row(s) for the models of this "
        f"chapter, of which {replacing} replace a projected cell of the {DEVICE_NAME} table (same model, "
        "precision and power mode at batch 1); all of them are listed below with the projection they "
        "replace."
    )


def orin_measured_table(chapter: LatencyChapter) -> pd.DataFrame:
    """Every measured Jetson row of the chapter's models, with the projection it stands beside."""
    table = chapter.table
    measured = table[(table["backend"] == "tensorrt") & (table["kind"] == "measured")]
    columns = {
        "label": "model", "target": "device", "precision": "precision", "power_mode": "power mode",
        "batch": "batch", "latency_ms": "median (ms)", "p90_ms": "p90 (ms)", "p99_ms": "p99 (ms)",
        "projected_ms": "projected (ms)", "source": "CSV", "method": "how",
    }  # fmt: skip
    return measured[list(columns)].rename(columns=columns).reset_index(drop=True)


def plot_latency(chapter: LatencyChapter, power_mode: str = "MAXN") -> plt.Figure:
    """Latency against FLOPs (log-log) with the projections, the measurements and the anchors."""
    figure, axis = plt.subplots(figsize=(9, 5))
    plot_latency_vs_flops(chapter.table, axis, power_mode=power_mode)
    axis.margins(x=0.12, y=0.08)  # room for the labels of the smallest and largest models
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return figure


def hardware_note() -> str:
    """The peak figures the roofline uses, from the library's constants."""
    units = {"fp16": "TFLOP/s", "int8": "TOP/s"}
    peaks = ", ".join(f"{p.upper()} {v / 1e12:g} {units.get(p, 'T/s')}" for p, v in DENSE_PEAK_MAXN.items())
    modes = ", ".join(f"{m} {s:g}" for m, s in POWER_MODE_SCALE.items())
    return f"Dense tensor-core peaks at MAXN: {peaks}; power-mode scale s: {modes}."


def anchors_table() -> pd.DataFrame:
    """The published measurements the projection is fitted to, with their roofline bounds: one column
    per anchor (two), so that the table fits the text column; `anchor_sources` cites them."""
    calibration = default_calibration().to_dict()
    rows = [
        {
            "anchor": a["name"],
            "model": f"{a['model']}, {a['input_size']}x{a['input_size']}, {a['num_classes']} classes",
            "precision": a["precision"].upper(),
            "published (ms)": f"{a['latency_ms']:#.3g}",
            "statistic": a["statistic"],
            "roofline bound B (ms)": f"{a['roofline_bound_ms']:#.3g}",
        }
        for a in calibration["anchors"]
    ]
    return pd.DataFrame(rows).set_index("anchor").T


def citations_markdown(entries: list[tuple[str, str]]) -> str:
    """Sources as a Markdown list: their file paths are too long for a table cell."""
    return "Sources:\n\n" + "\n".join(f"- {name}: {citation}" for name, citation in entries)


def anchor_sources() -> str:
    return citations_markdown(
        [(a["name"], a["citation"]) for a in default_calibration().to_dict()["anchors"]]
    )


def held_out_sources() -> str:
    return citations_markdown([(h["name"], h["citation"]) for h in held_out_check()])


def fit_note() -> str:
    """The fitted constants in words."""
    calibration = default_calibration().to_dict()
    low, high = calibration["overhead_range_ms"]
    efficiencies = "; ".join(
        f"{precision.upper()} {e_low:.2f} to {e_high:.2f}"
        for precision, (e_low, e_high) in calibration["efficiency_range"].items()
    )
    return (
        f"Fitted to the {len(ANCHORS)} anchors: efficiency e = {calibration['efficiency']:.3f} and overhead "
        f"o = {calibration['overhead_ms']:.3f} ms for the point estimate. The range lets the overhead run "
        f"from {low:g} to {high:.3f} ms (o_max), which moves the per-precision efficiencies over "
        f"{efficiencies}."
    )


def held_out_table() -> pd.DataFrame:
    """The published figures that were kept out of the fit, against their projection: one column per
    figure, as for the anchors (`held_out_sources` cites them)."""
    rows = [
        {
            "held out": h["name"],
            "published (ms)": f"{h['measured_ms']:#.3g}",
            "projected (ms)": "–" if h["projected_ms"] is None else f"{h['projected_ms']:#.3g}",
            "error (%)": None if h["error_pct"] is None else round(h["error_pct"], 1),
            "projected range (ms)": f"{h['range_ms'][0]:.3f}-{h['range_ms'][1]:.3f}",
            "inside the range": "yes" if h["inside_range"] else "no",
        }
        for h in held_out_check()
    ]
    return pd.DataFrame(rows).set_index("held out").T


def exports_table(chapter: LatencyChapter) -> pd.DataFrame:
    """The ONNX files written for the device, with their check against PyTorch."""
    rows = [
        {
            "file": Path(export["path"]).name,  # the folder, runs/<profile>/onnx/, is named in the text
            "configuration": export["configuration"],
            "model": export["model"],
            "size (MB)": round(export["size_mb"], 1),
            "opset": export["opset"],
            "max |ONNX - PyTorch| logit": f"{export['check']['max_abs_diff']:.1e}",
            "check": "ok" if export["check"]["ok"] else "MISMATCH",
        }
        for export in chapter.exports
    ]
    return label_in_header(pd.DataFrame(rows).set_index("file"))


def trtexec_markdown(chapter: LatencyChapter) -> str:
    """The exact trtexec commands (the folder's `trtexec_commands.sh`) as a shell block."""
    script = (chapter.onnx_dir / "trtexec_commands.sh").read_text()
    return f"`{chapter.onnx_dir / 'trtexec_commands.sh'}`:\n\n```bash\n{script}```"


def device_steps_markdown(chapter: LatencyChapter) -> str:
    """How to measure the exported models on an Orin and where the CSVs go."""
    onnx_files = sorted(chapter.onnx_dir.glob("*.onnx"))
    size_mb = sum(path.stat().st_size for path in onnx_files) / 1e6
    commands = ["cd mixlib-onnx"] + [
        f"sudo nvpmodel -m {mode_id} && sudo jetson_clocks && "
        f"python3 orin_measure.py . --out results/orin/measured_{mode.lower()}.csv"
        for mode, mode_id in NVPMODEL_IDS.items()
    ]
    precisions = " and ".join(p.upper() for p in DENSE_PEAK_MAXN)
    steps = [
        f"1. Copy the folder `{chapter.onnx_dir}` ({len(onnx_files)} ONNX files, {size_mb:.0f} MB, with "
        "their `.json` sidecars, `trtexec_commands.sh` and `orin_measure.py`) to the Orin, e.g. "
        f"`scp -r {chapter.onnx_dir} orin:mixlib-onnx`.",
        "2. On the Orin, measure once per power mode, one line each (mode ids of the AGX Orin 64 GB; "
        "`/etc/nvpmodel.conf` lists them; if nvpmodel asks for a reboot, reboot and go on with the next "
        "line). The script needs Python 3.8 and the `trtexec` of JetPack, nothing else:",
        "",
        "   ```bash",
        *[f"   {command}" for command in commands],
        "   ```",
        "",
        f"   Every model is built and timed in {precisions} at batches 1 and 8: an engine build plus 32 s "
        f"of timing each; the full trtexec logs are kept under `results/orin/logs/`. {INT8_NOTE}.",
        f"3. Copy the results back into `{chapter.measured_dir}` of this repository, e.g. "
        f"`scp -r orin:mixlib-onnx/results/orin/. {chapter.measured_dir}/`, and rerun the report: every "
        "measured cell replaces its projection.",
    ]
    return "\n".join(steps)


def schema_table() -> pd.DataFrame:
    """The measured CSV's columns (defined once, in `orin_measure.CSV_COLUMNS`)."""
    table = pd.DataFrame({"column": list(MEASURED_COLUMNS), "meaning": list(MEASURED_COLUMNS.values())})
    return label_in_header(table.set_index("column"))

"""The latency report of one model and the long table over several, for the CLI and the book.

Every row carries `kind` (`measured` or `projected`), the `method` behind it and its `source`: a
measured Jetson CSV replaces the projection for its model, precision, batch and power mode, and keeps
the projection's point in `projected_ms` so the two can be compared.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from torch import nn

from mixlib.latency.cost import ModelCost, model_cost
from mixlib.latency.export import DEFAULT_OPSET, write_onnx_bundle
from mixlib.latency.measure import DEFAULT_BACKENDS, measure_latency
from mixlib.latency.measured import MATCH_KEY, is_orin, measured_for, read_measured
from mixlib.latency.orin import (
    ANCHORS,
    DEVICE_NAME,
    METHOD,
    Calibration,
    Projection,
    default_calibration,
    held_out_check,
    project_all,
)

ROW_COLUMNS = [
    "label", "model_stem", "input_size", "params_m", "gmacs", "gflops", "weights_mb_fp16",
    "activation_mb_fp32", "target", "backend", "precision", "power_mode", "batch", "threads", "kind",
    "latency_ms", "p90_ms", "p99_ms", "low_ms", "high_ms", "extrapolated", "mode_anchored",
    "projected_ms", "method", "source",
]  # fmt: skip


def onnx_stem(label: str, input_size: int) -> str:
    """File stem shared by the ONNX export and the measured CSV rows: `<label>_<input size>px`."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)}_{input_size}px"


def _projected_row(projection: Projection, calibration: Calibration) -> dict:
    anchors = [a.name for a in calibration.anchors]
    return {
        "target": DEVICE_NAME,
        "backend": "tensorrt",
        "precision": projection.precision,
        "power_mode": projection.power_mode,
        "batch": 1,
        "kind": "projected",
        "latency_ms": projection.latency_ms,
        "low_ms": projection.low_ms,
        "high_ms": projection.high_ms,
        "extrapolated": projection.extrapolated,
        "mode_anchored": projection.mode_anchored,
        "projected_ms": projection.latency_ms,
        "method": METHOD,
        "source": "projection, anchors: " + "; ".join(anchors),
        "anchors": anchors,
    }


def _device_measured_row(measured: dict, projection: Projection | None) -> dict:
    return {
        "target": measured["device_model"] or "unknown Jetson",
        "backend": "tensorrt",
        "precision": measured["precision"],
        "power_mode": measured["power_mode"],
        "batch": int(measured["batch"]),
        "kind": "measured",
        "latency_ms": measured["median_ms"],
        "p90_ms": measured["p90_ms"],
        "p99_ms": measured["p99_ms"],
        "projected_ms": projection.latency_ms if projection else None,
        "method": f"trtexec median (TensorRT {measured['tensorrt']}, L4T {measured['l4t_release']}, "
        f"JetPack {measured['jetpack']}): {measured['trtexec_command']}",
        "source": measured["source"],
    }


def orin_rows(
    stem: str, cost: ModelCost, measured: pd.DataFrame, calibration: Calibration | None = None
) -> list[dict]:
    """Projection per precision x power mode, each replaced by a measured AGX Orin row where one exists.

    Measured rows of other batch sizes, modes or devices are added; of repeated runs the latest counts.
    """
    calibration = calibration or default_calibration()
    projections = {(p.precision, p.power_mode): p for p in project_all(cost, calibration=calibration)}
    own = measured_for(measured, stem).sort_values("timestamp")
    own = own.drop_duplicates([*MATCH_KEY, "device_model"], keep="last")
    rows, replaced = [], set()
    for record in own.to_dict("records"):
        key = (record["precision"], record["power_mode"])
        replaces = is_orin(record["device_model"]) and record["batch"] == 1 and key in projections
        rows.append(_device_measured_row(record, projections[key] if replaces else None))
        replaced |= {key} if replaces else set()
    rows += [_projected_row(p, calibration) for key, p in projections.items() if key not in replaced]
    return rows


def _here_rows(here: dict) -> list[dict]:
    machine = here["machine"]
    return [
        {
            "target": f"this machine ({machine['cuda_device'] if r['device'] == 'cuda' else machine['cpu']})",
            "backend": r["backend"],
            "precision": r["precision"],
            "batch": r["batch"],
            "threads": r["threads"],
            "kind": "measured",
            "latency_ms": r["median_ms"],
            "p90_ms": r["p90_ms"],
            "p99_ms": r["p99_ms"],
            "method": f"median of {r['repeats']} calls after {r['warmup']} warm-up calls",
            "source": f"measured here: {machine['host']}, load average {machine['load_average_1min']:.2f}",
        }
        for r in here["results"]
    ]


def latency_report(
    label: str,
    model: nn.Module,
    input_size: int,
    *,
    measure: bool = True,
    backends: tuple[str, ...] = DEFAULT_BACKENDS,
    batches: tuple[int, ...] = (1, 8),
    warmup: int = 3,
    repeats: int = 50,
    budget_s: float = 1.5,
    onnx_dir: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    measured_dir: str | Path | None = None,
    measured_stems: Iterable[str] | None = None,
    calibration: Calibration | None = None,
) -> dict:
    """Cost, measured latency here, ONNX export check and the Orin rows of one model (JSON-ready).

    The ONNX file is written when measuring (ONNX Runtime needs it) or when `onnx_dir` is given; without
    `onnx_dir` it lives in a scratch folder and `export.path` is None. `measured_stems` lists the ONNX
    stems whose measured rows stand for this model (default: its own stem): models of one architecture
    exported under several names share their device timings.
    """
    stem = onnx_stem(label, input_size)
    cost = model_cost(model, input_size)
    calibration = calibration or default_calibration()
    export = here = None
    with tempfile.TemporaryDirectory() as scratch:
        if measure or onnx_dir is not None:
            export = write_onnx_bundle(model, onnx_dir or scratch, stem, input_size, opset)
        if measure:
            here = measure_latency(
                model, export["path"], cost.input_shape, backends, batches, warmup, repeats, budget_s
            )
    if export is not None and onnx_dir is None:
        export.update(path=None, command_script=None)
    measured = read_measured(measured_dir)
    if measured_stems is not None:
        measured = measured[measured["model"].isin(list(measured_stems))].assign(model=stem)
    return {
        "label": label,
        "onnx_stem": stem,
        "input_size": input_size,
        "cost": cost.to_dict(),
        "measured_here": here,
        "export": export,
        "orin": {
            "device": DEVICE_NAME,
            "measured_dir": None if measured_dir is None else str(measured_dir),
            "rows": orin_rows(stem, cost, measured, calibration),
            "calibration": calibration.to_dict(),
            "held_out_check": held_out_check(calibration),
        },
    }


def report_rows(report: dict) -> list[dict]:
    """The report as long-format rows with the columns `ROW_COLUMNS`."""
    cost = report["cost"]
    common = {
        "label": report["label"],
        "model_stem": report["onnx_stem"],
        "input_size": report["input_size"],
        **{k: cost[k] for k in ("params_m", "gmacs", "gflops", "weights_mb_fp16", "activation_mb_fp32")},
    }
    here = _here_rows(report["measured_here"]) if report["measured_here"] else []
    return [
        {column: {**common, **row}.get(column) for column in ROW_COLUMNS}
        for row in here + report["orin"]["rows"]
    ]


def latency_table(
    entries: Iterable[tuple[str, nn.Module, int]],
    measured_dir: str | Path | None = None,
    measure: bool = True,
    **options,
) -> pd.DataFrame:
    """Long table over `(label, model, input_size)` entries; `options` go to `latency_report`."""
    rows = [
        row
        for label, model, input_size in entries
        for row in report_rows(
            latency_report(label, model, input_size, measure=measure, measured_dir=measured_dir, **options)
        )
    ]
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


# colour and a small horizontal shift (on the log axis) so the two precisions' bars do not overlap
_PRECISION_STYLE = {"fp16": ("tab:blue", 0.97), "int8": ("tab:orange", 1.03)}
_HERE_MARKERS = ("s", "D", "^", "v", "P", "X")  # one per backend measured here


def plot_latency_vs_flops(
    table: pd.DataFrame, ax: plt.Axes | None = None, power_mode: str = "MAXN"
) -> plt.Axes:
    """Batch-1 latency against GFLOPs: Orin projections (range bars, a point where not extrapolated),
    Orin measurements, measurements on this machine and the calibration anchors."""
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    batch1 = table[table["batch"] == 1]
    orin = batch1[(batch1["backend"] == "tensorrt") & (batch1["power_mode"] == power_mode)]
    orin = orin[orin["target"].map(is_orin)]  # other Jetsons' measurements stay in the table only
    for precision, (colour, shift) in _PRECISION_STYLE.items():
        projected = orin[(orin["kind"] == "projected") & (orin["precision"] == precision)]
        x = projected["gflops"] * shift
        ax.vlines(x, projected["low_ms"], projected["high_ms"], colors=colour, alpha=0.6)
        ax.plot(
            x, projected["latency_ms"], "o", mfc="none", color=colour, label=f"projected {precision.upper()}"
        )
        measured = orin[(orin["kind"] == "measured") & (orin["precision"] == precision)]
        ax.plot(
            measured["gflops"] * shift,
            measured["latency_ms"],
            "o",
            color=colour,
            label=f"measured {precision.upper()}",
        )
        for anchor in (a for a in ANCHORS if a.precision == precision):
            point = (anchor.cost().flops / 1e9, anchor.latency_ms)
            ax.plot(*point, "*", ms=14, color=colour, label=f"anchor: {anchor.name}")
    for (label, size), rows in orin.groupby(["label", "input_size"]):
        top = rows[["high_ms", "latency_ms"]].max().max()
        ax.annotate(f"{label} {size}px", (rows["gflops"].iloc[0], top), fontsize=7, ha="center",
                    xytext=(0, 4), textcoords="offset points")  # fmt: skip
    here = batch1[batch1["target"].str.startswith("this machine", na=False)]
    for (backend, rows), marker in zip(here.groupby("backend"), _HERE_MARKERS, strict=False):
        ax.plot(
            rows["gflops"],
            rows["latency_ms"],
            marker,
            linestyle="none",
            color="grey",
            alpha=0.6,
            mfc="none",
            label=f"measured here: {backend}",
        )
    ax.set(xscale="log", yscale="log", xlabel="GFLOPs per image", ylabel="latency, batch 1 (ms)")
    ax.set_title(f"{DEVICE_NAME}, {power_mode}: projection vs measurements", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return ax

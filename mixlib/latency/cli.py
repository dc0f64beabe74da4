"""`python -m mixlib latency`: cost, latency measured here, the ONNX export check and the Orin projection.

python -m mixlib latency --model resnet10t --input-size 64            # tables
python -m mixlib latency --model resnet10t --input-size 64 --json     # everything as JSON
python -m mixlib latency ... --onnx-dir onnx/                         # keep the ONNX + trtexec commands
python -m mixlib latency ... --measured-dir results/orin/             # measured CSVs replace projections
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from mixlib.files import load_torch
from mixlib.latency.export import DEFAULT_OPSET
from mixlib.latency.measure import BACKENDS, DEFAULT_BACKENDS
from mixlib.latency.table import latency_report
from mixlib.models import create_model

_STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="resnet10t", help="timm model name (mixlib.models.create_model)")
    parser.add_argument("--input-size", type=int, default=64, help="square input side in pixels")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--small-input", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--min-feature-size", type=int, default=8, help="with --small-input: smallest last feature map side"
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="weights to load (a state dict, or a dict holding one)"
    )
    parser.add_argument("--label", help="name in tables and file names (default: the model name)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--backends", nargs="+", default=list(DEFAULT_BACKENDS), choices=BACKENDS.names())
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per backend and batch, at most")
    parser.add_argument(
        "--budget-s", type=float, default=1.5, help="stop timing a cell after this (>= 5 calls)"
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (ONNX Runtime uses the same)")
    parser.add_argument("--no-measure", dest="measure", action="store_false", help="cost and projection only")
    parser.add_argument(
        "--onnx-dir", type=Path, help="keep the ONNX file, trtexec commands and device script"
    )
    parser.add_argument("--measured-dir", type=Path, help="folder of measured CSVs (orin_measure.py output)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def load_checkpoint(model: nn.Module, path: Path) -> nn.Module:
    """Load a state dict saved directly or under one of the keys model / state_dict / model_state_dict.

    The file is loaded weights-only: one that holds anything but tensors and plain data (a pickled
    callable could run code) is refused with `mixlib.files.RefusedFile`.
    """
    saved = load_torch(path)
    nested = [
        saved[k] for k in _STATE_DICT_KEYS if isinstance(saved, dict) and isinstance(saved.get(k), dict)
    ]
    state = nested[0] if nested else saved
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: no state dict found (looked at the top level and {_STATE_DICT_KEYS})")
    model.load_state_dict(state)
    return model


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model = create_model(
        args.model, args.num_classes, args.input_size, args.small_input, args.min_feature_size
    )
    if args.checkpoint is not None:
        load_checkpoint(model, args.checkpoint)
    report = latency_report(
        args.label or args.model,
        model,
        args.input_size,
        measure=args.measure,
        backends=tuple(args.backends),
        batches=tuple(args.batches),
        warmup=args.warmup,
        repeats=args.repeats,
        budget_s=args.budget_s,
        onnx_dir=args.onnx_dir,
        opset=args.opset,
        measured_dir=args.measured_dir,
    )
    report["model"] = {
        "name": args.model,
        "num_classes": args.num_classes,
        "small_input": args.small_input,
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
    }
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _frame(rows: list[dict], columns: list[str]) -> str:
    return pd.DataFrame(rows)[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")


def _format_cost(report: dict) -> list[str]:
    c, m = report["cost"], report["model"]
    return [
        f"{m['name']} at {report['input_size']}x{report['input_size']}, {m['num_classes']} classes, "
        f"small_input={m['small_input']}, checkpoint={m['checkpoint']}",
        f"cost (batch 1): {c['params_m']:.3f} M parameters, "
        f"{c['gmacs']:.3f} GMACs = {c['gflops']:.3f} GFLOPs (FlopCounterMode)",
        f"  weights {c['weights_mb_fp32']:.2f} / {c['weights_mb_fp16']:.2f} / {c['weights_mb_int8']:.2f} MB "
        "(FP32 / FP16 / INT8, parameters only)",
        f"  activations {c['activation_mb_fp32']:.2f} MB FP32 (new outputs of all leaf modules), "
        f"peak >= {c['peak_activation_mb_fp32']:.2f} MB (largest layer input + output)",
    ]


def _format_here(here: dict | None) -> list[str]:
    if here is None:
        return ["measured here: not measured (--no-measure)"]
    machine = here["machine"]
    columns = ["backend", "precision", "batch", "threads", "median_ms", "p90_ms", "p99_ms", "repeats"]
    lines = [
        f"measured here (kind: measured): {machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
        f"load average {machine['load_average_1min']:.2f}, torch {machine['torch']}, "
        f"onnxruntime {machine['onnxruntime']}",
        _frame(here["results"], columns) if here["results"] else "  (no backend ran)",
    ]
    return lines + [f"  skipped {name}: {reason}" for name, reason in here["skipped"].items()]


def _format_export(export: dict | None) -> list[str]:
    if export is None:
        return ["export: not done (--no-measure without --onnx-dir)"]
    check = export["check"]
    c, h, w = export["input_shape"]
    return [
        f"export: ONNX opset {export['opset']} ({export['exporter']} exporter), "
        f"input '{export['input_name']}' Bx{c}x{h}x{w} with a dynamic batch, "
        f"file {export['path'] or '(scratch, not kept)'}",
        f"  ONNX Runtime vs PyTorch, batches {check['batches']}: max |diff| {check['max_abs_diff']:.2e} "
        f"(tolerance {check['tolerance']:.1e}): {'ok' if check['ok'] else 'MISMATCH'}",
        *[f"  trtexec {precision}: {command}" for precision, command in export["trtexec"].items()],
        f"  note: {export['int8_note']}",
    ]


def _format_orin(orin: dict) -> list[str]:
    rows = [
        {
            **r,
            "range_ms": "-" if r.get("low_ms") is None else f"{r['low_ms']:.3f}-{r['high_ms']:.3f}",
            "source": r["source"] if r["kind"] == "measured" else "projection",
        }
        for r in orin["rows"]
    ]
    columns = ["precision", "power_mode", "batch", "kind", "latency_ms", "range_ms", "extrapolated", "source"]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    calibration = orin["calibration"]
    low, high = calibration["overhead_range_ms"]
    lines = [
        f"{orin['device']}, TensorRT, batch 1 "
        "(projected unless measured; latency '-': extrapolated, range only)",
        frame.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"),
        f"  projection: {calibration['method']}",
        "  modes other than MAXN are not anchored: overhead and bandwidth held at MAXN values (optimistic)",
        f"  fitted: efficiency {calibration['efficiency']:.3f}, "
        f"overhead {calibration['overhead_ms']:.3f} ms; ranges over overhead {low:.0f}-{high:.3f} ms",
    ]
    lines += [
        f"  anchor {a['name']}: {a['latency_ms']} ms ({a['statistic']}), "
        f"roofline bound {a['roofline_bound_ms']:.3f} ms"
        for a in calibration["anchors"]
    ]
    return lines + [
        f"  held out {h['name']}: measured {h['measured_ms']} ms, projected {h['projected_ms']:.3f} ms "
        f"({h['error_pct']:+.1f}%), range {h['range_ms'][0]:.3f}-{h['range_ms'][1]:.3f} ms"
        for h in orin["held_out_check"]
    ]


def format_report(report: dict) -> str:
    sections = [
        _format_cost(report),
        _format_here(report["measured_here"]),
        _format_export(report["export"]),
        _format_orin(report["orin"]),
    ]
    return "\n\n".join("\n".join(section) for section in sections)

"""ONNX export with a dynamic batch axis, its check against PyTorch, and the trtexec commands.

The default opset is 17 because JetPack 5.1 ships TensorRT 8.5, whose ONNX parser supports opsets up
to 17 (JetPack 6 parses newer ones too). PyTorch's torch.export-based exporter only writes opset 18 and
newer (its down-conversion of a ResNet's Pad fails), so opset 17 uses the TorchScript exporter, which
PyTorch marks deprecated but still ships; opset >= 18 uses the torch.export one.
"""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from mixlib.latency import orin_measure
from mixlib.latency.orin_measure import INPUT_NAME, trtexec_command

OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
ORIN_PRECISIONS = ("fp16", "int8")


def _export(model: nn.Module, example: torch.Tensor, path: Path, opset: int, **exporter_options) -> None:
    """`torch.onnx.export` with the input and output names every exporter here writes."""
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        **exporter_options,
    )


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    with warnings.catch_warnings():  # chosen on purpose for opset 17 (module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
        _export(model, example, path, opset, dynamic_axes=dynamic_axes, dynamo=False)


def _export_dynamo(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    _export(model, example, path, opset, dynamic_shapes=dynamic_shapes, dynamo=True, verbose=False)


def _exporter(opset: int) -> tuple[str, Callable]:
    if opset < 13:
        raise ValueError(f"opset must be >= 13 (TensorRT 8.5 and newer), got {opset}")
    return ("torchscript", _export_torchscript) if opset < 18 else ("dynamo", _export_dynamo)


def _square(input_size: int) -> tuple[int, int, int]:
    if not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    return (3, input_size, input_size)


def _cpu_eval_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to("cpu").eval()


def export_onnx(model: nn.Module, path: str | Path, input_size: int, opset: int = DEFAULT_OPSET) -> dict:
    """Write `model` (eval mode, CPU copy) to `path`: input `input` (B, 3, H, W), output `logits` (B, K)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter_name, exporter = _exporter(opset)
    example = torch.zeros(2, *_square(input_size))  # batch 2: a batch of 1 would be specialised away
    exporter(_cpu_eval_copy(model), example, path, opset)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    return {
        "path": str(path),
        "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "exporter": exporter_name,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_shape": list(_square(input_size)),  # per sample (C, H, W); axis 0 is the batch
        "dynamic_batch": True,
        "size_mb": path.stat().st_size / 1e6,
    }


def check_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: int,
    batches: tuple[int, ...] = (1, 2),
    atol: float = 1e-4,
    rtol: float = 1e-4,
    seed: int = 0,
) -> dict:
    """Compare ONNX Runtime (CPU) logits with PyTorch on random inputs at several batch sizes.

    `ok` when max |onnx - torch| <= atol + rtol * max |torch| for every batch; checking two batch sizes
    proves the batch axis is really dynamic.
    """
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference_model = _cpu_eval_copy(model)
    generator = torch.Generator().manual_seed(seed)
    diffs, scales = [], []
    for batch in batches:
        inputs = torch.randn(batch, *_square(input_size), generator=generator)
        with torch.inference_mode():
            expected = reference_model(inputs).numpy()
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})[0]
        diffs.append(float(np.max(np.abs(actual - expected))))
        scales.append(float(np.max(np.abs(expected))))
    max_diff = max(diffs)
    return {
        "batches": list(batches),
        "max_abs_diff": max_diff,
        "max_abs_logit": max(scales),
        "tolerance": atol + rtol * max(scales),
        "ok": max_diff <= atol + rtol * max(scales),
    }


def trtexec_commands(
    onnx_file: str | Path, input_size: int, precisions: tuple[str, ...] = ORIN_PRECISIONS, batch: int = 1
) -> dict[str, str]:
    """Shell command per precision (timings exported next to the engine's ONNX file)."""
    stem = Path(onnx_file).with_suffix("")
    return {
        precision: shlex.join(
            trtexec_command(
                str(onnx_file),
                _square(input_size),
                precision,
                batch,
                times_file=f"{stem}_{precision}_b{batch}.times.json",
            )
        )
        for precision in precisions
    }


INT8_NOTE = (
    "INT8 engines are built without calibration data: TensorRT uses placeholder dynamic ranges, so the "
    "INT8 run measures speed only and its outputs are meaningless"
)


def _write_command_script(out_dir: Path) -> Path:
    """`trtexec_commands.sh` for every exported model of the folder, rebuilt from the sidecars."""
    lines = ["#!/bin/sh", "# Run on the Jetson, in this folder (or use orin_measure.py).", f"# {INT8_NOTE}"]
    for sidecar in sorted(out_dir.glob("*.json")):
        export = json.loads(sidecar.read_text())
        if "trtexec" in export:
            lines += ["", f"# {export['model']}, batch 1", *export["trtexec"].values()]
    script = out_dir / "trtexec_commands.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


def write_onnx_bundle(
    model: nn.Module, out_dir: str | Path, stem: str, input_size: int, opset: int = DEFAULT_OPSET
) -> dict:
    """Export `<stem>.onnx`, check it, and write what the Orin needs next to it.

    Writes `<stem>.json` (input shape and export facts, read by the on-device script),
    `trtexec_commands.sh` (the exact commands for every model of the folder) and a copy of
    `orin_measure.py`.
    """
    out_dir = Path(out_dir)
    export = export_onnx(model, out_dir / f"{stem}.onnx", input_size, opset)
    export["check"] = check_onnx(model, export["path"], input_size)
    export["trtexec"] = trtexec_commands(Path(export["path"]).name, input_size)
    export["int8_note"] = INT8_NOTE
    (out_dir / f"{stem}.json").write_text(json.dumps({"model": stem, **export}, indent=2) + "\n")
    export["command_script"] = str(_write_command_script(out_dir))
    shutil.copy2(orin_measure.__file__, out_dir / "orin_measure.py")
    return export

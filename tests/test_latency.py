"""Latency: FLOP counts, the calibrated Orin projection, ONNX export, the device script and the CLI."""

from __future__ import annotations

import ast
import json
import stat
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from mixlib.cli import main
from mixlib.latency import orin_measure
from mixlib.latency.cli import load_checkpoint
from mixlib.latency.cost import ModelCost, model_cost
from mixlib.latency.export import check_onnx, export_onnx
from mixlib.latency.orin import ANCHORS, POWER_MODE_SCALE, held_out_check, project
from mixlib.latency.table import latency_table, onnx_stem, plot_latency_vs_flops
from mixlib.models import create_model

matplotlib.use("Agg")

# A trtexec run as JetPack 5.1 prints it (TensorRT 8.5.2, abridged), for the parser.
TRTEXEC_OUTPUT = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # /usr/src/tensorrt/bin/trtexec --onnx=tiny_32px.onnx --fp16
[11/21/2026-10:02:11] [I] === Model Options ===
[11/21/2026-10:02:11] [I] Format: ONNX
[11/21/2026-10:02:11] [I] TensorRT version: 8.5.2
[11/21/2026-10:02:12] [I] === Device Information ===
[11/21/2026-10:02:12] [I] Selected Device: Orin
[11/21/2026-10:02:12] [I] Compute Capability: 8.7
[11/21/2026-10:02:44] [I] Average on 10 runs - GPU latency: 0.2871 ms - Host latency: 0.3102 ms
[11/21/2026-10:03:14] [I]
[11/21/2026-10:03:14] [I] === Performance summary ===
[11/21/2026-10:03:14] [I] Throughput: 3402.57 qps
[11/21/2026-10:03:14] [I] Latency: min = 0.281006 ms, max = 0.90918 ms, mean = 0.293549 ms, \
median = 0.291016 ms, percentile(50%) = 0.291016 ms, percentile(90%) = 0.299805 ms, \
percentile(99%) = 0.332031 ms
[11/21/2026-10:03:14] [I] Enqueue Time: min = 0.00366211 ms, max = 0.0332031 ms, mean = 0.00425385 ms, \
median = 0.00415039 ms, percentile(50%) = 0.00415039 ms, percentile(90%) = 0.00463867 ms, \
percentile(99%) = 0.00634766 ms
[11/21/2026-10:03:14] [I] H2D Latency: min = 0.0065918 ms, max = 0.0292969 ms, mean = 0.00749158 ms, \
median = 0.00732422 ms, percentile(50%) = 0.00732422 ms, percentile(90%) = 0.00805664 ms, \
percentile(99%) = 0.0107422 ms
[11/21/2026-10:03:14] [I] GPU Compute Time: min = 0.270264 ms, max = 0.892578 ms, mean = 0.281372 ms, \
median = 0.279053 ms, percentile(50%) = 0.279053 ms, percentile(90%) = 0.287109 ms, \
percentile(99%) = 0.318359 ms
[11/21/2026-10:03:14] [I] D2H Latency: min = 0.00390625 ms, max = 0.0166016 ms, mean = 0.00468496 ms, \
median = 0.00463867 ms, percentile(50%) = 0.00463867 ms, percentile(90%) = 0.00512695 ms, \
percentile(99%) = 0.00683594 ms
[11/21/2026-10:03:14] [I] Total Host Walltime: 30.0007 s
[11/21/2026-10:03:14] [I] Total GPU Compute Time: 28.7214 s
&&&& PASSED TensorRT.trtexec [TensorRT v8502] # /usr/src/tensorrt/bin/trtexec --onnx=tiny_32px.onnx --fp16
""".replace("\\\n", "")

FAKE_ORIN = {
    "device_model": "Jetson AGX Orin Developer Kit",
    "l4t_release": "R35.3.1",
    "jetpack": "5.1.1-b56",
    "tensorrt": "8.5.2.2-1+cuda11.4",
    "power_mode": "MAXN",
    "power_mode_id": "0",
    "gpu_cur_freq_mhz": "1300.5",
    "gpu_min_freq_mhz": "1300.5",
    "gpu_max_freq_mhz": "1300.5",
    "cpu_cur_freq_mhz": "2201.6",
}


def _meta_cost(name: str, num_classes: int = 1000, input_size: int = 224) -> ModelCost:
    with torch.device("meta"):
        model = create_model(name, num_classes, input_size, small_input=False)
    return model_cost(model, input_size)


def _tiny_model() -> nn.Module:
    return create_model("test_resnet", num_classes=10, input_size=32, small_input=True)


@pytest.mark.parametrize(
    ("name", "gmacs", "params"), [("resnet18", 1.8, 11_689_512), ("resnet50", 4.1, 25_557_032)]
)
def test_flops_and_params_match_published_values(name, gmacs, params):
    cost = _meta_cost(name)
    assert cost.macs / 1e9 == pytest.approx(gmacs, rel=0.03)
    assert cost.params == params
    assert cost.weight_bytes("fp16") == 2 * params and cost.weight_bytes("int8") == params


def test_activation_figures_follow_their_definitions():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Flatten(),
        nn.Linear(4 * 8 * 8, 2),
    )  # fmt: skip
    cost = model_cost(model, 8)
    assert cost.flops == 2 * (3 * 9 * 4 * 64) + 2 * (256 * 2)
    assert cost.activation_elements == 256 + 256 + 2  # conv, batch norm, linear; in-place ReLU and view free
    assert cost.fused_activation_elements == 256 + 2  # the layers with a kernel
    assert cost.peak_activation_elements == 256 + 256  # batch norm: input + output


@pytest.mark.parametrize("anchor", ANCHORS, ids=lambda a: a.name)
def test_projection_reproduces_its_anchors(anchor):
    projection = project(anchor.cost(), anchor.precision, "MAXN")
    published = {"int8": 0.640, "fp16": 0.52}[anchor.precision]
    assert projection.latency_ms == pytest.approx(published, rel=1e-3)
    assert projection.low_ms == pytest.approx(projection.high_ms) == pytest.approx(anchor.latency_ms)
    assert projection.kind == "projected" and projection.extrapolated == ""


def test_projection_is_monotonic_in_flops_and_power_mode():
    base = _meta_cost("resnet18", 3)
    for precision in ("fp16", "int8"):
        by_flops = [project(replace(base, flops=base.flops * k), precision) for k in (0.1, 1, 4, 16, 64)]
        for field in ("low_ms", "high_ms", "bound_ms"):
            values = [getattr(p, field) for p in by_flops]
            assert values == sorted(values) and values[-1] > values[0]
        points = [p.latency_ms for p in by_flops if p.latency_ms is not None]
        assert points == sorted(points) and len(points) >= 3
        by_mode = [project(base, precision, mode) for mode in POWER_MODE_SCALE]  # MAXN first, 15 W last
        assert [p.bound_ms for p in by_mode] == sorted(p.bound_ms for p in by_mode)
        for field in ("low_ms", "high_ms"):
            values = [getattr(p, field) for p in by_mode]
            assert values == sorted(values) and values[-1] > values[0]  # compute-bound at 15 W


def test_small_model_projection_is_extrapolated_with_a_range_only():
    cost = model_cost(create_model("resnet10t", 10, 64, small_input=True), 64)
    for precision in ("fp16", "int8"):
        projection = project(cost, precision, "MAXN")
        assert projection.extrapolated == "below anchors" and projection.latency_ms is None
        assert 0 < projection.low_ms < projection.high_ms < min(a.latency_ms for a in ANCHORS)


def test_held_out_measurements_fall_inside_the_projected_range():
    checks = held_out_check()
    assert checks and all(check["inside_range"] for check in checks)


def test_projection_rejects_unknown_precision_and_mode():
    cost = _meta_cost("resnet18")
    with pytest.raises(ValueError, match="precision 'fp32'; allowed values: fp16, int8"):
        project(cost, "fp32")
    with pytest.raises(ValueError, match="power_mode '10W'"):
        project(cost, "fp16", "10W")


def test_onnx_export_gives_pytorch_logits(tmp_path):
    pytest.importorskip("onnxruntime")
    model = _tiny_model()
    export = export_onnx(model, tmp_path / "tiny.onnx", 32)
    check = check_onnx(model, export["path"], 32, batches=(1, 3))
    assert export["opset"] == 17 and export["input_name"] == "input"
    assert check["ok"] and check["max_abs_diff"] < 1e-4


def test_trtexec_parser_reads_the_performance_summary():
    summary = orin_measure.parse_trtexec_summary(TRTEXEC_OUTPUT)
    assert summary["latency"]["median"] == 0.291016
    assert summary["latency"]["p90"] == 0.299805 and summary["latency"]["p99"] == 0.332031
    assert summary["gpu_compute"]["median"] == 0.279053 and summary["gpu_compute"]["max"] == 0.892578
    assert summary["throughput_qps"] == 3402.57 and summary["tensorrt"] == "8.5.2"
    with pytest.raises(ValueError, match="Latency"):
        orin_measure.parse_trtexec_summary(TRTEXEC_OUTPUT.split("=== Performance summary ===")[0])


def test_trtexec_command_is_the_documented_one():
    command = orin_measure.trtexec_command("m.onnx", (3, 64, 64), "int8", 1, times_file="t.json")
    assert command == [
        "trtexec", "--onnx=m.onnx", "--int8", "--fp16", "--shapes=input:1x3x64x64", "--warmUp=2000",
        "--duration=30", "--useCudaGraph", "--useSpinWait", "--percentile=50,90,99", "--exportTimes=t.json",
    ]  # fmt: skip


def test_device_script_needs_only_python38_and_the_standard_library():
    tree = ast.parse(Path(orin_measure.__file__).read_text(), feature_version=(3, 8))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names)


def _run_device_script(tmp_path: Path, monkeypatch, device: dict, precision: str) -> Path:
    """orin_measure.main over one exported model, with a fake trtexec that prints `TRTEXEC_OUTPUT`."""
    trtexec = tmp_path / "trtexec"
    trtexec.write_text(f"#!/bin/sh\ncat <<'EOF'\n{TRTEXEC_OUTPUT}EOF\n")
    trtexec.chmod(trtexec.stat().st_mode | stat.S_IEXEC)
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir(exist_ok=True)
    (onnx_dir / f"{onnx_stem('tiny', 32)}.onnx").write_bytes(b"")  # the fake trtexec does not read it
    (onnx_dir / f"{onnx_stem('tiny', 32)}.json").write_text(json.dumps({"input_shape": [3, 32, 32]}))
    monkeypatch.setattr(orin_measure, "read_device_info", lambda: dict(device))
    out = tmp_path / "results" / f"measured_{precision}.csv"
    argv = [str(onnx_dir), "--out", str(out), "--trtexec", str(trtexec), "--precisions", precision]
    assert orin_measure.main([*argv, "--batches", "1"]) == 0
    return out


def test_measured_csv_replaces_the_projection(tmp_path, monkeypatch):
    orin_csv = _run_device_script(tmp_path, monkeypatch, FAKE_ORIN, "fp16")
    _run_device_script(tmp_path, monkeypatch, {**FAKE_ORIN, "device_model": "Jetson Orin Nano"}, "int8")
    table = latency_table([("tiny", _tiny_model(), 32)], measured_dir=tmp_path / "results", measure=False)
    orin = table[table["power_mode"] == "MAXN"].set_index(["target", "precision"])
    measured = orin.loc[("Jetson AGX Orin Developer Kit", "fp16")]
    assert measured["kind"] == "measured" and measured["latency_ms"] == 0.291016
    assert measured["p99_ms"] == 0.332031 and measured["source"] == str(orin_csv)
    assert ("Jetson AGX Orin 64 GB", "fp16") not in orin.index  # replaced
    assert orin.loc[("Jetson AGX Orin 64 GB", "int8"), "kind"] == "projected"  # a Nano does not replace it
    assert orin.loc[("Jetson Orin Nano", "int8"), "kind"] == "measured"
    lines = {line.get_label(): line for line in plot_latency_vs_flops(table).lines}
    assert list(lines["measured FP16"].get_ydata()) == [0.291016]  # the AGX Orin's measurement
    assert len(lines["measured INT8"].get_ydata()) == 0  # the Nano's row stays in the table only
    projected = orin.loc[("Jetson AGX Orin 64 GB", "int8")]
    x, y = lines["projected INT8"].get_data()  # the AGX Orin's projection (NaN below the anchors)
    assert np.array_equal(y, [projected["latency_ms"]], equal_nan=True)
    assert x[0] == pytest.approx(projected["gflops"], rel=0.05)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cli_json_has_measured_projected_and_export_figures(capsys, restore_threads):
    argv = ["latency", "--model", "test_resnet", "--input-size", "32", "--batches", "1", "--warmup", "1"]
    argv += ["--repeats", "5", "--threads", "1", "--backends", "torch-cpu", "onnxruntime-cpu", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"model", "cost", "measured_here", "export", "orin"} <= set(report)
    assert report["cost"]["gflops"] > 0 and report["export"]["check"]["ok"]
    here = report["measured_here"]["results"]
    assert {r["backend"] for r in here} == {"torch-cpu", "onnxruntime-cpu"}
    assert all(r["kind"] == "measured" and r["threads"] == 1 and r["median_ms"] > 0 for r in here)
    rows = report["orin"]["rows"]
    assert len(rows) == 2 * len(POWER_MODE_SCALE)
    assert all(r["kind"] == "projected" and r["method"] and "MLPerf" in r["source"] for r in rows)
    assert {"fp16", "int8"} == set(report["export"]["trtexec"])


@pytest.mark.parametrize(
    "wrap",
    [lambda state: state, lambda state: {"model": state, "history": [{"loss": np.float64(0.5)}]}],
    ids=["state_dict", "run_checkpoint"],
)
def test_checkpoint_weights_are_loaded(tmp_path, wrap):
    trained = _tiny_model()
    torch.save(wrap(trained.state_dict()), tmp_path / "checkpoint.pt")
    loaded = load_checkpoint(_tiny_model(), tmp_path / "checkpoint.pt")
    expected, actual = trained.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys() and all(torch.equal(expected[k], actual[k]) for k in expected)
    torch.save({"epoch": 3}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="no state dict"):
        load_checkpoint(_tiny_model(), tmp_path / "bad.pt")

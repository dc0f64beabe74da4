#!/usr/bin/env python3
"""Measure every ONNX model of a folder with trtexec on a Jetson and write one measured CSV.

Run it on the device itself (copy this file along with the ONNX folder; it needs only the Python 3.8+
standard library and the trtexec of JetPack). It measures in the power mode the board is in, so set
the mode first and run it once per mode:

    sudo nvpmodel -m 0 && sudo jetson_clocks   # MAXN; AGX Orin 64 GB: 3 = 50 W, 2 = 30 W, 1 = 15 W
                                                # (the mode ids are listed in /etc/nvpmodel.conf)
    python3 orin_measure.py onnx/ --out results/orin/measured_maxn.csv

For each `<stem>.onnx` it reads the input shape from the `<stem>.json` that `python -m mixlib latency
--onnx-dir` writes next to it (or from `--input-shape CxHxW`), builds the engine and times it with
`trtexec` (see `trtexec_command`), keeps the full log under `<out dir>/logs/`, parses the performance
summary and appends one row per model x precision x batch to the CSV, so a run cut short keeps what
it measured. INT8 runs without calibration data: TensorRT then uses placeholder dynamic ranges, which
measures the INT8 speed only; the outputs of such an engine are meaningless.

The CSV columns are `CSV_COLUMNS` below, the single definition of the schema; `mixlib.latency.measured`
reads these files back and puts them in place of the projection.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys

INPUT_NAME = "input"

CSV_COLUMNS = {
    "model": "ONNX file stem; mixlib names it <label>_<input size>px",
    "onnx_file": "ONNX file name",
    "input_shape": "engine input shape, BxCxHxW",
    "batch": "batch size",
    "precision": "fp32, fp16 or int8 (int8 = --int8 --fp16 without calibration data: speed only)",
    "median_ms": "median of trtexec 'Latency' (host-timed enqueue to output: H2D + GPU compute + D2H), ms",
    "p90_ms": "90th percentile of trtexec 'Latency', ms",
    "p99_ms": "99th percentile of trtexec 'Latency', ms",
    "mean_ms": "mean of trtexec 'Latency', ms",
    "min_ms": "minimum of trtexec 'Latency', ms",
    "max_ms": "maximum of trtexec 'Latency', ms",
    "gpu_compute_median_ms": "median of trtexec 'GPU Compute Time' (engine only), ms",
    "gpu_compute_p90_ms": "90th percentile of trtexec 'GPU Compute Time', ms",
    "gpu_compute_p99_ms": "99th percentile of trtexec 'GPU Compute Time', ms",
    "throughput_qps": "trtexec throughput, inferences (queries) per second",
    "device_model": "/proc/device-tree/model, e.g. 'Jetson AGX Orin Developer Kit'",
    "l4t_release": "L4T release from /etc/nv_tegra_release, e.g. R35.3.1",
    "jetpack": "version of the nvidia-jetpack package ('' when the meta package is not installed)",
    "tensorrt": "TensorRT version printed by trtexec (dpkg version of tensorrt as fallback)",
    "power_mode": "nvpmodel -q mode name, e.g. MAXN, MODE_50W, MODE_30W, MODE_15W",
    "power_mode_id": "nvpmodel -q mode number",
    "gpu_cur_freq_mhz": "GPU clock when the run started (devfreq cur_freq), MHz",
    "gpu_min_freq_mhz": "GPU devfreq min_freq, MHz",
    "gpu_max_freq_mhz": "GPU devfreq max_freq, MHz (min == max: clocks locked, e.g. by jetson_clocks)",
    "cpu_cur_freq_mhz": "CPU0 clock when the run started (cpufreq scaling_cur_freq), MHz",
    "trtexec_command": "the exact trtexec command line",
    "timestamp": "UTC start time of the run, ISO 8601",
    "log_file": "trtexec log, relative to the CSV",
}

PRECISION_FLAGS = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}
DEFAULT_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"

# trtexec's performance summary, e.g.
# "[I] Latency: min = 0.61 ms, max = 1.02 ms, mean = 0.63 ms, median = 0.63 ms, percentile(90%) = ..."
# the name starts the line or follows the "[I] " tag, so "H2D Latency" is not "Latency"
_SUMMARY_LINE = re.compile(
    r"(?:^|\] )(?P<name>Latency|GPU Compute Time): (?P<fields>min = .*)$", re.MULTILINE
)
_SUMMARY_FIELD = re.compile(
    r"(?P<key>min|max|mean|median|percentile\((?P<percent>[\d.]+)%\)) = (?P<value>\S+) ms"
)
_THROUGHPUT = re.compile(r"Throughput: (?P<value>\S+) qps")
_TRT_VERSION = re.compile(r"TensorRT version: (?P<value>[\d.]+)")
_NVPMODEL = re.compile(r"NV Power Mode:\s*(?P<name>\S+)\s*\n\s*(?P<id>\d+)")
_L4T = re.compile(r"R(?P<major>\d+) \(release\), REVISION: (?P<revision>[\d.]+)")


def _summary_statistics(fields: str) -> dict:
    stats = {}
    for match in _SUMMARY_FIELD.finditer(fields):
        percent = match.group("percent")
        key = match.group("key") if percent is None else "p" + format(float(percent), "g")
        stats[key] = float(match.group("value"))
    return stats


def parse_trtexec_summary(text: str) -> dict:
    """The performance summary of a trtexec log: latency and GPU compute statistics in ms.

    Returns {"latency": {...}, "gpu_compute": {...}, "throughput_qps": float or None,
    "tensorrt": str or None}; the statistics dictionaries hold min, max, mean, median and one
    "p<percent>" entry per reported percentile (p50, p90, p99 with --percentile=50,90,99).
    """
    sections = {}
    for match in _SUMMARY_LINE.finditer(text):  # the summary comes last: later lines win
        name = "latency" if match.group("name") == "Latency" else "gpu_compute"
        sections[name] = _summary_statistics(match.group("fields"))
    if "latency" not in sections:
        raise ValueError("no 'Latency: min = ... ms' line in the trtexec output: the run did not finish")
    throughput = _THROUGHPUT.findall(text)
    version = _TRT_VERSION.search(text)
    return {
        "latency": sections["latency"],
        "gpu_compute": sections.get("gpu_compute", {}),
        "throughput_qps": float(throughput[-1]) if throughput else None,
        "tensorrt": version.group("value") if version else None,
    }


def trtexec_command(
    onnx_file: str,
    input_shape: tuple,
    precision: str,
    batch: int = 1,
    trtexec: str = "trtexec",
    warmup_ms: int = 2000,
    duration_s: int = 30,
    times_file: str | None = None,
) -> list:
    """The trtexec command that builds and times one engine; `input_shape` is (C, H, W).

    CUDA graphs and spin-waiting keep launch and wake-up jitter out of a batch-1 measurement; the
    warm-up (ms) and the duration (s) keep clock ramp-up out of the statistics.
    """
    if precision not in PRECISION_FLAGS:
        raise ValueError(f"unknown precision {precision!r}; allowed values: {', '.join(PRECISION_FLAGS)}")
    channels, height, width = input_shape
    command = [trtexec, f"--onnx={onnx_file}", *PRECISION_FLAGS[precision]]
    command += [f"--shapes={INPUT_NAME}:{batch}x{channels}x{height}x{width}"]
    command += [f"--warmUp={warmup_ms}", f"--duration={duration_s}", "--useCudaGraph", "--useSpinWait"]
    command += ["--percentile=50,90,99"]
    if times_file:
        command.append(f"--exportTimes={times_file}")
    return command


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().replace("\x00", "").strip()
    except OSError:
        return ""


def _output(command: list) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _mhz(path: str, units_per_mhz: float) -> str:
    value = _read(path)
    return format(int(value) / units_per_mhz, "g") if value.isdigit() else ""


def read_device_info() -> dict:
    """Device, software and clock columns of the CSV, read once per run ('' where unavailable)."""
    l4t = _L4T.search(_read("/etc/nv_tegra_release"))
    power = _NVPMODEL.search(_output(["nvpmodel", "-q"]) or _output(["sudo", "-n", "nvpmodel", "-q"]))
    gpu = sorted(glob.glob("/sys/class/devfreq/17000000.*"))  # the Orin GPU: 17000000.ga10b or .gpu
    gpu_dir = gpu[0] if gpu else "/nonexistent"
    return {
        "device_model": _read("/proc/device-tree/model"),
        "l4t_release": f"R{l4t.group('major')}.{l4t.group('revision')}" if l4t else "",
        "jetpack": _output(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"]).strip(),
        "tensorrt": _output(["dpkg-query", "-W", "-f=${Version}", "tensorrt"]).strip(),
        "power_mode": power.group("name") if power else "",
        "power_mode_id": power.group("id") if power else "",
        # devfreq reports Hz, cpufreq kHz
        "gpu_cur_freq_mhz": _mhz(os.path.join(gpu_dir, "cur_freq"), 1e6),
        "gpu_min_freq_mhz": _mhz(os.path.join(gpu_dir, "min_freq"), 1e6),
        "gpu_max_freq_mhz": _mhz(os.path.join(gpu_dir, "max_freq"), 1e6),
        "cpu_cur_freq_mhz": _mhz("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", 1e3),
    }


def model_input_shape(onnx_file: str, override: str | None) -> tuple:
    """(C, H, W) from `--input-shape CxHxW` or from the `<stem>.json` written by mixlib's export."""
    if override:
        return tuple(int(v) for v in override.lower().split("x"))
    sidecar = os.path.splitext(onnx_file)[0] + ".json"
    if not os.path.exists(sidecar):
        raise SystemExit(f"{onnx_file}: no {os.path.basename(sidecar)} next to it; pass --input-shape CxHxW")
    with open(sidecar, encoding="utf-8") as handle:
        return tuple(json.load(handle)["input_shape"])


def _row(onnx_file, shape, precision, batch, summary, device, command, started, log_file) -> dict:
    latency, compute = summary["latency"], summary["gpu_compute"]
    return {
        "model": os.path.splitext(os.path.basename(onnx_file))[0],
        "onnx_file": os.path.basename(onnx_file),
        "input_shape": "x".join(str(v) for v in (batch, *shape)),
        "batch": batch,
        "precision": precision,
        "median_ms": latency.get("median", ""),
        "p90_ms": latency.get("p90", ""),
        "p99_ms": latency.get("p99", ""),
        "mean_ms": latency.get("mean", ""),
        "min_ms": latency.get("min", ""),
        "max_ms": latency.get("max", ""),
        "gpu_compute_median_ms": compute.get("median", ""),
        "gpu_compute_p90_ms": compute.get("p90", ""),
        "gpu_compute_p99_ms": compute.get("p99", ""),
        "throughput_qps": summary["throughput_qps"] if summary["throughput_qps"] is not None else "",
        **device,
        "tensorrt": summary["tensorrt"] or device["tensorrt"],
        "trtexec_command": " ".join(command),
        "timestamp": started,
        "log_file": log_file,
    }


def _append(csv_file: str, row: dict) -> None:
    new = not os.path.exists(csv_file)
    with open(csv_file, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        if new:
            writer.writeheader()
        writer.writerow(row)


def measure_one(args, onnx_file: str, precision: str, batch: int, device: dict) -> bool:
    shape = model_input_shape(onnx_file, args.input_shape)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    stem = f"{os.path.splitext(os.path.basename(onnx_file))[0]}_{precision}_b{batch}"
    log_file = os.path.join("logs", stem + ".log")
    times = os.path.join(out_dir, "logs", stem + ".times.json")
    command = trtexec_command(
        onnx_file, shape, precision, batch, args.trtexec, args.warmup_ms, args.duration_s, times
    )
    print(" ".join(command), flush=True)
    if args.dry_run:
        return True
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    result = subprocess.run(command, capture_output=True, text=True)
    with open(os.path.join(out_dir, log_file), "w", encoding="utf-8") as handle:
        handle.write(result.stdout + result.stderr)
    try:
        summary = parse_trtexec_summary(result.stdout)
    except ValueError as error:
        print(f"  failed (exit status {result.returncode}): {error}; see {log_file}", file=sys.stderr)
        return False
    _append(args.out, _row(onnx_file, shape, precision, batch, summary, device, command, started, log_file))
    print(f"  median {summary['latency'].get('median')} ms, p99 {summary['latency'].get('p99')} ms")
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx_dir", help="folder with the .onnx files (and their .json sidecars)")
    parser.add_argument("--out", required=True, help="CSV to append to, e.g. results/orin/measured_maxn.csv")
    parser.add_argument("--precisions", nargs="+", default=["fp16", "int8"], choices=list(PRECISION_FLAGS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--warmup-ms", type=int, default=2000)
    parser.add_argument("--duration-s", type=int, default=30)
    parser.add_argument("--input-shape", help="CxHxW for every model, instead of the .json sidecars")
    parser.add_argument("--trtexec", default=shutil.which("trtexec") or DEFAULT_TRTEXEC)
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    return parser


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    onnx_files = sorted(glob.glob(os.path.join(args.onnx_dir, "*.onnx")))
    if not onnx_files:
        raise SystemExit(f"no .onnx files in {args.onnx_dir}")
    if not args.dry_run and shutil.which(args.trtexec) is None:
        raise SystemExit(f"trtexec not found at {args.trtexec}; pass --trtexec PATH")
    os.makedirs(os.path.join(os.path.dirname(os.path.abspath(args.out)), "logs"), exist_ok=True)
    device = read_device_info()
    print(f"{device['device_model'] or 'unknown device'}, power mode {device['power_mode'] or 'unknown'}")
    results = [
        measure_one(args, onnx_file, precision, batch, device)
        for onnx_file in onnx_files
        for precision in args.precisions
        for batch in args.batches
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

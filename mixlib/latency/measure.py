"""Latency measured on the machine at hand, one registered backend per way of running the model.

Each backend turns (model, ONNX file, batch, input shape) into a zero-argument `run` and has a timer:
wall clock (`time.perf_counter`) on the CPU, `torch.cuda.Event` pairs on a GPU (so host jitter between
kernel launches does not count). Every measurement warms up first, then records up to `repeats` single
calls, stopping early once `budget_s` seconds of timed calls have passed (never below `MIN_REPEATS`
calls) so that a slow backend on a busy CPU cannot hold the run up, and reports the median and the
90th/99th percentiles with the number of calls behind them (with fewer than 100, p99 is close to the
maximum). The thread count is recorded with each figure: PyTorch uses `torch.get_num_threads()` and
ONNX Runtime is given the same number of intra-op threads, so the two CPU backends compete on equal
terms. On a CPU shared with other busy processes, OpenMP threads that spin-wait for each other can
make PyTorch many times slower with as many threads as cores than with one (seen here: about 10x at
2 threads on 2 loaded cores); the load average is recorded for that reason, and `--threads 1` checks it.

`torch-compile-cpu` is opt-in: Inductor compiles C++ for every new batch size, which took about a
minute and a half per shape on the 2-core development machine, far longer than the measurement.
"""

from __future__ import annotations

import copy
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from mixlib.latency.orin_measure import INPUT_NAME
from mixlib.registry import Registry

Runner = Callable[[], object]


@dataclass(frozen=True)
class Backend:
    name: str
    device: str
    precision: str
    unavailable: Callable[[], str | None]  # why the backend cannot run here, or None
    build: Callable[[nn.Module, Path, int, tuple[int, int, int]], tuple[Runner, int]]  # run, threads
    timer: Callable[[Runner, int, int, float], list[float]]  # run, warmup, repeats, budget_s
    may_fail: bool = False  # a failure is recorded as the reason it was skipped instead of raised
    opt_in: str = ""  # why the backend is not in DEFAULT_BACKENDS; reported when it is not selected


BACKENDS: Registry[Backend] = Registry("latency backend")
DEFAULT_BACKENDS = ("torch-cpu", "onnxruntime-cpu", "torch-cuda", "torch-cuda-fp16")
MIN_REPEATS = 5


def _enough(times: list[float], repeats: int, budget_s: float) -> bool:
    return len(times) >= repeats or (len(times) >= MIN_REPEATS and sum(times) > budget_s * 1e3)


def _cpu_times(run: Runner, warmup: int, repeats: int, budget_s: float) -> list[float]:
    for _ in range(warmup):
        run()
    times = []
    while not _enough(times, repeats, budget_s):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _cuda_times(run: Runner, warmup: int, repeats: int, budget_s: float) -> list[float]:
    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    times = []
    while not _enough(times, repeats, budget_s):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def _torch_runner(model: nn.Module, inputs: torch.Tensor) -> Runner:
    def run() -> torch.Tensor:
        with torch.inference_mode():
            return model(inputs)

    return run


def _torch_build(device: str, dtype: torch.dtype, compile_model: bool = False) -> Callable:
    def build(model: nn.Module, _onnx: Path, batch: int, shape: tuple[int, int, int]) -> tuple[Runner, int]:
        module = copy.deepcopy(model).eval().to(device=device, dtype=dtype)
        if compile_model:
            module = torch.compile(module, dynamic=False)
        inputs = torch.randn(batch, *shape).to(device=device, dtype=dtype)
        return _torch_runner(module, inputs), torch.get_num_threads()

    return build


def _onnxruntime_build(_model: nn.Module, onnx_file: Path, batch: int, shape: tuple[int, int, int]):
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32)}
    return (lambda: session.run(None, feed)), options.intra_op_num_threads


def _no_cuda() -> str | None:
    return None if torch.cuda.is_available() else "no CUDA device (torch.cuda.is_available() is False)"


BACKENDS.register("torch-cpu")(
    Backend("torch-cpu", "cpu", "fp32", lambda: None, _torch_build("cpu", torch.float32), _cpu_times)
)
BACKENDS.register("onnxruntime-cpu")(
    Backend("onnxruntime-cpu", "cpu", "fp32", lambda: None, _onnxruntime_build, _cpu_times)
)
BACKENDS.register("torch-compile-cpu")(
    Backend(
        "torch-compile-cpu",
        "cpu",
        "fp32",
        lambda: None,
        _torch_build("cpu", torch.float32, compile_model=True),
        _cpu_times,
        may_fail=True,
        opt_in="opt-in (--backends ... torch-compile-cpu): Inductor compiles for minutes per batch size on a "
        "small CPU (about 1.5 min per shape on 2 cores), longer than the measurement",
    )
)
BACKENDS.register("torch-cuda")(
    Backend("torch-cuda", "cuda", "fp32", _no_cuda, _torch_build("cuda", torch.float32), _cuda_times)
)
BACKENDS.register("torch-cuda-fp16")(
    Backend("torch-cuda-fp16", "cuda", "fp16", _no_cuda, _torch_build("cuda", torch.float16), _cuda_times)
)


@dataclass(frozen=True)
class LatencyStats:
    backend: str
    device: str
    precision: str
    batch: int
    threads: int
    warmup: int
    repeats: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    kind: str = "measured"

    def to_dict(self) -> dict:
        return asdict(self)


def _stats(backend: Backend, batch: int, threads: int, warmup: int, times: list[float]) -> LatencyStats:
    median, p90, p99 = np.percentile(times, [50, 90, 99])
    return LatencyStats(
        backend=backend.name,
        device=backend.device,
        precision=backend.precision,
        batch=batch,
        threads=threads,
        warmup=warmup,
        repeats=len(times),
        median_ms=float(median),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(np.mean(times)),
        min_ms=float(np.min(times)),
    )


def machine_info() -> dict:
    """What the figures were measured on, including the load: other processes slow a shared CPU."""
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "host": platform.node(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def measure_latency(
    model: nn.Module,
    onnx_file: str | Path,
    input_shape: tuple[int, int, int],
    backends: tuple[str, ...] = DEFAULT_BACKENDS,
    batches: tuple[int, ...] = (1, 8),
    warmup: int = 3,
    repeats: int = 50,
    budget_s: float = 1.5,
) -> dict:
    """Measure every available backend at every batch size; returns results, skipped backends, machine."""
    if warmup < 0 or repeats < MIN_REPEATS or budget_s <= 0 or not batches or min(batches) < 1:
        raise ValueError(
            f"need warmup >= 0, repeats >= {MIN_REPEATS}, budget_s > 0 and batches of sizes >= 1; got "
            f"warmup={warmup}, repeats={repeats}, budget_s={budget_s}, batches={batches}"
        )
    selected = [BACKENDS.get(name, "backend") for name in backends]
    results, skipped = [], {}
    for backend in selected:
        reason = backend.unavailable()
        if reason:
            skipped[backend.name] = reason
            continue
        try:
            for batch in batches:
                run, threads = backend.build(model, Path(onnx_file), batch, tuple(input_shape))
                times = backend.timer(run, warmup, repeats, budget_s)
                results.append(_stats(backend, batch, threads, warmup, times))
        except Exception as error:  # only for backends marked may_fail, e.g. torch.compile
            if not backend.may_fail:
                raise
            skipped[backend.name] = f"failed: {type(error).__name__}: {error}"[:500]
    for name in BACKENDS:
        if name not in backends:
            skipped[name] = BACKENDS.get(name).opt_in or "not selected"
    return {"machine": machine_info(), "results": [r.to_dict() for r in results], "skipped": skipped}

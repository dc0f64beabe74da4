"""Batch-1 latency projection to the Jetson AGX Orin 64 GB, calibrated on published measurements.

Every number here is a *projection* (`kind: projected`): measure on the device with
`mixlib/latency/orin_measure.py` and drop the CSV into the measured folder to replace it.

Hardware (NVIDIA Jetson AGX Orin 64 GB data sheet): tensor-core peak 85 FP16 TFLOPS and 170 INT8 TOPS
with 2:4 sparsity, so half of that dense (42.5 and 85); LPDDR5 at 204.8 GB/s. The power modes scale the
GPU peak by 1.0 (MAXN), 0.64 (50 W), 0.24 (30 W) and 0.08 (15 W) (NVIDIA Deep-Learning-Accelerator-SW
README, GPU peak per mode).

The model, for precision p and power mode m:

    compute = FLOPs / (peak_p * scale_m)
    memory  = bytes_p / 204.8 GB/s,   bytes_p = size_p * (parameters + 2 * fused activations)
    B       = max(compute, memory)                       (the roofline bound)
    T       = o + B / e                                  (projected latency)

`size_p` is 2 bytes (FP16) or 1 (INT8); the fused activations are the outputs of the convolutions and
linear layers (`mixlib.latency.cost`), each written once and read once, which is what TensorRT
materialises after fusing batch norm, activation and residual add into the convolution. The input
image and workspace are not counted. At batch 1 every ResNet here is memory-bound in this model (its
weights are read once per image), which is why weight size, not FLOPs, drives the projection.

Calibration anchors (one per precision, both at MAXN, batch 1, 224x224):

* ResNet-50 v1.5, INT8, TensorRT: 0.640258 ms, 90th percentile (median 0.636227 ms). MLPerf Inference
  v3.1, closed division, NVIDIA system "Orin_TRT" (Jetson AGX Orin Developer Kit 64G, JetPack 5.1.1,
  TensorRT 8.5.2), SingleStream; mlcommons/inference_results_v3.1,
  closed/NVIDIA/results/Orin_TRT/resnet50/SingleStream/performance/run_1/mlperf_log_summary.txt.
* ResNet-18, FP16, TensorRT: 0.520046 ms (3-class head; the statistic is not stated). NetsPresso
  benchmark, JetPack 5.0.1, Jetson AGX Orin; Nota-NetsPresso/netspresso-trainer,
  docs/benchmarks/device_matrix/tensorrt.md. The same table's ResNet-34 (0.87017 ms) and ResNet-50
  (1.1421 ms) FP16 are *held out* (`HELD_OUT`) to check the fit, never fitted.

Fitting. Two anchors cannot separate a per-precision efficiency from a fixed overhead (three unknowns),
so the point estimate assumes one efficiency e for both precisions (TensorRT reaches the same fraction
of the precision's bound) and one overhead o (launch, synchronisation, copies): the two anchors then fix
e and o exactly (a straight line through two points in (B, T)). Its weakness: the anchors' bounds differ
by only ~0.08 ms and come from different software stacks and statistics (p90 vs an unstated one), so
e and o are ill-conditioned: with the ResNet-18 anchor 0.02 ms lower or higher, (e, o) moves from
(0.63, 0.27 ms) to (0.54, 0.21 ms) or (0.76, 0.33 ms); 0.05 ms higher and no e <= 1 fits at all.

The range says how much that split matters. Any overhead 0 <= o <= o_max also reproduces both anchors
exactly when each precision gets its own efficiency e_p(o) = B_anchor / (T_anchor - o); o_max is the
largest overhead that keeps every e_p <= 1. The projected range is T over that family, which is exact at
the anchors, narrow near them and wide far from them:

    T(o) = o + B * (T_anchor_p - o) / B_anchor_p,     range = [T(0), T(o_max)] (sorted)

Below the smallest anchored bound (models much smaller than ResNet-18, e.g. ResNet-10-T at 64x64) the
overhead dominates and is not anchored: the projection is flagged extrapolated and gives only the range
(from "pure roofline at the anchored efficiency", o = 0, to "overhead-dominated", o = o_max), no single
number. Above the largest anchored bound it is flagged extrapolated but keeps its point estimate.

Further weaknesses: the power modes only scale the compute peak. Memory bandwidth and the overhead are
held at their MAXN values although the lower modes also lower the CPU and GPU (and possibly memory)
clocks, so the 30 W and 15 W projections are optimistic; no anchor exists outside MAXN. The fit is
checked, not tuned, on the held-out points: `held_out_check()` reports the point estimate's error and
whether each published value lies inside the projected range. T is monotonic in FLOPs,
in bytes and in the power mode's scale by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache, lru_cache

import numpy as np
import torch

from mixlib.checks import choose
from mixlib.latency.cost import ModelCost, bytes_per_element, model_cost
from mixlib.models import create_model

DEVICE_NAME = "Jetson AGX Orin 64 GB"
MEMORY_BANDWIDTH = 204.8e9  # bytes/s, LPDDR5
DENSE_PEAK_MAXN = {"fp16": 85e12 / 2, "int8": 170e12 / 2}  # sparse data-sheet peaks halved
POWER_MODE_SCALE = {"MAXN": 1.0, "50W": 0.64, "30W": 0.24, "15W": 0.08}
METHOD = (
    "roofline max(FLOPs/dense peak, (weights + 2 x conv/linear outputs) at precision / 204.8 GB/s) "
    "/ efficiency + overhead; efficiency and overhead fitted to the anchors; power modes scale the "
    "compute peak only"
)


@dataclass(frozen=True)
class Anchor:
    """A published Jetson AGX Orin 64 GB measurement at MAXN, batch 1, and how to rebuild its model."""

    name: str
    model: str
    num_classes: int
    input_size: int
    precision: str
    latency_ms: float
    statistic: str
    citation: str

    def cost(self) -> ModelCost:
        return _anchor_cost(self.model, self.num_classes, self.input_size)


MLPERF_SOURCE = (
    "MLPerf Inference v3.1 closed, NVIDIA Orin_TRT (Jetson AGX Orin Developer Kit 64G, JetPack 5.1.1, "
    "TensorRT 8.5.2), SingleStream; mlcommons/inference_results_v3.1 "
    "closed/NVIDIA/results/Orin_TRT/resnet50/SingleStream/performance/run_1/mlperf_log_summary.txt"
)
NETSPRESSO_SOURCE = (
    "NetsPresso benchmark, Jetson AGX Orin, JetPack 5.0.1, TensorRT FP16; "
    "Nota-NetsPresso/netspresso-trainer docs/benchmarks/device_matrix/tensorrt.md"
)
ANCHORS = (
    Anchor("MLPerf v3.1 ResNet-50 INT8", "resnet50", 1000, 224, "int8", 0.640258, "p90", MLPERF_SOURCE),
    Anchor("NetsPresso ResNet-18 FP16", "resnet18", 3, 224, "fp16", 0.520046, "unstated", NETSPRESSO_SOURCE),
)
HELD_OUT = (
    Anchor("NetsPresso ResNet-34 FP16", "resnet34", 3, 224, "fp16", 0.87017, "unstated", NETSPRESSO_SOURCE),
    Anchor("NetsPresso ResNet-50 FP16", "resnet50", 3, 224, "fp16", 1.1421, "unstated", NETSPRESSO_SOURCE),
)


@cache
def _anchor_cost(name: str, num_classes: int, input_size: int) -> ModelCost:
    with torch.device("meta"):  # counting only: no weights allocated, no arithmetic done
        model = create_model(name, num_classes, input_size, small_input=False)
    return model_cost(model, input_size)


@dataclass(frozen=True)
class Roofline:
    compute_ms: float
    memory_ms: float

    @property
    def bound_ms(self) -> float:
        return max(self.compute_ms, self.memory_ms)


def roofline(cost: ModelCost, precision: str, power_mode: str = "MAXN") -> Roofline:
    """Compute and memory time of one batch-1 inference at the mode's dense peak (see module docstring)."""
    choose("precision", precision, DENSE_PEAK_MAXN)
    choose("power_mode", power_mode, POWER_MODE_SCALE)
    peak = DENSE_PEAK_MAXN[precision] * POWER_MODE_SCALE[power_mode]
    traffic = bytes_per_element(precision) * (cost.params + 2 * cost.fused_activation_elements)
    return Roofline(compute_ms=cost.flops / peak * 1e3, memory_ms=traffic / MEMORY_BANDWIDTH * 1e3)


@dataclass(frozen=True)
class Calibration:
    """Fitted constants: the shared line T = overhead + B / efficiency and the overhead family's limit."""

    overhead_ms: float
    efficiency: float
    overhead_max_ms: float
    anchors: tuple[Anchor, ...]
    anchor_bounds_ms: tuple[float, ...]

    def inverse_efficiency(self, precision: str, overhead_ms: float) -> float:
        """1 / e_p(o): least squares over the precision's anchors (exact with one anchor)."""
        pairs = [(b, a.latency_ms) for a, b in zip(self.anchors, self.anchor_bounds_ms, strict=True)]
        pairs = [(b, t) for (b, t), a in zip(pairs, self.anchors, strict=True) if a.precision == precision]
        if not pairs:
            raise ValueError(f"no calibration anchor for precision {precision!r}")
        return sum(b * (t - overhead_ms) for b, t in pairs) / sum(b * b for b, _ in pairs)

    def to_dict(self) -> dict:
        return {
            "overhead_ms": self.overhead_ms,
            "efficiency": self.efficiency,
            "overhead_range_ms": [0.0, self.overhead_max_ms],
            "efficiency_range": {
                p: [1 / self.inverse_efficiency(p, 0.0), 1 / self.inverse_efficiency(p, self.overhead_max_ms)]
                for p in sorted({a.precision for a in self.anchors})
            },
            "anchors": [
                {**asdict(a), "roofline_bound_ms": b}
                for a, b in zip(self.anchors, self.anchor_bounds_ms, strict=True)
            ],
            "method": METHOD,
        }


def calibrate(anchors: tuple[Anchor, ...] = ANCHORS) -> Calibration:
    """Fit the shared efficiency and overhead to `anchors` (all at MAXN) and the overhead family's limit."""
    bounds = tuple(roofline(a.cost(), a.precision).bound_ms for a in anchors)
    latencies = [a.latency_ms for a in anchors]
    if len(set(bounds)) < 2:
        raise ValueError("calibration needs anchors with at least two different roofline bounds")
    inverse_efficiency, overhead = np.polyfit(bounds, latencies, 1)
    overhead_max = min(t - b for t, b in zip(latencies, bounds, strict=True))  # keeps every e_p <= 1
    if inverse_efficiency < 1 or not 0 <= overhead <= overhead_max:
        raise ValueError(
            f"anchors give efficiency {1 / inverse_efficiency:.3g} and overhead {overhead:.3g} ms, outside "
            f"(0, 1] and [0, {overhead_max:.3g}] ms: they do not fit the roofline model"
        )
    return Calibration(float(overhead), float(1 / inverse_efficiency), overhead_max, tuple(anchors), bounds)


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    return calibrate(ANCHORS)


@dataclass(frozen=True)
class Projection:
    precision: str
    power_mode: str
    compute_ms: float
    memory_ms: float
    bound_ms: float
    latency_ms: float | None  # None when extrapolated below the anchors: only the range is given
    low_ms: float
    high_ms: float
    extrapolated: str  # "", "below anchors" or "above anchors"
    mode_anchored: bool
    kind: str = "projected"


def _family_latency(bound_ms: float, precision: str, overhead_ms: float, calibration: Calibration) -> float:
    return overhead_ms + bound_ms * calibration.inverse_efficiency(precision, overhead_ms)


def project(
    cost: ModelCost, precision: str, power_mode: str = "MAXN", calibration: Calibration | None = None
) -> Projection:
    """Projected batch-1 TensorRT latency on the Jetson AGX Orin 64 GB (see the module docstring)."""
    calibration = calibration or default_calibration()
    bounds = roofline(cost, precision, power_mode)
    bound = bounds.bound_ms
    overheads = (0.0, calibration.overhead_max_ms)
    ends = sorted(_family_latency(bound, precision, o, calibration) for o in overheads)
    smallest, largest = min(calibration.anchor_bounds_ms), max(calibration.anchor_bounds_ms)
    extrapolated = "below anchors" if bound < smallest else "above anchors" if bound > largest else ""
    point = calibration.overhead_ms + bound / calibration.efficiency
    return Projection(
        precision=precision,
        power_mode=power_mode,
        compute_ms=bounds.compute_ms,
        memory_ms=bounds.memory_ms,
        bound_ms=bound,
        latency_ms=None if extrapolated == "below anchors" else point,
        low_ms=ends[0],
        high_ms=ends[1],
        extrapolated=extrapolated,
        mode_anchored=power_mode == "MAXN",
    )


def project_all(
    cost: ModelCost,
    precisions: tuple[str, ...] = tuple(DENSE_PEAK_MAXN),
    power_modes: tuple[str, ...] = tuple(POWER_MODE_SCALE),
    calibration: Calibration | None = None,
) -> list[Projection]:
    return [project(cost, p, m, calibration) for p in precisions for m in power_modes]


def held_out_check(calibration: Calibration | None = None) -> list[dict]:
    """Projection vs the published measurements that were *not* fitted (`HELD_OUT`)."""
    calibration = calibration or default_calibration()
    rows = []
    for anchor in HELD_OUT:
        projection = project(anchor.cost(), anchor.precision, "MAXN", calibration)
        point = projection.latency_ms
        rows.append(
            {
                "name": anchor.name,
                "measured_ms": anchor.latency_ms,
                "projected_ms": point,
                "error_pct": None if point is None else 100 * (point / anchor.latency_ms - 1),
                "range_ms": [projection.low_ms, projection.high_ms],
                "inside_range": projection.low_ms <= anchor.latency_ms <= projection.high_ms,
                "citation": anchor.citation,
            }
        )
    return rows

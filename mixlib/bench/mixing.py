"""`python -m mixlib bench mixing`: the speed of every mixing method, measured side by side.

1. Milliseconds per batch of each method (forced on, p = 1) on one batch, against `timm.data.Mixup`
   (mixup mode and cutmix mode) and `torchvision.transforms.v2` MixUp/CutMix, and a plain
   `torch.lerp` of two whole batches, the memory-bandwidth floor of any method that writes a new
   batch. All candidates are timed round-robin (one call each per round), so load changes hit them
   alike; figures are medians. The model-based methods (a forward, or forward and backward, pass of
   the model) get fewer rounds (`--model-repeats`). Methods with a `per_sample` option are timed
   twice: as trained (one lambda and geometry per sample) and "per batch" (one draw shared by the
   batch, as in the original papers' code). Each is compared with its library twin: per sample with
   timm's `mode="elem"` (one lambda and box per sample), per batch with timm's default `mode="batch"`;
   torchvision draws once per batch only, so both rows are compared with it.
2. The overhead of each method on a whole `mixlib.training.training_step` of resnet10t, relative to
   the step without mixing, steps interleaved the same way.

timm's Mixup mixes in place, so it works on its own copy of the batch; the library figures include
building their one-hot targets, ours the label indices, per-sample lam, mask and partner index.

Memory: by default (`--malloc steady`) glibc is told to keep freed memory in the process
(`steady_allocator`). Otherwise glibc returns large freed blocks to the kernel, every new batch-sized
tensor page-faults back in, and on a virtual machine those faults can cost more than the arithmetic
(a 2 MB temporary measured 0.16 ms reused and about 2 ms freshly mapped here), so figures swing with
whatever else the process allocated. PyTorch's CPU performance guide recommends jemalloc or tcmalloc,
which keep memory the same way; `--malloc default` measures glibc's defaults.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
from collections.abc import Callable

import timm
import torch
import torchvision
from timm.data import Mixup
from torchvision.transforms import v2

from mixlib.bench.timing import seconds, steady_allocator
from mixlib.mixing import METHODS, MIXING, create_batch_transform
from mixlib.models import create_model
from mixlib.training import training_step

NUM_CLASSES = 10
FLOOR = "torch.lerp (floor)"
PER_BATCH = " (per batch)"
TIMM_MODES = {"": "elem", PER_BATCH: "batch"}
# Each row's (timm, torchvision) twin: timm in the same per-sample or per-batch mode.
LIBRARY_EQUIVALENTS = {
    method + suffix: (f"timm Mixup ({method}, {mode})", f"torchvision v2 {label}")
    for method, label in (("mixup", "MixUp"), ("cutmix", "CutMix"))
    for suffix, mode in TIMM_MODES.items()
}
MODEL_BASED = ("attentive_cutmix", "puzzlemix")
LERP_TARGET = 3.0  # the bound for static methods, in multiples of the lerp floor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=128, help="images per transformed batch")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds of the transforms")
    parser.add_argument(
        "--model-repeats", type=int, default=3, help="timed rounds of the model-based methods"
    )
    parser.add_argument("--step-batch-size", type=int, default=32, help="images per training step")
    parser.add_argument("--step-repeats", type=int, default=3, help="timed training steps per method")
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto: the CPU, and CUDA too when present",
    )
    parser.add_argument("--methods", default="all", help="comma-separated method names, or all")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: leave torch's setting); 1 is steadier on a shared machine",
    )
    parser.add_argument(
        "--malloc",
        default="steady",
        choices=["steady", "default"],
        help="steady: keep freed memory in the process (glibc only); default: glibc's own thresholds",
    )
    parser.add_argument("--seed", type=int, default=0)


def benchmark(args: argparse.Namespace) -> dict:
    methods = _methods(args.methods)
    minimums = {
        "--batch-size": (args.batch_size, 2),
        "--image-size": (args.image_size, 8),
        "--repeats": (args.repeats, 1),
        "--model-repeats": (args.model_repeats, 1),
        "--step-batch-size": (args.step_batch_size, 2),
        "--step-repeats": (args.step_repeats, 1),
        "--threads": (1 if args.threads is None else args.threads, 1),
    }
    for name, (value, minimum) in minimums.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    malloc = "steady" if args.malloc == "steady" and steady_allocator() else "default"
    devices = _devices(args.device)
    results = {}
    for device in devices:
        torch.manual_seed(args.seed)
        results[device] = {
            "transforms": _time_transforms(methods, torch.device(device), args),
            "training_steps": _time_training_steps(methods, torch.device(device), args),
        }
    machine = {**_machine(devices), "malloc": malloc}
    return {"machine": machine, "config": _config(args, methods), "results": results}


def _devices(choice: str) -> list[str]:
    if choice == "auto":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available; use auto or cpu")
    return [choice]


def _methods(spec: str) -> list[str]:
    if spec == "all":
        return [method.name for method in METHODS]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        MIXING.get(name, "--methods entry")
    return names


def _batch(
    batch_size: int, args: argparse.Namespace, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(args.seed)
    inputs = torch.randn(batch_size, 3, args.image_size, args.image_size, generator=generator)
    targets = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)
    return inputs.to(device), targets.to(device)


def _time_transforms(methods: list[str], device: torch.device, args: argparse.Namespace) -> list[dict]:
    inputs, targets = _batch(args.batch_size, args, device)
    other = inputs.flip(0).contiguous()
    model = create_model(num_classes=NUM_CLASSES, input_size=args.image_size).to(device).train()
    candidates: dict[str, Callable[[], object]] = {FLOOR: lambda: torch.lerp(inputs, other, 0.5)}
    candidates.update(_library_candidates(inputs, targets))
    for name, params in _variants(methods):
        transform = create_batch_transform(name.removesuffix(PER_BATCH), p=1.0, **params)
        generator = torch.Generator().manual_seed(args.seed)
        candidates[name] = lambda t=transform, g=generator: t(inputs, targets, g, model)
    rounds = {name: args.model_repeats for name in MODEL_BASED}
    times = _round_robin(candidates, args.repeats, rounds, device)
    floor = statistics.median(times[FLOOR])
    variants = dict(_variants(methods))
    rows = []
    for name, samples in times.items():
        median = statistics.median(samples)
        row = {"method": name, "ms": median * 1e3, "vs_lerp": median / floor, "samples_ms": _ms(samples)}
        row["role"] = _role(name, variants)
        twins = dict(zip(("vs_timm", "vs_torchvision"), LIBRARY_EQUIVALENTS.get(name, ()), strict=False))
        for column, library in twins.items():
            if library in times:
                row[column] = median / statistics.median(times[library])
        rows.append(row)
    return rows


def _role(name: str, variants: dict[str, dict]) -> str:
    if name == FLOOR:
        return "floor"
    if name not in variants:
        return "library"
    return "model-based" if name in MODEL_BASED else "static"


def speed_targets(rows: list[dict]) -> list[str]:
    """The mixing issue's two speed targets, checked on one transform table (a line each).

    MixUp and CutMix must be no slower than their timm and torchvision twins (ratio <= 1.0); every
    static method (no model pass) within `LERP_TARGET` times the lerp floor.
    """
    twins = [row for row in rows if "vs_timm" in row or "vs_torchvision" in row]
    slower = [
        f"{row['method']} {row[column]:.2f}x {column.removeprefix('vs_')}"
        for row in twins
        for column in ("vs_timm", "vs_torchvision")
        if row.get(column, 0.0) > 1.0
    ]
    static = [row for row in rows if row["role"] == "static"]
    over = [f"{row['method']} {row['vs_lerp']:.1f}x" for row in static if row["vs_lerp"] > LERP_TARGET]
    return [
        f"MixUp and CutMix no slower than timm and torchvision: {len(twins)} rows, "
        + (f"slower: {', '.join(slower)}" if slower else "all met"),
        f"static methods within {LERP_TARGET:g}x the lerp floor: {len(static) - len(over)} of {len(static)}"
        + (f"; over: {', '.join(over)}" if over else ""),
    ]


def _variants(methods: list[str]) -> list[tuple[str, dict]]:
    """Each method as trained, then its per-batch variant where it has one (model-based ones excepted)."""
    variants = [(name, {}) for name in methods]
    for name in methods:
        if name not in MODEL_BASED and "per_sample" in inspect.signature(MIXING.get(name)).parameters:
            variants.append((name + PER_BATCH, {"per_sample": False}))
    return variants


def _library_candidates(inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, Callable[[], object]]:
    candidates: dict[str, Callable[[], object]] = {}
    if len(inputs) % 2 == 0:  # timm's Mixup needs an even batch
        work = inputs.clone()  # timm mixes in place; mixing an already mixed batch costs the same
        for label, mixup_alpha, cutmix_alpha in (("mixup", 1.0, 0.0), ("cutmix", 0.0, 1.0)):
            for mode in TIMM_MODES.values():
                mix = Mixup(
                    mixup_alpha=mixup_alpha,
                    cutmix_alpha=cutmix_alpha,
                    prob=1.0,
                    mode=mode,
                    label_smoothing=0.0,
                    num_classes=NUM_CLASSES,
                )
                candidates[f"timm Mixup ({label}, {mode})"] = lambda m=mix: m(work, targets)
    tv_mixup, tv_cutmix = (
        v2.MixUp(alpha=1.0, num_classes=NUM_CLASSES),
        v2.CutMix(alpha=1.0, num_classes=NUM_CLASSES),
    )
    candidates["torchvision v2 MixUp"] = lambda: tv_mixup(inputs, targets)
    candidates["torchvision v2 CutMix"] = lambda: tv_cutmix(inputs, targets)
    return candidates


def _time_training_steps(methods: list[str], device: torch.device, args: argparse.Namespace) -> list[dict]:
    inputs, targets = _batch(args.step_batch_size, args, device)
    model = create_model(num_classes=NUM_CLASSES, input_size=args.image_size).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    candidates: dict[str, Callable[[], object]] = {}
    for name in ["none", *methods]:
        transform = create_batch_transform(name) if name == "none" else create_batch_transform(name, p=1.0)
        generator = torch.Generator().manual_seed(args.seed)
        candidates[name] = lambda t=transform, g=generator: training_step(
            model, optimizer, inputs, targets, t, generator=g
        )
    times = _round_robin(candidates, args.step_repeats, {}, device, warmup=1)
    baseline = statistics.median(times["none"])
    return [
        {
            "method": name,
            "ms": statistics.median(samples) * 1e3,
            "vs_baseline": statistics.median(samples) / baseline,
            "samples_ms": _ms(samples),
        }
        for name, samples in times.items()
    ]


def _round_robin(
    candidates: dict[str, Callable[[], object]],
    repeats: int,
    limited: dict[str, int],
    device: torch.device,
    warmup: int = 2,
) -> dict[str, list[float]]:
    """Seconds per call: every round calls each candidate once, so drift hits all of them alike.

    Candidates in `limited` (the slow model-based ones) get that many rounds and one warm-up call.
    """
    for name, work in candidates.items():
        for _ in range(1 if name in limited else warmup):
            work()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for round_index in range(repeats):
        # Rotate the order every round, so no candidate always runs first or right after a slow one.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if len(times[name]) < limited.get(name, repeats):
                times[name].append(seconds(candidates[name], device))
    return times


def _ms(samples: list[float]) -> list[float]:
    return [round(sample * 1e3, 4) for sample in samples]


def _machine(devices: list[str]) -> dict:
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "devices": devices,
        "cuda_device": torch.cuda.get_device_name() if "cuda" in devices else None,
    }


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one (platform.processor() is often empty)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _config(args: argparse.Namespace, methods: list[str]) -> dict:
    return {
        "batch": [args.batch_size, 3, args.image_size, args.image_size],
        "dtype": "float32",
        "repeats": args.repeats,
        "model_repeats": args.model_repeats,
        "step_batch_size": args.step_batch_size,
        "step_repeats": args.step_repeats,
        "step_model": "resnet10t",
        "methods": methods,
        "seed": args.seed,
    }


def format_table(result: dict) -> str:
    machine, config = result["machine"], result["config"]
    batch = "x".join(str(side) for side in config["batch"])
    lines = [
        f"torch {machine['torch']}, torchvision {machine['torchvision']}, timm {machine['timm']}, "
        f"{machine['cpu']} ({machine['cpu_count']} cores, {machine['threads']} torch threads), "
        f"{machine['malloc']} malloc" + (f", {machine['cuda_device']}" if machine["cuda_device"] else ""),
    ]
    for device, tables in result["results"].items():
        lines += [
            "",
            f"[{device}] transform of one {batch} float32 batch: median ms of {config['repeats']} "
            f"interleaved rounds ({config['model_repeats']} for model-based methods)",
            f"{'method':<30} {'ms':>9} {'x lerp':>8} {'x timm':>8} {'x torchvision':>14}",
        ]
        for row in tables["transforms"]:
            ratios = (row.get("vs_timm"), row.get("vs_torchvision"))
            cells = [f"{ratio:.2f}x" if ratio is not None else "-" for ratio in ratios]
            lines.append(
                f"{row['method']:<30} {row['ms']:>9.2f} {row['vs_lerp']:>7.2f}x {cells[0]:>8} {cells[1]:>14}"
            )
        lines += ["", f"[{device}] targets:", *(f"- {line}" for line in speed_targets(tables["transforms"]))]
        lines += [
            "",
            f"[{device}] training step of {config['step_model']}, batch {config['step_batch_size']}: "
            f"median ms of {config['step_repeats']} interleaved steps",
            f"{'method':<24} {'ms':>9} {'x no mixing':>12}",
        ]
        for row in tables["training_steps"]:
            lines.append(f"{row['method']:<24} {row['ms']:>9.1f} {row['vs_baseline']:>11.2f}x")
    return "\n".join(lines)

"""`python -m mixlib bench training`: the training data path and step, old and new, side by side.

The reference is the per-image pipeline of commit c527d0d, rebuilt here as a small faithful copy
(`reference_transform`, `reference_loader`, the step on a model in the default memory format): every
image goes through torchvision v2 RandomResizedCrop, flip, ColorJitter and normalisation one at a
time in a `DataLoader` (no workers, as the profiles run it) with its box and mask, and the step runs
in fp32 on contiguous tensors. The new pipeline is the engine `mixlib.runs` builds for a run: uint8
tensors on the device, one batched augmentation (`mixlib.data.augment`), a channels-last step. Kornia's
`AugmentationSequential` with the same four operations is timed on the same batches as the
alternative the batched augmentation was chosen against.

Printed per pipeline: milliseconds per batch for the data stage, the mixing method and the
forward + backward + optimiser step, whole-epoch images per second, and the step's GFLOP/s (torch's
FLOP counter over one forward + backward) against the machine's measured matmul GFLOP/s; then the
issue's targets, each checked. With `--compile` the step's forward is also compiled (`torch.compile`):
the first step's seconds are the compile time, whole epochs with the compiled step are timed alongside
the others, and the epochs a run needs to pay the compile time back are printed, which is what decides
whether a profile switches `torch_compile` on. Stages are timed round-robin (one batch of each
pipeline per round) and whole epochs alternate, so load changes on a shared machine hit every pipeline
alike; figures are medians.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from mixlib.bench.timing import seconds, steady_allocator
from mixlib.config import RunConfig
from mixlib.data import AnnotatedImageDataset
from mixlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalise
from mixlib.mixing import create_batch_transform
from mixlib.run_data import load_config_splits
from mixlib.runs import RunFolder, build_trainer, create_recipe
from mixlib.training import Trainer, batches_per_epoch, forward_features_and_logits, step_tensors

TARGET_DATA_SPEEDUP = 10.0  # data stage vs the per-image reference
TARGET_DATA_SHARE = 0.10  # data stage as a share of the step, on the CPU
TARGET_EPOCH_SPEEDUP = 1.3  # whole-epoch images/s vs the reference, on the CPU
TARGET_GPU_IMAGES_PER_SECOND = 20_000  # resnet10t, 64 px, batch 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dataset", default="synthetic", help="a mixlib dataset name (default: synthetic)")
    parser.add_argument("--data-root", default=None, help="the dataset's folder (tiny-imagenet, imagefolder)")
    parser.add_argument("--images-per-class", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on CPU, 256 on CUDA")
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--min-feature-size", type=int, default=4)
    parser.add_argument("--method", default="mixup", help="the mixing method timed in the mixing stage")
    parser.add_argument("--repeats", type=int, default=8, help="timed batches per stage and pipeline")
    parser.add_argument("--epochs", type=int, default=1, help="whole epochs timed per pipeline")
    parser.add_argument("--compile", action="store_true", help="also time the step with torch.compile")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)


# --------------------------------------------------------------------------- the reference (c527d0d)


def reference_transform(image_size: int, crop_scale_min: float, color_jitter: float) -> v2.Transform:
    """c527d0d's `train_transform`: the per-image v2 chain the batched augmentation replaces."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(image_size, scale=(crop_scale_min, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(color_jitter, color_jitter, color_jitter),
            v2.ClampBoundingBoxes(),
            normalise(),
        ]
    )


def reference_dataset(config: RunConfig) -> AnnotatedImageDataset:
    """c527d0d's training set: images decoded once, transformed one at a time with box and mask."""
    transform = reference_transform(config.image_size, config.crop_scale_min, config.color_jitter)
    return AnnotatedImageDataset(load_config_splits(config).train, transform, 2 * config.image_size)


def reference_loader(dataset: AnnotatedImageDataset, batch_size: int, seed: int) -> DataLoader:
    """c527d0d's training loader: shuffled per epoch, the last partial batch dropped."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        drop_last=len(dataset) > batch_size,
    )


def kornia_augment(config: RunConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """Kornia's version of the same four operations on a uint8 batch (images only, as in training)."""
    import kornia.augmentation as K  # only the benchmark needs Kornia

    pipeline = K.AugmentationSequential(
        K.RandomResizedCrop((config.image_size, config.image_size), scale=(config.crop_scale_min, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(config.color_jitter, config.color_jitter, config.color_jitter, p=1.0),
        K.Normalize(torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)),
    )
    return lambda images: pipeline(images.float() / 255)


# --------------------------------------------------------------------------- measuring


def benchmark(args: argparse.Namespace) -> dict:
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    steady_allocator()
    batch_size = args.batch_size or (256 if device.type == "cuda" else 64)
    config = RunConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        images_per_class=args.images_per_class,
        val_per_class=1,
        test_per_class=1,
        image_size=args.image_size,
        model=args.model,
        min_feature_size=args.min_feature_size,
        method=args.method,
        batch_size=batch_size,
        torch_compile=False,
        device=device.type,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory() as run_dir:
        trainer, reference_model = _trainers(config, Path(run_dir))
        reference = reference_dataset(config)
        stages = _time_stages(trainer, reference_model, reference, args)
        compiled = _compile_step(trainer, args) if args.compile else None
        epochs = _time_epochs(trainer, reference_model, reference, args, compiled and compiled.pop("forward"))
    if compiled:
        compiled.update(
            amortised(compiled, epochs, batches_per_epoch(len(trainer.train_set), batch_size) * batch_size)
        )
    flops = _step_flops(trainer, batch_size, config.image_size)
    matmul = matmul_gflops(device, trainer.amp_dtype or torch.float32)
    pipelines = {}
    for name in ("reference", "new"):
        step_ms = stages[name]["step_ms"]
        pipelines[name] = {
            **stages[name],
            "epoch_images_per_second": epochs[name],
            "step_gflops": flops / step_ms / 1e6,
            "step_share_of_matmul": flops / step_ms / 1e6 / matmul,
        }
    result = {
        "machine": {
            "device": _device_name(device),
            "compute_type": str(trainer.amp_dtype or torch.float32).removeprefix("torch."),
            "threads": torch.get_num_threads(),
            "matmul_gflops": matmul,
        },
        "setting": {
            "dataset": args.dataset,
            "train_images": len(trainer.train_set),
            "image_size": config.image_size,
            "batch_size": batch_size,
            "model": config.model,
            "min_feature_size": config.min_feature_size,
            "method": config.method,
            "repeats": args.repeats,
            "step_gflop": flops / 1e9,
        },
        "pipelines": pipelines,
        "kornia_data_ms": stages["kornia"]["data_ms"],
        "compiled": compiled,
    }
    result["targets"] = targets(result, device)
    return result


def _trainers(config: RunConfig, run_dir: Path) -> tuple[Trainer, nn.Module]:
    """The new pipeline as `mixlib.runs` builds it for a run (its epoch loop is timed as is), and the
    reference's fp32 model with the same initial weights, in the default memory format as c527d0d
    trained it."""
    torch.manual_seed(config.seed)
    trainer = build_trainer(config, RunFolder(run_dir), create_recipe(config), progress=False)
    reference_model = copy.deepcopy(trainer.model).to(memory_format=torch.contiguous_format)
    return trainer, reference_model


def _time_stages(
    trainer: Trainer, reference_model: nn.Module, reference: AnnotatedImageDataset, args: argparse.Namespace
) -> dict:
    """Median ms per batch of each stage, the pipelines interleaved batch by batch."""
    device, batch_size, config = trainer.device, trainer.batch_size, trainer.config
    reference_batches = _cycle(lambda: iter(reference_loader(reference, batch_size, args.seed)))
    data = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(trainer.train_set), generator=data)[:batch_size]
    stored = next(trainer.train_set.batches(order, batch_size, device))
    kornia = kornia_augment(config)
    mixing = trainer.batch_transform
    unmixed = create_batch_transform("none")
    reference_optimizer = torch.optim.SGD(reference_model.parameters(), lr=1e-3, momentum=0.9)
    samples: dict[str, dict[str, list[float]]] = {
        name: {"data_ms": [], "mixing_ms": [], "step_ms": []} for name in ("reference", "new", "kornia")
    }
    reference_inputs = next(reference_batches)["image"].to(device)
    new_inputs = trainer.augment(stored.images, data).images.contiguous(memory_format=torch.channels_last)
    labels = stored.labels
    for _ in range(args.repeats + 1):  # the first round warms up and is dropped
        rounds = {
            ("reference", "data_ms"): lambda: next(reference_batches)["image"].to(device),
            ("new", "data_ms"): lambda: trainer.augment(
                next(trainer.train_set.batches(order, batch_size, device)).images, data
            ).images.contiguous(memory_format=torch.channels_last),
            ("kornia", "data_ms"): lambda: kornia(stored.images),
            ("reference", "mixing_ms"): lambda: mixing(reference_inputs, labels, generator=data),
            ("new", "mixing_ms"): lambda: mixing(new_inputs, labels, generator=data),
            ("reference", "step_ms"): lambda: step_tensors(
                reference_model, reference_optimizer, reference_inputs, labels, unmixed
            ),
            ("new", "step_ms"): lambda: step_tensors(
                trainer.model,
                trainer.optimizer,
                new_inputs,
                labels,
                unmixed,
                amp_dtype=trainer.amp_dtype,
                scaler=trainer.scaler,
                forward=trainer.forward,
            ),
        }
        for (pipeline, stage), work in rounds.items():
            samples[pipeline][stage].append(seconds(work, device) * 1000)
    return {
        pipeline: {stage: statistics.median(values[1:]) for stage, values in stages.items() if values}
        for pipeline, stages in samples.items()
    }


def _time_epochs(
    trainer: Trainer,
    reference_model: nn.Module,
    reference: AnnotatedImageDataset,
    args: argparse.Namespace,
    compiled_forward: Callable | None = None,
) -> dict:
    """Images per second of whole training epochs (data, mixing, step), the pipelines alternating:
    reference, new, and the new one with `compiled_forward` (already compiled) where given."""
    device, batch_size = trainer.device, trainer.batch_size
    mixing = trainer.batch_transform
    reference_optimizer = torch.optim.SGD(reference_model.parameters(), lr=1e-3, momentum=0.9)
    images = batches_per_epoch(len(trainer.train_set), batch_size) * batch_size
    timed: dict[str, list[float]] = {
        "reference": [],
        "new": [],
        **({"compiled": []} if compiled_forward else {}),
    }
    for epoch in range(args.epochs):
        generator = torch.Generator().manual_seed(args.seed + epoch)

        def reference_epoch(seed: int = args.seed + epoch, generator: torch.Generator = generator) -> float:
            total = 0.0
            for sample in reference_loader(reference, batch_size, seed):
                parts = step_tensors(
                    reference_model,
                    reference_optimizer,
                    sample["image"].to(device),
                    sample["label"].to(device),
                    mixing,
                    generator=generator,
                )
                total += float(parts["loss"])  # c527d0d read its losses back after every step
            return total

        def new_epoch(seed: int = args.seed + epoch, generator: torch.Generator = generator) -> float:
            # trained as epoch 1 every time: the epoch only sets the learning rate, not the time
            sums, steps = trainer.train_epoch(1, torch.Generator().manual_seed(seed), generator)
            return float(sums["loss"]) / steps

        timed["reference"].append(seconds(reference_epoch, device))
        timed["new"].append(seconds(new_epoch, device))
        if compiled_forward:
            eager, trainer.forward = trainer.forward, compiled_forward
            timed["compiled"].append(seconds(new_epoch, device))
            trainer.forward = eager
    return {name: images / statistics.median(values) for name, values in timed.items()}


def _compile_step(trainer: Trainer, args) -> dict:
    """torch.compile of the new step's forward: seconds of the first (compiling) step, then ms per
    step; `forward` is the compiled function, for the whole epochs."""
    forward = torch.compile(forward_features_and_logits)
    data = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(trainer.train_set), generator=data)[: trainer.batch_size]
    batch = next(trainer.train_set.batches(order, trainer.batch_size, trainer.device))
    inputs = trainer.augment(batch.images, data).images.contiguous(memory_format=torch.channels_last)
    unmixed = create_batch_transform("none")

    def step() -> None:
        step_tensors(
            trainer.model,
            trainer.optimizer,
            inputs,
            batch.labels,
            unmixed,
            amp_dtype=trainer.amp_dtype,
            forward=forward,
        )

    first = seconds(step, trainer.device)
    steps = [seconds(step, trainer.device) * 1000 for _ in range(args.repeats)]
    return {"forward": forward, "compile_seconds": first, "step_ms": statistics.median(steps)}


def amortised(compiled: dict, epochs: dict, images_per_epoch: int) -> dict:
    """The compiled epoch's throughput and the epochs a run needs before the compile time is paid back
    (infinite where the compiled epoch is no faster)."""
    saved = images_per_epoch / epochs["new"] - images_per_epoch / epochs["compiled"]
    return {
        "epoch_images_per_second": epochs["compiled"],
        "break_even_epochs": compiled["compile_seconds"] / saved if saved > 0 else float("inf"),
    }


def _step_flops(trainer: Trainer, batch_size: int, image_size: int) -> float:
    """FLOPs of one forward + backward pass (torch's FLOP counter; the optimiser update is negligible)."""
    model = copy.deepcopy(trainer.model)
    inputs = torch.randn(batch_size, 3, image_size, image_size, device=trainer.device)
    with FlopCounterMode(display=False) as counter:
        _, logits = forward_features_and_logits(model, inputs.contiguous(memory_format=torch.channels_last))
        logits.sum().backward()
    return float(counter.get_total_flops())


def matmul_gflops(
    device: torch.device, dtype: torch.dtype = torch.float32, size: int | None = None, repeats: int = 5
) -> float:
    """The machine's dense matmul throughput in the step's compute type, the ceiling a step can approach."""
    size = size or (4096 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = min(seconds(lambda: a @ b, device) for _ in range(repeats + 1))
    return 2 * size**3 / best / 1e9


def _cycle(make: Callable[[], Iterator]) -> Iterator:
    while True:
        yield from make()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}"


# --------------------------------------------------------------------------- targets and table


def targets(result: dict, device: torch.device) -> list[dict]:
    reference, new = result["pipelines"]["reference"], result["pipelines"]["new"]
    # (target, value, bound, unit, the ceiling a free data stage would give where it caps the target)
    checks = [
        (
            f"data stage >= {TARGET_DATA_SPEEDUP:g}x faster than the per-image reference",
            reference["data_ms"] / new["data_ms"],
            TARGET_DATA_SPEEDUP,
            "x",
            None,
        ),
    ]
    if device.type == "cpu":
        checks += [
            (
                f"data stage <= {TARGET_DATA_SHARE:.0%} of the step (CPU)",
                new["data_ms"] / new["step_ms"],
                TARGET_DATA_SHARE,
                "share",
                None,
            ),
            (
                f"whole-epoch throughput >= {TARGET_EPOCH_SPEEDUP:g}x the reference (CPU)",
                new["epoch_images_per_second"] / reference["epoch_images_per_second"],
                TARGET_EPOCH_SPEEDUP,
                "x",
                free_data_ceiling(reference),
            ),
        ]
        if result["compiled"]:
            checks.append(
                (
                    f"whole-epoch throughput with torch.compile >= {TARGET_EPOCH_SPEEDUP:g}x the reference "
                    f"(CPU; the compile time is paid back after "
                    f"{result['compiled']['break_even_epochs']:.1f} epochs)",
                    result["compiled"]["epoch_images_per_second"] / reference["epoch_images_per_second"],
                    TARGET_EPOCH_SPEEDUP,
                    "x",
                    None,
                )
            )
    else:
        checks += [
            (
                f">= {TARGET_GPU_IMAGES_PER_SECOND:,} training images/s (GPU{label})",
                pipeline["epoch_images_per_second"],
                TARGET_GPU_IMAGES_PER_SECOND,
                "images/s",
                None,
            )
            for label, pipeline in (("", new), (", torch.compile", result["compiled"]))
            if pipeline
        ]
    return [
        {
            "target": name,
            "value": value,
            "bound": bound,
            "unit": unit,
            "met": value <= bound if unit == "share" else value >= bound,
            "ceiling": ceiling,
        }
        for name, value, bound, unit, ceiling in checks
    ]


def free_data_ceiling(reference: dict) -> float:
    """The epoch speed-up a data stage costing nothing would give, the step unchanged (Amdahl's law).

    When the reference's step is already near the machine's matmul rate, this caps what a faster data
    path can do for the whole epoch, whatever the target says.
    """
    batch = reference["data_ms"] + reference["mixing_ms"] + reference["step_ms"]
    return batch / (reference["mixing_ms"] + reference["step_ms"])


def format_table(result: dict) -> str:
    machine, setting = result["machine"], result["setting"]
    reference, new = result["pipelines"]["reference"], result["pipelines"]["new"]
    lines = [
        f"{machine['device']}, {machine['threads']} torch threads, "
        f"matmul {machine['matmul_gflops']:.1f} GFLOP/s ({machine['compute_type']})",
        f"{setting['dataset']}: {setting['train_images']} training images at {setting['image_size']} px, "
        f"batch {setting['batch_size']}, {setting['model']} (map >= {setting['min_feature_size']}), "
        f"mixing {setting['method']}; step {setting['step_gflop']:.2f} GFLOP (forward + backward)",
        "reference = the per-image pipeline of c527d0d, rebuilt inside this benchmark",
        "",
        f"{'':36} {'reference':>12} {'new':>12} {'new/ref':>8}",
    ]
    rows = (
        ("data, ms/batch", "data_ms", ".2f"),
        ("mixing, ms/batch", "mixing_ms", ".2f"),
        ("forward+backward+step, ms/batch", "step_ms", ".1f"),
        ("whole epoch, images/s", "epoch_images_per_second", ".0f"),
        ("step GFLOP/s", "step_gflops", ".1f"),
        ("step, share of matmul GFLOP/s", "step_share_of_matmul", ".0%"),
    )
    for label, key, fmt in rows:
        ratio = new[key] / reference[key]
        lines.append(f"{label:36} {reference[key]:>12{fmt}} {new[key]:>12{fmt}} {ratio:>7.2f}x")
    lines.append(f"{'data, Kornia AugmentationSequential':36} {'':>12} {result['kornia_data_ms']:>12.2f}")
    if result["compiled"]:
        compiled = result["compiled"]
        lines += [
            f"{'step with torch.compile, ms/batch':36} {'':>12} {compiled['step_ms']:>12.1f} "
            f"{compiled['step_ms'] / new['step_ms']:>7.2f}x of new (compiling took "
            f"{compiled['compile_seconds']:.0f} s)",
            f"{'whole epoch with torch.compile, img/s':36} {'':>12} "
            f"{compiled['epoch_images_per_second']:>12.0f} "
            f"{compiled['epoch_images_per_second'] / reference['epoch_images_per_second']:>7.2f}x of ref",
        ]
    lines.append("")
    for check in result["targets"]:
        shown = (
            f"{check['value']:.0%}" if check["unit"] == "share" else f"{check['value']:,.1f}{check['unit']}"
        )
        if check["ceiling"] is not None:
            shown += f" (a free data stage alone would give {check['ceiling']:.2f}x)"
        lines.append(f"[{'met' if check['met'] else 'MISSED'}] {check['target']}: {shown}")
    return "\n".join(lines)

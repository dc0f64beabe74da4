"""`python -m mixlib bench cams`: CAM throughput and the cost of the CAM losses, measured side by side.

1. Images per second of each CAM method through `compute_cams` (one batched call) against the same
   grad-cam class used the way its README shows: a new CAM object per image, as a context manager,
   called with one input tensor and `targets=[ClassifierOutputTarget(c)]`, timed on the first
   `--readme-images` images (its cost per image does not depend on how many). Both explain the same
   classes (the model's predictions). ScoreCAM runs one forward pass per channel of the CAM layer
   (512 for resnet10t), so both of its paths are timed on fewer images (`--scorecam-images`).
2. Seconds per `mixlib.training.training_step` with the Mixup-CAM terms, the SEAM term and no extra
   term (the baseline), steps interleaved so that load changes hit all variants alike; overhead is
   the ratio of medians to the baseline.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from mixlib.bench.timing import seconds
from mixlib.cams.compute import CAM_METHODS, compute_cams, silenced_score_cam_progress
from mixlib.cams.losses import create_loss_terms
from mixlib.mixing import create_batch_transform
from mixlib.model_state import evaluation_mode
from mixlib.models import cam_target_layer, create_model
from mixlib.training import training_step

LOSS_VARIANTS = {
    "baseline (cross-entropy only)": {},
    "mixup-cam (entropy + concentration)": {"lambda_ent": 1.0, "lambda_con": 1.0},
    "seam (equivariance, scale 0.3)": {"lambda_eq": 1.0},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="images per CAM batch and training step")
    parser.add_argument("--methods", default=",".join(CAM_METHODS.names()), help="comma-separated methods")
    parser.add_argument("--readme-images", type=int, default=8, help="images for the one-at-a-time path")
    parser.add_argument("--scorecam-images", type=int, default=1, help="ScoreCAM's images on both paths")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per loss variant")
    parser.add_argument("--seed", type=int, default=0)


def benchmark(args: argparse.Namespace) -> dict:
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    for name in methods:
        CAM_METHODS.get(name, "--methods entry")
    for option in ("batch_size", "readme_images", "scorecam_images", "train_steps"):
        if getattr(args, option) < 1:
            raise ValueError(f"--{option.replace('_', '-')} must be >= 1; got {getattr(args, option)}")
    torch.manual_seed(args.seed)
    model = create_model(args.model, num_classes=args.num_classes, input_size=args.image_size)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    with evaluation_mode(model), torch.no_grad():
        classes = model(images).argmax(dim=1)
    compute_cams(model, images[:2], classes[:2])  # warm-up: thread pools, allocator
    rows = [_time_cam_method(model, images, classes, name, args) for name in methods]
    return {
        "config": {
            "model": args.model,
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "readme_images": args.readme_images,
            "scorecam_images": args.scorecam_images,
            "train_steps": args.train_steps,
            "threads": torch.get_num_threads(),
            "device": "cpu",
        },
        "cam_methods": rows,
        "training_step": _time_training(model, images, classes, args.train_steps),
    }


def _time_cam_method(model, images, classes, name: str, args) -> dict:
    spec = CAM_METHODS.get(name)
    count = min(args.scorecam_images, len(images)) if spec.masked_forward_per_channel else len(images)
    one_by_one = min(args.readme_images, count)
    batched = seconds(lambda: compute_cams(model, images[:count], classes[:count], method=name))
    readme = seconds(lambda: _readme_style(model, images[:one_by_one], classes[:one_by_one], spec.cam_class))
    return {
        "method": name,
        "batched_images": count,
        "readme_images": one_by_one,
        "batched_images_per_s": count / batched,
        "readme_images_per_s": one_by_one / readme,
        "speedup": (count / batched) / (one_by_one / readme),
    }


def _readme_style(model, images, classes, cam_class) -> None:
    target_layers = [cam_target_layer(model)]
    # grad-cam's CAM objects switch the model to eval mode; only ScoreCAM prints progress bars
    with evaluation_mode(model), silenced_score_cam_progress():
        for image, category in zip(images, classes, strict=True):
            with cam_class(model=model, target_layers=target_layers) as cam:
                cam(input_tensor=image[None], targets=[ClassifierOutputTarget(int(category))])


def _time_training(model, images, classes, steps: int) -> list[dict]:
    transform = create_batch_transform("none")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    variants = {label: create_loss_terms(**weights) for label, weights in LOSS_VARIANTS.items()}
    model.train()

    def step(terms) -> float:
        return seconds(lambda: training_step(model, optimizer, images, classes, transform, terms))

    for terms in variants.values():  # warm-up, including each term's one-off head check
        step(terms)
    times: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(steps):
        for label, terms in variants.items():
            times[label].append(step(terms))
    baseline = statistics.median(next(iter(times.values())))
    return [
        {
            "loss_terms": label,
            "seconds_per_step": statistics.median(t),
            "overhead": statistics.median(t) / baseline,
        }
        for label, t in times.items()
    ]


def format_table(result: dict) -> str:
    config = result["config"]
    lines = [
        f"CAM throughput: {config['model']} {config['image_size']}x{config['image_size']}, batch "
        f"{config['batch_size']}, {config['device']} ({config['threads']} threads)",
        f"{'method':<10} {'batched: images':>15} {'img/s':>7}   {'README style: images':>20} {'img/s':>7}"
        f" {'speed-up':>9}",
    ]
    for row in result["cam_methods"]:
        lines.append(
            f"{row['method']:<10} {row['batched_images']:>15} {row['batched_images_per_s']:>7.2f}   "
            f"{row['readme_images']:>20} {row['readme_images_per_s']:>7.2f} {row['speedup']:>8.1f}x"
        )
    lines += [
        "",
        f"Training step, batch {config['batch_size']} (median of {config['train_steps']} interleaved steps)",
    ]
    lines.append(f"{'loss terms':<38} {'s/step':>7} {'overhead':>9}")
    for row in result["training_step"]:
        lines.append(f"{row['loss_terms']:<38} {row['seconds_per_step']:>7.3f} {row['overhead']:>8.2f}x")
    return "\n".join(lines)

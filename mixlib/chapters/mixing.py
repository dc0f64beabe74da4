"""The mixing-methods chapter (`notebooks/mixing.ipynb`): what each method does to a batch, and what
it costs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import yaml
from torch import nn

from mixlib.bench import mixing as bench
from mixlib.data import AnnotatedImageDataset, denormalise
from mixlib.mixing import create_batch_transform
from mixlib.runs import RunResult, load_run, run_folder

# the book's data file, found from the package so the chapter runs from any working directory (nbval
# runs a template inside notebooks/)
EXPLANATIONS = Path(__file__).resolve().parents[2] / "book" / "methods.yml"


def load_explanations(path: Path = EXPLANATIONS) -> dict[str, dict]:
    return yaml.safe_load(path.read_text())["methods"]


def explanation_markdown(name: str, entry: dict) -> str:
    source = f"\n\n*Source: {entry['source']}.*" if entry.get("source") else ""
    return f"### {entry['title']} (`{name}`)\n\n{entry['text']}\n\n$$\n{entry['formula']}\n$${source}"


def reference_run(runs_dir: str | Path, configurations: Sequence[str], seeds: Sequence[int]) -> RunResult:
    """The run whose training images the gallery shows and whose model the model-based methods use:
    the first seed of the first configuration."""
    return load_run(run_folder(runs_dir, configurations[0], seeds[0]).path)


def sample_batch(dataset: AnnotatedImageDataset, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` images of distinct classes (falls back to any images for few classes)."""
    chosen, seen = [], set()
    for index in range(len(dataset)):
        label = int(dataset.labels[index])
        if label not in seen:
            chosen.append(index)
            seen.add(label)
        if len(chosen) == count:
            break
    samples = [dataset[i] for i in chosen]
    return torch.stack([s["image"] for s in samples]), torch.tensor([s["label"] for s in samples])


def plot_method_gallery(
    method: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    model: nn.Module,
    seed: int = 0,
) -> plt.Figure:
    """One mixed batch (application probability 1): each image titled with its two labels and lambda."""
    params = {} if method == "none" else {"p": 1.0}
    generator = torch.Generator().manual_seed(seed)
    batch = create_batch_transform(method, **params)(images, labels, generator=generator, model=model)
    pictures = denormalise(batch.inputs.detach()).permute(0, 2, 3, 1).numpy()
    figure, axes = plt.subplots(1, len(pictures), figsize=(1.6 * len(pictures), 2.1), squeeze=False)
    for axis, picture, a, b, lam in zip(
        axes[0], pictures, batch.targets_a, batch.targets_b, batch.lam, strict=True
    ):
        axis.imshow(picture)
        axis.axis("off")
        if int(a) == int(b) or float(lam) >= 1.0:
            axis.set_title(f"{class_names[int(a)][:12]}\nλ = {float(lam):.2f}", fontsize=7)
        else:
            first, second = class_names[int(a)][:10], class_names[int(b)][:10]
            axis.set_title(f"{first} {float(lam):.2f}\n+ {second} {1 - float(lam):.2f}", fontsize=7)
    figure.tight_layout()
    return figure


def benchmark_tables(methods: Sequence[str], **overrides: object) -> dict[str, object]:
    """`python -m mixlib bench mixing` on the CPU, its defaults (the 128x3x64x64 batch the speed targets
    are set for) changed by `overrides`: the two tables (transforms, training steps), the target lines,
    and the machine and configuration."""
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--methods", ",".join(methods), "--device", "cpu"])
    for name, value in overrides.items():
        setattr(args, name, value)
    result = bench.benchmark(args)
    tables = result["results"]["cpu"]
    transforms = pd.DataFrame(tables["transforms"]).drop(columns="samples_ms").set_index("method")
    steps = pd.DataFrame(tables["training_steps"]).drop(columns="samples_ms").set_index("method")
    return {
        "transforms": transforms.round(3),
        "training_steps": steps.round(3),
        "targets": bench.speed_targets(tables["transforms"]),
        "machine": result["machine"],
        "config": result["config"],
    }

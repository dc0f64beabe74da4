"""What several test modules share: paths, small on-disk data, run folders and benchmark arguments.

A plain module, not `conftest.py`: tests import it as `helpers` (pyproject's pytest `pythonpath` puts
`tests/` on the path), so `pytest` and `python -m pytest` collect the same tests."""

from __future__ import annotations

import argparse
import ast
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import torch
from PIL import Image

from mixlib.config import RunConfig
from mixlib.mixing import create_batch_transform
from mixlib.runs import RunFolder
from mixlib.training import training_step

REPOSITORY = Path(__file__).resolve().parents[1]
BOOK_SOURCES = ("_config.yml", "book", "notebooks")  # not _toc.yml: the report writes it
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
TINY_IMAGENET = Path(os.environ.get("MIXLIB_TINY_IMAGENET", SHARED_DATASETS / "tiny-imagenet-10"))


def copy_from_repository(names: tuple[str, ...], root: Path) -> Path:
    """The repository's files and folders `names` copied into `root` (no caches, no generated pages)."""
    for name in names:
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "generated"))
        else:
            shutil.copy(source, root / name)
    return root


def write_image_folder(root: Path, classes: int, train: int, test: int, size: int = 24) -> Path:
    """A small `train/<class>/`, `test/<class>/` folder of random PNGs."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    return root


def unmixed_step(model, optimizer, loss_terms) -> dict[str, float]:
    """One training step without mixing, with `loss_terms`, on a random batch of 4 images at 32 px."""
    inputs, targets = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    return training_step(model, optimizer, inputs, targets, create_batch_transform("none"), loss_terms)


def write_run_folder(folder: Path, config: RunConfig, metrics: dict, history: dict | None = None) -> Path:
    """A finished run folder holding just what the chapters read: config, metrics and history."""
    run = RunFolder(folder)
    folder.mkdir(parents=True)
    run.write_config(config)
    run.write_metrics({"seed": config.seed, **metrics})
    if history is not None:
        pd.DataFrame(history).to_csv(run.history_file, index=False)
    return folder


class RunsCode:
    """Unpickling this calls `os.system`: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def parsed_bench_args(bench_module, argv: list[str], **overrides) -> argparse.Namespace:
    """A benchmark module's command-line arguments for `argv`, with attributes replaced by `overrides`."""
    parser = argparse.ArgumentParser()
    bench_module.add_arguments(parser)
    args = parser.parse_args(argv)
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


def parameters_cell(path: Path) -> dict:
    notebook = nbformat.read(path, as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    tree = ast.parse(cells[0].source)
    return {
        node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
    }

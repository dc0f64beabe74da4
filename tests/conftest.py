"""Session fixtures: small on-disk datasets, the smallest run and the smoke report's book made once per
test session, the shared data folder, and helpers that write run folders and benchmark arguments."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mixlib.cli import main
from mixlib.config import RunConfig
from mixlib.mixing import create_batch_transform
from mixlib.models import create_model
from mixlib.runs import RunFolder, train_run
from mixlib.training import training_step

REPOSITORY = Path(__file__).resolve().parents[1]
BOOK_SOURCES = ("_config.yml", "book", "notebooks")  # not _toc.yml: the report writes it
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
TINY_IMAGENET = Path(os.environ.get("MIXLIB_TINY_IMAGENET", SHARED_DATASETS / "tiny-imagenet-10"))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated synthetic data goes to a session folder, never into the working tree."""
    cache = tmp_path_factory.mktemp("mixlib-cache")
    os.environ["MIXLIB_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_imagenet_root() -> Path:
    if not (TINY_IMAGENET / "wnids.txt").is_file():
        pytest.skip(f"Tiny ImageNet subset not found at {TINY_IMAGENET}")
    return TINY_IMAGENET


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


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("imagefolder"), classes=3, train=10, test=4)


@pytest.fixture(scope="session")
def tiny_config() -> RunConfig:
    """The smallest run that still trains: the synthetic data's 10 classes, 6 training, 2 validation
    and 2 test images each, at 32 px, one epoch of 3 batches. Tests change what they need with
    `.replace(...)`."""
    return RunConfig(
        images_per_class=6,
        val_per_class=2,
        test_per_class=2,
        image_size=32,
        epochs=1,
        batch_size=16,
        warmup_epochs=0,
    )


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_config: RunConfig) -> Path:
    """One finished run of `tiny_config` (localisation scores included); copy it before changing it."""
    run_dir = tmp_path_factory.mktemp("finished-run") / "seed0"
    train_run(tiny_config, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the book sources for the smoke report."""
    root = tmp_path_factory.mktemp("report")
    for name in BOOK_SOURCES:
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("generated"))
        else:
            shutil.copy(source, root / name)
    # `make install` leaves a virtual environment in the repository root; its packages' own Markdown
    # must not reach the book (the build runs with -W, so one warning there fails it).
    stray = root / ".venv" / "lib" / "site-packages" / "package" / "README.md"
    stray.parent.mkdir(parents=True)
    stray.write_text("### A heading that starts at H3\n")
    return root


@pytest.fixture(scope="session")
def built(workspace: Path) -> Path:
    """The whole report on the `smoke` profile, built once per session (on a local Dask cluster of two
    worker processes, as `make report` does on a bigger machine): the workspace holding `_build/html`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        assert main(["report", "--profile", "smoke", "--workers", "2"]) == 0
    return workspace


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


@pytest.fixture
def code_running_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint with real ResNet-10 weights and a pickled `os.system` call that would create `marker`."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    state = create_model("resnet10t", 10, 32).state_dict()
    torch.save({"model": state, "fingerprint": "x", "payload": RunsCode(marker)}, path)
    return path, marker


def parsed_bench_args(bench_module, argv: list[str], **overrides) -> argparse.Namespace:
    """A benchmark module's command-line arguments for `argv`, with attributes replaced by `overrides`."""
    parser = argparse.ArgumentParser()
    bench_module.add_arguments(parser)
    args = parser.parse_args(argv)
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread while a module's tests run, then back to what it had: tiny models run
    faster on one thread, and far faster on a CPU shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Session fixtures: small on-disk datasets made once per test session, and the shared data folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


class RunsCode:
    """Unpickling this calls `os.system`: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def code_running_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint with real ResNet-10 weights and a pickled `os.system` call that would create `marker`."""
    import torch

    from mixlib.models import create_model

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

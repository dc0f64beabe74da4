"""Session fixtures: small on-disk datasets, the smallest run and the smoke report's book made once per
test session, and the shared data folder. Plain helpers that tests import are in `helpers.py`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mixlib.cli import main
from mixlib.config import RunConfig
from mixlib.models import create_model
from mixlib.runs import train_run

from helpers import BOOK_SOURCES, TINY_IMAGENET, RunsCode, copy_from_repository, write_image_folder


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
    root = copy_from_repository(BOOK_SOURCES, tmp_path_factory.mktemp("report"))
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


@pytest.fixture
def code_running_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint with real ResNet-10 weights and a pickled `os.system` call that would create `marker`."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    state = create_model("resnet10t", 10, 32).state_dict()
    torch.save({"model": state, "fingerprint": "x", "payload": RunsCode(marker)}, path)
    return path, marker


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread while a module's tests run, then back to what it had: tiny models run
    faster on one thread, and far faster on a CPU shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

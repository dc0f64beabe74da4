"""Run files: checkpoints never run code on load, damaged files are set aside, every write is atomic."""

import os
from pathlib import Path

import pandas as pd
import pytest

from mixlib.latency.cli import load_checkpoint
from mixlib.models import create_model
from mixlib.runs import RunFolder, train
from mixlib.runs.folder import METRICS
from mixlib.training import CHECKPOINT, read_checkpoint


def test_latency_refuses_a_checkpoint_with_a_pickled_callable(code_running_checkpoint):
    path, marker = code_running_checkpoint
    with pytest.raises(ValueError, match=r"refused to load .*evil\.pt.*posix\.system"):
        load_checkpoint(create_model("resnet10t", 10, 32), path)
    assert not marker.exists()


def test_run_folder_checkpoint_with_a_pickled_callable_is_refused(code_running_checkpoint, tmp_path):
    path, marker = code_running_checkpoint
    path.rename(tmp_path / CHECKPOINT)
    with pytest.raises(ValueError, match="refused to load"):
        read_checkpoint(tmp_path, "x")
    assert not marker.exists()


@pytest.fixture(scope="module", autouse=True)
def no_localisation_scores():
    """These tests are about files: the CAM scores (most of a tiny run's time) are left out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "localisation_scores", lambda *args, **kwargs: ({}, pd.DataFrame()))
        yield


@pytest.fixture(scope="module")
def two_epochs(tiny_config):
    return tiny_config.replace(epochs=2, warmup_epochs=1)


@pytest.fixture(scope="module")
def finished_two_epoch_run(tmp_path_factory, two_epochs):
    run_dir = tmp_path_factory.mktemp("run")
    train.train_run(two_epochs, run_dir, progress=False)
    return run_dir


def copy_run(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    return target


def test_truncated_checkpoint_is_set_aside_and_the_run_resumes_from_the_epoch_before(
    finished_two_epoch_run, two_epochs, tmp_path
):
    run_dir = copy_run(finished_two_epoch_run, tmp_path / "run")
    (run_dir / METRICS).unlink()
    data = (run_dir / CHECKPOINT).read_bytes()
    (run_dir / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"checkpoint\.pt is damaged.*set aside"):
        result = train.train_run(two_epochs, run_dir, progress=False)
    assert not result.reused and len(result.history) == two_epochs.epochs
    assert len(list(run_dir.glob("checkpoint.pt.damaged-*"))) == 1
    assert read_checkpoint(run_dir, result.metrics["fingerprint"]) is not None


def test_truncated_metrics_are_set_aside_and_the_run_is_not_lost(
    finished_two_epoch_run, two_epochs, tmp_path
):
    run_dir = copy_run(finished_two_epoch_run, tmp_path / "run")
    text = (run_dir / METRICS).read_text()
    (run_dir / METRICS).write_text(text[: len(text) // 2])
    with pytest.warns(UserWarning, match=r"metrics\.json is damaged.*set aside"):
        result = train.train_run(two_epochs, run_dir, progress=False)
    assert result.metrics["fingerprint"] and (run_dir / METRICS).is_file()
    assert len(list(run_dir.glob("metrics.json.damaged-*"))) == 1


def test_every_run_file_is_written_by_an_atomic_replace(tmp_path, monkeypatch, tiny_config):
    replaced = []
    original = os.replace

    def recording_replace(source, target):
        replaced.append(Path(target).name)
        return original(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    train.train_run(tiny_config, tmp_path / "run", progress=False)
    folder = RunFolder(tmp_path / "run")
    files = (folder.config_file, folder.checkpoint_files[0], folder.history_file, folder.metrics_file)
    assert {path.name for path in files} <= set(replaced)

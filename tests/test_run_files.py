"""Run files: checkpoints never run code on load, damaged files are set aside, every write is atomic."""

import os
from pathlib import Path

import pytest

from mixlib import training
from mixlib.config import RunConfig
from mixlib.latency.cli import load_checkpoint
from mixlib.models import create_model
from mixlib.training import CHECKPOINT, METRICS, read_checkpoint, train_run

TINY = RunConfig(
    images_per_class=6, val_per_class=2, test_per_class=3, image_size=32, epochs=2, batch_size=16
)


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
        patch.setattr(training, "localisation_scores", lambda *args, **kwargs: {})
        yield


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train_run(TINY, run_dir, progress=False)
    return run_dir


def copy_run(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    return target


def test_truncated_checkpoint_is_set_aside_and_the_run_resumes_from_the_epoch_before(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run")
    (run_dir / METRICS).unlink()
    data = (run_dir / CHECKPOINT).read_bytes()
    (run_dir / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"checkpoint\.pt is damaged.*set aside"):
        result = train_run(TINY, run_dir, progress=False)
    assert not result.reused and len(result.history) == TINY.epochs
    assert len(list(run_dir.glob("checkpoint.pt.damaged-*"))) == 1
    assert read_checkpoint(run_dir, result.metrics["fingerprint"]) is not None


def test_truncated_metrics_are_set_aside_and_the_run_is_not_lost(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run")
    text = (run_dir / METRICS).read_text()
    (run_dir / METRICS).write_text(text[: len(text) // 2])
    with pytest.warns(UserWarning, match=r"metrics\.json is damaged.*set aside"):
        result = train_run(TINY, run_dir, progress=False)
    assert result.metrics["fingerprint"] and (run_dir / METRICS).is_file()
    assert len(list(run_dir.glob("metrics.json.damaged-*"))) == 1


def test_every_run_file_is_written_by_an_atomic_replace(tmp_path, monkeypatch):
    replaced = []
    original = os.replace

    def recording_replace(source, target):
        replaced.append(Path(target).name)
        return original(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    train_run(TINY.replace(epochs=1), tmp_path / "run", progress=False)
    assert {"config.json", "checkpoint.pt", "history.csv", "metrics.json"} <= set(replaced)

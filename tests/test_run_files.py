"""Run files: checkpoints never run code on load, damaged files are set aside and the run recovers,
every write is atomic and leaves no debris, one process at a time owns a run folder."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from mixlib.files import atomic_save_torch, atomic_write, exclusive_lock
from mixlib.latency.cli import load_checkpoint
from mixlib.models import create_model
from mixlib.runs import RunFolder, evaluate, stages
from mixlib.runs.folder import CONFIG, METRICS, RECORDS, TRAINING
from mixlib.runs.load import finished_state
from mixlib.training import CHECKPOINT, HISTORY, TENSORBOARD, read_checkpoint

REPOSITORY = Path(__file__).resolve().parents[1]


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
        patch.setattr(evaluate, "localisation_scores", lambda *args, **kwargs: ({}, pd.DataFrame()))
        yield


@pytest.fixture(scope="module")
def two_epochs(tiny_config):
    return tiny_config.replace(epochs=2, warmup_epochs=1)


@pytest.fixture(scope="module")
def finished_two_epoch_run(tmp_path_factory, two_epochs):
    run_dir = tmp_path_factory.mktemp("run")
    stages.train_run(two_epochs, run_dir, progress=False)
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
        result = stages.train_run(two_epochs, run_dir, progress=False)
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
        result = stages.train_run(two_epochs, run_dir, progress=False)
    assert result.metrics["fingerprint"] and (run_dir / METRICS).is_file()
    assert len(list(run_dir.glob("metrics.json.damaged-*"))) == 1


def test_every_run_file_is_written_by_an_atomic_replace(tmp_path, monkeypatch, tiny_config):
    replaced = []
    original = os.replace

    def recording_replace(source, target):
        replaced.append(Path(target).name)
        return original(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    stages.train_run(tiny_config, tmp_path / "run", progress=False)
    folder = RunFolder(tmp_path / "run")
    files = (folder.config_file, folder.checkpoint_files[0], folder.history_file, folder.metrics_file)
    assert {path.name for path in files} <= set(replaced)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("record", list(RECORDS))
def test_a_damaged_record_of_a_finished_run_is_set_aside_and_the_run_recovers(
    finished_two_epoch_run, two_epochs, tmp_path, record
):
    run_dir = copy_run(finished_two_epoch_run, tmp_path / "run")
    before = RunFolder(run_dir).read_metrics()
    truncate(run_dir / record)
    with pytest.warns(UserWarning, match=rf"{run_dir}/{record} is damaged.*set aside as {record}\.damaged-"):
        result = stages.train_run(two_epochs, run_dir, progress=False)
    assert len(list(run_dir.glob(f"{record}.damaged-*"))) == 1
    retrained = record == CHECKPOINT  # its last epoch is trained again from the checkpoint before
    assert result.reused is False and len(result.history) == two_epochs.epochs
    if retrained:  # a new checkpoint file, so a new evaluation key
        for changed in ("epoch_seconds", "evaluation_fingerprint"):
            before.pop(changed), result.metrics.pop(changed)
    assert result.metrics == before
    assert finished_state(RunFolder(run_dir), two_epochs) is not None  # whole again: the next call reuses it


def test_a_config_json_of_other_parameters_is_not_reused(finished_two_epoch_run, two_epochs, tmp_path):
    run_dir = copy_run(finished_two_epoch_run, tmp_path / "run")
    RunFolder(run_dir).write_config(two_epochs.replace(lr=0.5))
    with pytest.warns(UserWarning, match="config.json is damaged: it holds other parameters"):
        assert finished_state(RunFolder(run_dir), two_epochs) is None
    assert not (run_dir / CONFIG).exists()


def test_an_unfinished_run_is_not_judged_damaged(finished_two_epoch_run, two_epochs, tmp_path):
    """A run still training (no training.json and metrics.json yet) has a short history: that is not
    damage."""
    run_dir = copy_run(finished_two_epoch_run, tmp_path / "run")
    (run_dir / METRICS).unlink()
    (run_dir / TRAINING).unlink()
    (run_dir / HISTORY).write_text((run_dir / HISTORY).read_text().splitlines()[0] + "\n")
    assert finished_state(RunFolder(run_dir), two_epochs) is None
    assert sorted(p.name for p in run_dir.glob("*.damaged-*")) == []


def test_a_write_that_fails_mid_file_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("the previous version")

    def disk_full(file):
        file.write(b"half of a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, disk_full)
    monkeypatch.setattr(torch, "save", lambda state, file: disk_full(file))
    with pytest.raises(OSError, match="No space left"):
        atomic_save_torch({"weights": torch.zeros(3)}, tmp_path / CHECKPOINT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert target.read_text() == "the previous version"


def test_every_file_of_a_run_gets_the_mode_the_umask_gives(tmp_path, tiny_config):
    previous = os.umask(0o027)
    try:
        stages.train_run(tiny_config, tmp_path / "run", progress=False)
    finally:
        os.umask(previous)
    files = [path for path in (tmp_path / "run").rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {CONFIG, METRICS, HISTORY, CHECKPOINT}
    assert any(path.parent.name == TENSORBOARD for path in files)
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} == {
        path.name: "0o640" for path in files
    }


HOLD_LOCK = """
import sys, time
import pandas as pd
from mixlib.files import exclusive_lock
with exclusive_lock(sys.argv[1], "the test's file"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("end", [signal.SIGTERM, signal.SIGKILL])
def test_a_locked_file_names_its_holder_and_is_free_when_the_holder_dies(tmp_path, capsys, end):
    lock = tmp_path / ".lock"
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True, env=environment
    )
    try:
        assert holder.stdout.readline() == "held\n"
        threading.Timer(1.0, holder.send_signal, [end]).start()
        start = time.perf_counter()
        with exclusive_lock(lock, "the test's file") as waited:
            assert waited and time.perf_counter() - start >= 0.9
            assert lock.read_text().startswith(f"process {os.getpid()} ")
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the test's file is in use by process {holder.pid} " in err
    with exclusive_lock(lock, "the test's file") as waited:  # released: the next one does not wait
        assert not waited


TRAIN_WHEN_BOTH_ARE_READY = """
import sys, time
import pandas as pd
from pathlib import Path
from mixlib.config import RunConfig
from mixlib.runs import evaluate, stages
evaluate.localisation_scores = lambda *args, **kwargs: ({}, pd.DataFrame())
run_dir, me, other = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
me.touch()
while not other.exists():  # both processes ask for the run at the same moment
    time.sleep(0.01)
config = RunConfig(images_per_class=6, val_per_class=2, test_per_class=2, image_size=32, epochs=1,
                   batch_size=16, warmup_epochs=0)
print("reused" if stages.train_run(config, run_dir, progress=False).reused else "trained")
"""


def test_two_processes_training_one_run_train_it_once(tmp_path):
    run_dir, ready = tmp_path / "run", [tmp_path / "ready-0", tmp_path / "ready-1"]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", TRAIN_WHEN_BOTH_ARE_READY, str(run_dir), str(me), str(other)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for me, other in (ready, ready[::-1])
    ]
    outcomes = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outcomes
    assert sorted(out.splitlines()[-1] for out, _ in outcomes) == ["reused", "trained"]
    assert sum("is in use by process" in err for _, err in outcomes) == 1
    assert len(list((run_dir / TENSORBOARD).iterdir())) == 1  # one event file: one training

"""The run-folder contract: where a profile's runs live, what a finished run folder holds, and which
folders the chapters read.

    <runs_dir>/<configuration>/seed<k>/     one run (`run_folder`)
        config.json                          the RunConfig, written when training starts and again
                                             when evaluation does (evaluation-only fields may change)
        checkpoint.pt, checkpoint.previous.pt, history.csv, tensorboard/   the engine's (`mixlib.training`)
        proxy/                               Proxy Attention's cache and examples (`mixlib.proxy.callback`)
        training.json                        the training record, written when the last epoch is saved:
                                             its key (`mixlib.runs.keys`), batch size, device, threads,
                                             epoch time, skipped files and the callbacks' entries
        predictions.csv                      one row per test image, in the split's order: the true
                                             class, the predicted class, its softmax confidence, the
                                             logits, and the per-image localisation hits and ratios
        metrics.json                         the evaluation record, written last: the training record's
                                             entries, the test and localisation scores, and the
                                             evaluation's key; the run is finished when it exists
        .lock                                held by the process training the run (`RunFolder.lock`)

A run has two stages, each with its own records and reused by its own key: training
(`TRAINING_RECORDS`) and evaluation (`EVALUATION_RECORDS`). An evaluation whose key no longer holds is
redone from the checkpoint, which it reads and never writes. The chapters' statistics resample test
images from `predictions.csv`, so a new paired statistic needs neither stage again.

A chapter reads the runs of the profile's configurations *and seeds* (`finished_runs`), so a seed
folder left over from an earlier profile counts on no page.

The records are the contract a stage is reused by: every file a stage wrote and a later one reads, each
with the check that it is whole (it parses, has the keys or columns named here, and belongs to the
run). A new record is one entry there; `training_records` and `evaluation_records` read a stage's
records back and set aside each damaged one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mixlib.config import RunConfig
from mixlib.files import (
    DamagedFile,
    atomic_write_json,
    atomic_write_text,
    exclusive_lock,
    load_torch,
    read_json,
    read_or_set_aside,
)
from mixlib.proxy.callback import CACHE as PROXY_CACHE
from mixlib.proxy.callback import EXAMPLES as PROXY_EXAMPLES
from mixlib.training import CHECKPOINT, HISTORY, PREVIOUS_CHECKPOINT, TENSORBOARD

CONFIG = "config.json"
TRAINING = "training.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.csv"
PREDICTION_COLUMNS = ("label", "predicted", "confidence")  # then logit_<k> and the localisation columns
OPTIONAL_PREDICTIONS = ("part_ratio", "body_ratio")  # NaN where an image has no part (or no CAM mass)
LOCK = ".lock"
# what a finished run's records must hold: what `mixlib.runs.train` and `mixlib.runs.evaluate` write
# and the chapters read
TRAINING_KEYS = ("fingerprint", "seed", "batch_size", "epoch_seconds", "skipped_files")
METRICS_KEYS = (
    *TRAINING_KEYS,
    "accuracy",
    "macro_f1",
    "macro_fpr",
    "ece",
    "confusion_matrix",
    "localisation",
    "evaluation_fingerprint",
)
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "val_accuracy", "epoch_seconds")
CHECKPOINT_KEYS = (
    "fingerprint",
    "model",
    "optimizer",
    "scaler",
    "history",
    "batch_size",
)  # `Trainer.save_checkpoint`


def configuration_folder(runs_dir: str | Path, configuration: str) -> Path:
    """Where every seed of one configuration lives (the report runner keeps its chapter there too)."""
    return Path(runs_dir) / configuration


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder."""

    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def training_file(self) -> Path:
        return self.path / TRAINING

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def predictions_file(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def history_file(self) -> Path:
        return self.path / HISTORY

    @property
    def checkpoint_files(self) -> tuple[Path, Path]:
        return self.path / CHECKPOINT, self.path / PREVIOUS_CHECKPOINT

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def proxy_examples(self) -> Path:
        return self.path / PROXY_CACHE / PROXY_EXAMPLES

    def is_finished(self) -> bool:
        return self.metrics_file.is_file()

    def read_config(self) -> RunConfig:
        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.path} is not a run folder (no {CONFIG})")
        return RunConfig.from_parameters(read_json(self.config_file))

    def read_metrics(self) -> dict:
        return read_json(self.metrics_file)

    def read_history(self) -> pd.DataFrame:
        return pd.read_csv(self.history_file)

    def read_predictions(self) -> pd.DataFrame:
        """The per-image test predictions; DamagedFile when the file is not a whole predictions table."""
        return whole_predictions(self.predictions_file)

    def write_config(self, config: RunConfig) -> None:
        atomic_write_json(self.config_file, config.to_dict())

    def write_training(self, record: dict) -> None:
        atomic_write_json(self.training_file, record)

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.metrics_file, metrics)

    def write_predictions(self, predictions: pd.DataFrame) -> None:
        atomic_write_text(self.predictions_file, predictions.to_csv(index=False))

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Own the run folder (created if missing) while the block runs: another process that wants
        it waits, saying which process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.path / LOCK, f"run folder {self.path}"):
            yield

    def training_records(self, config: RunConfig, fingerprint: str) -> dict[str, Any] | None:
        """The training stage's records read back and checked, when training.json says training finished
        under `fingerprint` (the run's training key) and the checkpoint holds its last epoch; else None.
        A damaged record is set aside (`<name>.damaged-<time>`, with a warning naming the run) and the
        answer is None, so that training resumes from its last whole checkpoint or starts over."""
        records = self.stage_records(
            TRAINING_RECORDS, config, lambda record: record["fingerprint"] == fingerprint
        )
        if records is None:
            return None
        state = records[CHECKPOINT]
        whole = state["fingerprint"] == fingerprint and len(state["history"]) == config.epochs
        return records if whole else None

    def evaluation_records(self, config: RunConfig, fingerprint: str) -> dict[str, Any] | None:
        """The evaluation stage's records read back and checked, when metrics.json was written under
        `fingerprint` (the run's evaluation key); else None, a damaged record set aside."""
        return self.stage_records(
            EVALUATION_RECORDS, config, lambda metrics: metrics["evaluation_fingerprint"] == fingerprint
        )

    def stage_records(
        self, records: dict[str, RecordCheck], config: RunConfig, current: Callable[[Any], bool]
    ) -> dict[str, Any] | None:
        """Every record of a stage, when its first record (the one written last) is whole and `current`;
        the others are only judged then, as a stage that did not finish leaves them partial."""
        first, *others = records
        record = self.read_record(first, config)
        if record is None or not current(record):
            return None
        read = {name: self.read_record(name, config) for name in others}
        return None if any(value is None for value in read.values()) else {first: record, **read}

    def read_record(self, name: str, config: RunConfig) -> Any | None:
        """Record `name` checked by its `RECORDS` entry; None when missing, or damaged and set aside."""
        return read_or_set_aside(self.path / name, lambda path: RECORDS[name](path, config), REDO)


REDO = "the stage that wrote it runs again (training resumes from its last whole checkpoint)"


def whole_json(path: Path, keys: Sequence[str]) -> dict:
    """A JSON object with every one of `keys`, else DamagedFile."""
    payload = read_json(path)
    missing = [key for key in keys if key not in payload] if isinstance(payload, dict) else list(keys)
    if missing:
        raise DamagedFile(f"{path} is damaged: it lacks {missing}")
    return payload


def whole_config(path: Path, config: RunConfig) -> RunConfig:
    try:
        written = RunConfig.from_parameters(read_json(path))
    except (TypeError, ValueError) as error:
        raise DamagedFile(f"{path} is damaged: {error}") from error
    if written.training_parameters() != config.training_parameters():  # evaluation rewrites the others
        raise DamagedFile(f"{path} is damaged: it holds other parameters than the run's")
    return written


def whole_history(path: Path, config: RunConfig) -> pd.DataFrame:
    """One complete row per epoch, numbered 1..epochs, with the contract's columns."""
    try:
        history = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:  # pandas' ParserError and EmptyDataError included
        raise DamagedFile(f"{path} is damaged: {error}") from error
    missing = [column for column in HISTORY_COLUMNS if column not in history]
    if missing:
        raise DamagedFile(f"{path} is damaged: it lacks the column(s) {missing}")
    columns = history[list(HISTORY_COLUMNS)]
    if columns.isna().any().any() or history["epoch"].tolist() != list(range(1, config.epochs + 1)):
        raise DamagedFile(f"{path} is damaged: it does not hold one whole row per epoch 1..{config.epochs}")
    return history


def whole_predictions(path: Path, config: RunConfig | None = None) -> pd.DataFrame:
    """One complete row per test image: the file ends its last line (a cut one does not) and every
    column but the part and body ratios (undefined for an image without a part) has a value."""
    try:
        whole = Path(path).read_bytes().endswith(b"\n")
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:  # pandas' ParserError and EmptyDataError included
        raise DamagedFile(f"{path} is damaged: {error}") from error
    missing = [column for column in PREDICTION_COLUMNS if column not in frame]
    required = frame.drop(columns=[c for c in OPTIONAL_PREDICTIONS if c in frame])
    if missing or frame.empty or not whole or required.isna().any().any():
        raise DamagedFile(f"{path} is damaged: it does not hold one whole row per test image")
    return frame


def whole_checkpoint(path: Path, config: RunConfig) -> dict:
    state = load_torch(path)
    missing = [key for key in CHECKPOINT_KEYS if key not in state] if isinstance(state, dict) else "all"
    if missing:
        raise DamagedFile(f"{path} is damaged: it lacks {missing}")
    return state


# file name -> its check: the record read back, or DamagedFile (a RefusedFile checkpoint is not damage
# and propagates). Each stage's first record is the one it writes last, and is read first.
RecordCheck = Callable[[Path, RunConfig], Any]
TRAINING_RECORDS: dict[str, RecordCheck] = {
    TRAINING: lambda path, config: whole_json(path, TRAINING_KEYS),
    CONFIG: whole_config,
    HISTORY: whole_history,
    CHECKPOINT: whole_checkpoint,
}
EVALUATION_RECORDS: dict[str, RecordCheck] = {
    METRICS: lambda path, config: whole_json(path, METRICS_KEYS),
    PREDICTIONS: whole_predictions,
}
RECORDS = {**TRAINING_RECORDS, **EVALUATION_RECORDS}


def run_folder(runs_dir: str | Path, configuration: str, seed: int) -> RunFolder:
    """Seed `seed`'s run of `configuration` under `runs_dir`."""
    return RunFolder(configuration_folder(runs_dir, configuration) / f"seed{seed}")


@dataclass(frozen=True)
class FinishedRun:
    """A finished run as the chapters read it: whose it is, its parameters and its metrics."""

    configuration: str
    seed: int
    folder: RunFolder
    config: RunConfig
    metrics: dict


def finished_runs(
    runs_dir: str | Path, configurations: Sequence[str], seeds: Sequence[int]
) -> list[FinishedRun]:
    """The finished runs of the given configurations and seeds, configuration by configuration.

    Raises FileNotFoundError when none has finished: a chapter over no run has nothing to show.
    """
    runs = [
        FinishedRun(name, seed, folder, folder.read_config(), folder.read_metrics())
        for name in configurations
        for seed in seeds
        if (folder := run_folder(runs_dir, name, seed)).is_finished()
    ]
    if not runs:
        raise FileNotFoundError(
            f"no finished runs under {runs_dir} for configurations {list(configurations)}, "
            f"seeds {list(seeds)}"
        )
    return runs

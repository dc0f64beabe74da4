"""The run-folder contract: where a profile's runs live, what a finished run folder holds, and which
folders the chapters read.

    <runs_dir>/<configuration>/seed<k>/     one run (`run_folder`)
        config.json                          the RunConfig, written when training starts
        checkpoint.pt, checkpoint.previous.pt, history.csv, tensorboard/   the engine's (`mixlib.training`)
        proxy/                               Proxy Attention's cache and examples (`mixlib.proxy.callback`)
        predictions.csv                      one row per test image, in the split's order: the true
                                             class, the predicted class, its softmax confidence, the
                                             logits, and the per-image localisation hits and ratios
        metrics.json                         written last: the run is finished when it exists

The chapters' statistics resample test images from `predictions.csv`, so a new paired statistic needs
no retraining.

A chapter reads the runs of the profile's configurations *and seeds* (`finished_runs`), so a seed
folder left over from an earlier profile counts on no page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mixlib.config import RunConfig
from mixlib.files import DamagedFile, atomic_write_json, atomic_write_text, read_json
from mixlib.proxy.callback import CACHE as PROXY_CACHE
from mixlib.proxy.callback import EXAMPLES as PROXY_EXAMPLES
from mixlib.training import CHECKPOINT, HISTORY, PREVIOUS_CHECKPOINT, TENSORBOARD

CONFIG = "config.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.csv"
PREDICTION_COLUMNS = ("label", "predicted", "confidence")  # then logit_<k> and the localisation columns


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
        try:
            frame = pd.read_csv(self.predictions_file)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise DamagedFile(f"{self.predictions_file} is damaged: {error}") from error
        missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
        if missing or frame[list(PREDICTION_COLUMNS)].isna().any().any():
            raise DamagedFile(f"{self.predictions_file} is damaged: columns {missing} missing or incomplete")
        return frame

    def write_config(self, config: RunConfig) -> None:
        atomic_write_json(self.config_file, config.to_dict())

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.metrics_file, metrics)

    def write_predictions(self, predictions: pd.DataFrame) -> None:
        atomic_write_text(self.predictions_file, predictions.to_csv(index=False))


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

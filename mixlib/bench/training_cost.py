"""Training cost measured alone and side by side: every configuration's training step, interleaved in
rounds on the same batches and the same device.

The report's runs time their own epochs, but they train on concurrent workers next to other runs and
chapters, so their epoch times mix each method's cost with whatever ran beside it. Here the report's
timed phase (nothing else running) builds every configuration's engine exactly as its runs do
(`mixlib.runs.build_trainer` with the configuration's recipe: batch transform, CAM loss terms and
callbacks, the model drawn from the run's seed) and times `Trainer.train_step`, the step
`Trainer.train_epoch` takes:

- counted: the batch augmentation on the device, the recipe's batch transform (with the extra
  forward/backward passes of the model-based methods), forward, the CAM loss terms, backward and the
  optimiser update (with the gradient scaler where the run has one);
- not counted: drawing the uint8 batch from the stored training set (the same for every
  configuration), setting the learning rate and summing the loss parts, and all per-epoch work:
  validation, checkpoints, and the callbacks. No callback of the project does per-step work; Proxy
  Attention's cost is per epoch: its proxy step (predicting the training set, CAMs of the chosen
  images, altering them) is not timed here, and the extra batches its proxy epochs train cost this
  step's time each. How many there are depends on how many images a run got wrong, so it is read from
  the runs (`mixlib.chapters.training_cost`); the record lists each configuration's proxy epochs.

Protocol: `steps_per_round` fixed batches are drawn once per configuration with the same seeded
indices, so configurations with the same data get the same images (each configuration's
`batch_checksum` shows it); after `warmup_steps` untimed steps each, round r times every configuration
once, in an order shuffled anew each round, for `steps_per_round` steps with the augmentation and
mixing generators seeded by r alone, so within a round every configuration draws the same random
numbers. R rounds give R paired measurements per configuration: a round's ratio to the baseline
compares steps taken minutes, not hours, apart, and `paired_ratios` pairs them by round as the
report's statistics pair runs by seed. The steps keep training the model, as a run does.

The allocator and threads are the process's own (the report's timed kernel gets every core; the runs
trained with their Dask worker's threads, recorded in their metrics.json), so the figures are the
cost on this machine alone, not the runs' own epoch times, which stay in the configuration chapters.
"""

from __future__ import annotations

import hashlib
import platform
import random
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mixlib.bench.timing import seconds
from mixlib.checks import check_int
from mixlib.config import RunConfig
from mixlib.data import ImageTensors
from mixlib.files import atomic_write_json, read_json
from mixlib.proxy import ProxyAttention
from mixlib.runs import RunFolder, build_trainer, create_recipe
from mixlib.training import Trainer, batches_per_epoch, set_deterministic

RECORD = "training_cost.json"  # in the profile's runs folder: runs/<profile>/training_cost.json
# sized on the 2-core CPU for the quick profile (17 configurations, batch 32 at 48 px): about a minute
DEFAULT_ROUNDS = 6
DEFAULT_STEPS_PER_ROUND = 1
DEFAULT_WARMUP_STEPS = 1
TIMES_COLUMNS = ["configuration", "round", "seconds_per_step", "images_per_step"]


@dataclass
class Contender:
    """One configuration's engine and the fixed batches it is timed on."""

    name: str
    trainer: Trainer
    batches: list[ImageTensors]


def record_path(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / RECORD


def measure_training_cost(
    configurations: Mapping[str, RunConfig],
    rounds: int = DEFAULT_ROUNDS,
    steps_per_round: int = DEFAULT_STEPS_PER_ROUND,
    warmup_steps: int = DEFAULT_WARMUP_STEPS,
    seed: int = 0,
) -> dict:
    """Seconds per training step of every configuration (name -> its run's config), `rounds` rounds of
    `steps_per_round` steps each, interleaved (see the module docstring); the record `write_record`
    stores."""
    check_setting(configurations, rounds, steps_per_round, warmup_steps)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:  # build_trainer writes each config.json there
        contenders = [
            build_contender(name, config, Path(scratch) / name, steps_per_round, seed)
            for name, config in configurations.items()
        ]
        device = common_device(contenders)
        for contender in contenders:
            set_deterministic(contender.trainer.config.deterministic)
            run_steps(contender, warmup_steps, *generators(seed))
        set_up = time.perf_counter() - start
        measurements = timed_rounds(contenders, rounds, seed)
    return {
        "machine": machine(device),
        "setting": {
            "rounds": rounds,
            "steps_per_round": steps_per_round,
            "warmup_steps": warmup_steps,
            "seed": seed,
            "set_up_seconds": set_up,
            "seconds": time.perf_counter() - start,
        },
        "configurations": {c.name: describe(c) for c in contenders},
        "measurements": measurements,
    }


def check_setting(
    configurations: Mapping[str, RunConfig], rounds: int, steps_per_round: int, warmup_steps: int
) -> None:
    if not configurations:
        raise ValueError("configurations is empty: there is nothing to measure")
    check_int("rounds", rounds, 1)
    check_int("steps_per_round", steps_per_round, 1)
    check_int("warmup_steps", warmup_steps, 0)


def build_contender(name: str, config: RunConfig, folder: Path, steps: int, seed: int) -> Contender:
    """The engine as `train_run` builds it (deterministic mode and model seed included), and `steps`
    batches drawn with indices seeded by `seed` alone."""
    set_deterministic(config.deterministic)
    torch.manual_seed(config.seed)
    folder.mkdir(parents=True)
    trainer = build_trainer(config, RunFolder(folder), create_recipe(config), progress=False)
    trainer.model.train()
    return Contender(name, trainer, fixed_batches(trainer, steps, seed))


def fixed_batches(trainer: Trainer, count: int, seed: int) -> list[ImageTensors]:
    """`count` training batches of the run's batch size, each of distinct images (all of them when the
    set is smaller), on the training device."""
    generator = torch.Generator().manual_seed(seed)
    size, images = trainer.batch_size, len(trainer.train_set)
    orders = [torch.randperm(images, generator=generator)[:size] for _ in range(count)]
    return [next(trainer.train_set.batches(order, size, trainer.device)) for order in orders]


def batch_checksum(batches: list[ImageTensors]) -> str:
    """A hash of the images and labels of `batches`: equal where two configurations got the same batches."""
    digest = hashlib.sha256()
    for batch in batches:
        for tensor in (batch.images, batch.labels):
            digest.update(np.ascontiguousarray(tensor.cpu().numpy()).tobytes())
    return digest.hexdigest()[:16]


def common_device(contenders: list[Contender]) -> torch.device:
    devices = {str(c.trainer.device) for c in contenders}
    if len(devices) > 1:
        raise ValueError(f"configurations train on different devices ({sorted(devices)}); set one `device`")
    return contenders[0].trainer.device


def generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """The augmentation and mixing generators of a block of steps, and the global generator (dropout)
    reseeded, all from `seed`, so configurations timed with the same seed draw the same numbers."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)


def timed_rounds(contenders: list[Contender], rounds: int, seed: int) -> list[dict]:
    """One row per (round, configuration): its seconds per step, its position in the round's shuffled
    order and when its block started (seconds since the first round began)."""
    rows, start = [], time.perf_counter()
    for round_index in range(rounds):
        order = random.Random(seed + round_index).sample(contenders, len(contenders))
        for position, contender in enumerate(order):
            started = time.perf_counter() - start
            rows.append(
                {
                    "round": round_index,
                    "position": position,
                    "configuration": contender.name,
                    "start_seconds": started,
                    "seconds_per_step": time_block(contender, seed + round_index),
                    "images_per_step": contender.trainer.batch_size,
                }
            )
    return rows


def time_block(contender: Contender, seed: int) -> float:
    """Seconds per step of one pass over the contender's fixed batches, generators seeded by `seed`."""
    set_deterministic(contender.trainer.config.deterministic)  # a global switch: each configuration's own
    data, mixing = generators(seed)
    count = len(contender.batches)
    return seconds(lambda: run_steps(contender, count, data, mixing), contender.trainer.device) / count


def run_steps(contender: Contender, count: int, data: torch.Generator, mixing: torch.Generator) -> None:
    """`count` training steps, going round the contender's fixed batches."""
    for step in range(count):
        contender.trainer.train_step(contender.batches[step % len(contender.batches)], data, mixing)


def describe(contender: Contender) -> dict:
    """What a reader needs to turn a step's seconds into a run's: batch, batches per epoch, epochs, and
    the callbacks' per-epoch work (Proxy Attention's proxy epochs)."""
    trainer, config = contender.trainer, contender.trainer.config
    proxy = [c for c in trainer.callbacks if isinstance(c, ProxyAttention)]
    return {
        "method": config.method,
        "image_size": config.image_size,
        "images_per_step": trainer.batch_size,
        "batches_per_epoch": batches_per_epoch(len(trainer.train_set), trainer.batch_size),
        "epochs": config.epochs,
        "callbacks": [type(c).__name__ for c in trainer.callbacks],
        "proxy_epochs": sorted(e for c in proxy for e in c.proxy_epochs),
        "batch_checksum": batch_checksum(contender.batches),
    }


def machine(device: torch.device) -> dict:
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def cpu_model() -> str:
    """The CPU's model name as `lscpu` shows it (Linux), else what the platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- the record, read back


def write_record(record: dict, runs_dir: str | Path) -> Path:
    path = record_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    return path


def read_record(runs_dir: str | Path) -> dict:
    path = record_path(runs_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: the report's training_cost chapter writes it in the timed phase"
        )
    return read_json(path)


def step_times(record: Mapping) -> pd.DataFrame:
    """One row per (configuration, round), configurations in the record's order: `configuration`,
    `round`, `seconds_per_step`, `images_per_step`; pivot it by round as the runs are pivoted by seed."""
    times = pd.DataFrame(record["measurements"], columns=TIMES_COLUMNS)
    rank = times["configuration"].map({name: i for i, name in enumerate(record["configurations"])})
    return times.iloc[np.lexsort((times["round"], rank))].reset_index(drop=True)


def paired_ratios(times: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Each configuration's step time over the baseline's in the same round: columns `configuration`,
    `round`, `ratio` (the baseline's own rows are 1)."""
    wide = times.pivot(index="round", columns="configuration", values="seconds_per_step")
    if baseline not in wide.columns:
        raise ValueError(f"baseline {baseline!r} was not measured; measured: {', '.join(wide.columns)}")
    ratios = wide[list(dict.fromkeys(times["configuration"]))].div(wide[baseline], axis=0)
    long = ratios.reset_index().melt(id_vars="round", var_name="configuration", value_name="ratio")
    return long[["configuration", "round", "ratio"]]


def geometric_mean_ratios(times: pd.DataFrame, baseline: str) -> pd.Series:
    """Per configuration, the geometric mean of its per-round ratios to the baseline."""
    ratios = paired_ratios(times, baseline)
    means = ratios.groupby("configuration", sort=False)["ratio"].apply(
        lambda r: float(np.exp(np.log(r).mean()))
    )
    return means.rename("ratio")


def summary(times: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Per configuration (in the record's order): median, 25th and 75th percentile of its seconds per
    step over the rounds; with a measured `baseline`, the geometric mean of its per-round ratios and
    their smallest and largest."""
    grouped = times.groupby("configuration", sort=False)["seconds_per_step"]
    table = pd.DataFrame(
        {
            "median_s": grouped.median(),
            "q25_s": grouped.quantile(0.25),
            "q75_s": grouped.quantile(0.75),
            "rounds": grouped.size(),
        }
    )
    if baseline is not None and baseline in table.index:
        ratios = paired_ratios(times, baseline).groupby("configuration", sort=False)["ratio"]
        table["ratio"] = geometric_mean_ratios(times, baseline)
        table["ratio_min"], table["ratio_max"] = ratios.min(), ratios.max()
    return table


def significant(value: float, digits: int = 3) -> str:
    """`digits` significant digits without the exponent notation `:g` gives from 1000 on."""
    return np.format_float_positional(value, precision=digits, unique=False, fractional=False, trim="-")


def shown_summary(times: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """`summary` for reading: milliseconds and ratios to three significant digits."""
    table = summary(times, baseline)
    shown = pd.DataFrame(index=table.index.rename("configuration"))
    shown["ms per step (median)"] = [significant(1000 * v) for v in table["median_s"]]
    shown["25-75 % over rounds (ms)"] = [
        f"{significant(1000 * low)}-{significant(1000 * high)}"
        for low, high in zip(table["q25_s"], table["q75_s"], strict=True)
    ]
    if "ratio" in table:
        shown["x baseline (geometric mean of per-round ratios)"] = table["ratio"].map(significant)
        shown["per-round range"] = [
            f"{significant(low)}-{significant(high)}"
            for low, high in zip(table["ratio_min"], table["ratio_max"], strict=True)
        ]
    return shown


def setting_text(record: Mapping) -> str:
    """One line: where and how the record was measured."""
    machine, setting = record["machine"], record["setting"]
    return (
        f"{machine['device_name']} ({machine['device']}), {machine['threads']} thread(s), torch "
        f"{machine['torch']}; {setting['rounds']} rounds x {setting['steps_per_round']} steps per "
        f"configuration after {setting['warmup_steps']} warm-up step(s), measured in "
        f"{setting['seconds']:.0f} s ({setting['set_up_seconds']:.0f} s of it building the engines)."
    )

"""`python -m mixlib pilot`: measure how long a schedule the question needs before a profile is sized.

A few configurations of a profile (by default the baseline, MixUp and CutMix) are trained at several
epoch counts, each count with its own whole warm-up + cosine schedule (a 10-epoch run is not the first
10 epochs of a 40-epoch run), and scored by their final validation accuracy; the test split plays no
part in anything the pilot prints. Each run's wall time is recorded too, and a line `seconds = fixed +
per_epoch x epochs` fitted per configuration, so that the wall time of a whole profile (configurations x
seeds x epochs) can be estimated on this machine before it is run.

`--out` writes the figures as YAML, ready to paste as a profile's `pilot` section; the profile's
description then states them in words.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mixlib.files import atomic_write_json, read_json
from mixlib.profiles import Configuration, Profile, load_profile
from mixlib.runs import RunResult, run_folder, train_run

DEFAULT_CONFIGURATIONS = ("baseline", "mixup", "cutmix")
DEFAULT_EPOCHS = (5, 10, 20)
WALL_TIME = "pilot.json"  # the run's wall time, kept in its own folder so a reused run still has it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True, help="profile name or .yml path")
    parser.add_argument("--data-root", default=None, help="dataset folder, overrides the profile's")
    parser.add_argument(
        "--configurations",
        nargs="+",
        default=list(DEFAULT_CONFIGURATIONS),
        help=f"configurations to train, the first is the reference (default {DEFAULT_CONFIGURATIONS})",
    )
    parser.add_argument(
        "--epochs", type=int, nargs="+", default=list(DEFAULT_EPOCHS), help="schedule lengths to train"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per point (default 0)")
    parser.add_argument("--runs-dir", default=None, help="default runs/<profile>-pilot")
    parser.add_argument("--out", default=None, help="write the figures here as YAML")


def chosen_configurations(profile: Profile, names: Sequence[str]) -> list[Configuration]:
    by_name = {c.name: c for c in profile.configurations}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(
            f"--configurations {unknown} are not configurations of {profile.name!r}; allowed values: "
            f"{sorted(by_name)}"
        )
    return [by_name[name] for name in names]


def check_epochs(epochs: Sequence[int]) -> list[int]:
    if not epochs or any(e < 1 for e in epochs):
        raise ValueError(f"--epochs must be positive whole numbers, got {list(epochs)}")
    return sorted(set(epochs))


def pilot(
    configurations: Sequence[Configuration],
    epochs: Sequence[int],
    seeds: Sequence[int],
    runs_dir: str | Path,
    train: Callable[..., RunResult] = train_run,
) -> pd.DataFrame:
    """One row per (configuration, epochs, seed): final validation accuracy and the run's wall time."""
    rows = []
    for length in epochs:  # shortest first: an interrupted pilot still compares every configuration
        for configuration in configurations:
            for seed in seeds:
                run_dir = run_folder(Path(runs_dir) / configuration.name, f"epochs{length}", seed).path
                config = configuration.config.replace(epochs=length, seed=seed)
                result, seconds = timed_run(train, config, run_dir)
                rows.append(
                    {
                        "configuration": configuration.name,
                        "epochs": length,
                        "seed": seed,
                        "val_accuracy": float(result.history["val_accuracy"].iloc[-1]),
                        "seconds": seconds,
                    }
                )
    return pd.DataFrame(rows)


def timed_run(train: Callable[..., RunResult], config, run_dir: Path) -> tuple[RunResult, float]:
    """Train (or reuse) one run; its wall time is that of the call that trained it."""
    start = time.perf_counter()
    result = train(config, run_dir, progress=False)
    seconds = time.perf_counter() - start
    if not result.trained and (run_dir / WALL_TIME).is_file():
        return result, float(read_json(run_dir / WALL_TIME)["seconds"])
    atomic_write_json(run_dir / WALL_TIME, {"seconds": seconds})
    return result, seconds


def accuracy_table(runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Mean validation accuracy per (configuration, epochs) and its gain over the reference, by seed."""
    accuracy = runs.pivot_table(index=["configuration", "epochs"], columns="seed", values="val_accuracy")
    gains = accuracy.sub(accuracy.xs(reference, level="configuration"), level="epochs")
    order = list(dict.fromkeys(runs["configuration"]))
    table = pd.DataFrame(
        {
            "val_accuracy": accuracy.mean(axis=1),
            f"gain_over_{reference}": gains.mean(axis=1),
            "seeds": accuracy.count(axis=1),
        }
    ).reset_index()
    table["configuration"] = pd.Categorical(table["configuration"], order, ordered=True)
    return table.sort_values(["configuration", "epochs"]).reset_index(drop=True)


def cost_lines(runs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per configuration, `seconds = fixed + per_epoch x epochs` by least squares over its runs.

    With one epoch count only, there is no line to fit: everything is put down to the epochs.
    """
    lines = {}
    for name, group in runs.groupby("configuration", sort=False):
        if group["epochs"].nunique() < 2:
            lines[name] = {"fixed": 0.0, "per_epoch": float((group["seconds"] / group["epochs"]).mean())}
            continue
        per_epoch, fixed = np.polyfit(group["epochs"], group["seconds"], 1)
        lines[name] = {"fixed": float(fixed), "per_epoch": float(per_epoch)}
    return lines


def estimated_hours(
    lines: Mapping[str, Mapping[str, float]], configurations: int, seeds: int, epochs: int
) -> float:
    """Wall time of a profile on this machine, from the mean cost line of the piloted configurations."""
    fixed = float(np.mean([line["fixed"] for line in lines.values()]))
    per_epoch = float(np.mean([line["per_epoch"] for line in lines.values()]))
    return configurations * seeds * (fixed + per_epoch * epochs) / 3600


def figures(runs: pd.DataFrame, reference: str, command: str) -> dict:
    """The pilot as plain data for a profile's `pilot` section; `command` is the one that ran it."""
    table = accuracy_table(runs, reference)
    gain = f"gain_over_{reference}"
    return {
        "command": command,
        "rule": "final validation accuracy, mean over seeds; each length its own schedule; test split unused",
        "seeds": sorted(int(s) for s in runs["seed"].unique()),
        "validation_accuracy": [
            {
                "configuration": str(row["configuration"]),
                "epochs": int(row["epochs"]),
                "val_accuracy": round(float(row["val_accuracy"]), 4),
                gain: round(float(row[gain]), 4),
            }
            for _, row in table.iterrows()
        ],
        "seconds": {
            name: {k: round(v, 1) for k, v in line.items()} for name, line in cost_lines(runs).items()
        },
    }


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile, args.data_root)
    configurations = chosen_configurations(profile, args.configurations)
    epochs = check_epochs(args.epochs)
    runs_dir = Path(args.runs_dir or Path("runs") / f"{profile.name}-pilot")
    runs = pilot(configurations, epochs, args.seeds, runs_dir)
    reference = configurations[0].name
    print(accuracy_table(runs, reference).to_string(index=False, float_format="{:.4f}".format))
    lines = cost_lines(runs)
    for name, line in lines.items():
        print(f"{name}: {line['fixed']:.0f} s per run + {line['per_epoch']:.1f} s per epoch")
    for length in epochs:
        hours = estimated_hours(lines, len(configurations), len(args.seeds), length)
        print(
            f"these {len(configurations)} configurations x {len(args.seeds)} seed(s) at {length} epochs: "
            f"about {hours:.2f} h here"
        )
    if args.out:
        Path(args.out).write_text(
            yaml.safe_dump({"pilot": figures(runs, reference, args.command_line)}, sort_keys=False)
        )
        print(f"figures written to {args.out}")
    return 0

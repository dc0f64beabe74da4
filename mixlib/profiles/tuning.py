"""`python -m mixlib tune`: fair tuning of the baseline's learning rate and weight decay, on the
validation split only.

Every point of a small grid trains the profile's baseline configuration for each given seed; a point
is scored by its final validation accuracy, averaged over the seeds. The test split plays no part in
the choice (each run still reports it at its end, as every run does, but it is never read here). The
chosen values, and the whole grid with its scores, are written into a copy of the profile: its
`defaults` get the chosen `lr` and `weight_decay`, so every method trains with them, while each
method's own hyperparameters stay the published defaults of `mixlib.mixing`.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import yaml

from mixlib.profiles import Configuration, load_profile, profile_path
from mixlib.runs import RunResult, run_folder, train_run

TUNABLE = ("lr", "weight_decay")
DEFAULT_GRID = {"lr": (0.02, 0.05, 0.1), "weight_decay": (1e-4, 5e-4)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True, help="profile name or .yml path; its baseline is tuned")
    parser.add_argument("--data-root", default=None, help="dataset folder, overrides the profile's")
    parser.add_argument("--baseline", default="baseline", help="the configuration to tune")
    parser.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2,...",
        help=f"values of one of {', '.join(TUNABLE)} (repeatable; default {DEFAULT_GRID})",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the profile's seeds")
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's epochs")
    parser.add_argument("--runs-dir", default=None, help="default runs/<profile>-tuning")
    parser.add_argument("--out", required=True, help="where the tuned copy of the profile is written")


def parse_grid(entries: Sequence[str] | None) -> dict[str, tuple[float, ...]]:
    """`["lr=0.01,0.1", ...]` -> {"lr": (0.01, 0.1), ...}; names must be in TUNABLE."""
    if not entries:
        return dict(DEFAULT_GRID)
    grid = {}
    for entry in entries:
        name, _, values = entry.partition("=")
        if name not in TUNABLE or not values:
            raise ValueError(
                f"--grid must be NAME=V1,V2,... with NAME one of {', '.join(TUNABLE)}; got {entry!r}"
            )
        try:
            grid[name] = tuple(float(v) for v in values.split(","))
        except ValueError as error:
            raise ValueError(f"--grid {entry!r}: values must be numbers") from error
    return grid


def grid_points(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def point_name(point: Mapping[str, float]) -> str:
    return "-".join(f"{name}{value:g}" for name, value in point.items())


def tune(
    configuration: Configuration,
    grid: Mapping[str, Sequence[float]],
    seeds: Sequence[int],
    runs_dir: str | Path,
    epochs: int | None = None,
    train: Callable[..., RunResult] = train_run,
) -> pd.DataFrame:
    """Train every grid point for every seed; one row per run with its final validation accuracy."""
    rows = []
    for point in grid_points(grid):
        for seed in seeds:
            changes = {**point, "seed": seed, **({"epochs": epochs} if epochs else {})}
            config = configuration.config.replace(**changes)
            result = train(config, run_folder(runs_dir, point_name(point), seed).path, progress=False)
            rows.append(
                {**point, "seed": seed, "val_accuracy": float(result.history["val_accuracy"].iloc[-1])}
            )
    return pd.DataFrame(rows)


def choose(runs: pd.DataFrame, grid: Mapping[str, Sequence[float]]) -> tuple[dict[str, float], pd.DataFrame]:
    """The point with the highest mean validation accuracy over seeds (the first of a tie, in grid
    order), and the per-point scores."""
    scores = runs.groupby(list(grid), sort=False)["val_accuracy"].agg(["mean", "std", "count"]).reset_index()
    best = scores.loc[scores["mean"].idxmax()]
    return {name: float(best[name]) for name in grid}, scores


def tuned_profile(
    source: Path, chosen: Mapping[str, float], scores: pd.DataFrame, epochs: int | None, command: str
) -> dict:
    """The profile document with the chosen values in `defaults` and the grid's figures in `tuning`;
    `command` is the one that ran the grid."""
    document = yaml.safe_load(source.read_text())
    document.setdefault("defaults", {}).update(chosen)
    document["tuning"] = {
        "command": command,
        "rule": "baseline's final validation accuracy, mean over seeds; the test split is not used",
        "epochs": epochs or document["defaults"].get("epochs"),
        "chosen": dict(chosen),
        "grid": [
            {
                **{k: float(v) for k, v in row.items() if k not in ("mean", "std", "count")},
                "val_accuracy_mean": round(float(row["mean"]), 4),
                "val_accuracy_std": None if pd.isna(row["std"]) else round(float(row["std"]), 4),
                "seeds": int(row["count"]),
            }
            for row in scores.to_dict("records")
        ],
    }
    return document


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile, args.data_root)
    by_name = {c.name: c for c in profile.configurations}
    if args.baseline not in by_name:
        raise SystemExit(
            f"--baseline {args.baseline!r} is not a configuration of {profile.name!r}: {sorted(by_name)}"
        )
    grid = parse_grid(args.grid)
    seeds = args.seeds or list(profile.seeds)
    runs_dir = Path(args.runs_dir or Path("runs") / f"{profile.name}-tuning")
    runs = tune(by_name[args.baseline], grid, seeds, runs_dir, args.epochs)
    chosen, scores = choose(runs, grid)
    document = tuned_profile(profile_path(args.profile), chosen, scores, args.epochs, args.command_line)
    if args.data_root:
        document["defaults"]["data_root"] = args.data_root
    Path(args.out).write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    print(scores.to_string(index=False))
    print(f"chosen on validation accuracy: {chosen}; tuned profile written to {args.out}")
    return 0

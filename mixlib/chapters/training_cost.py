"""The training-cost chapter (`notebooks/training_cost.ipynb`) and `python -m mixlib bench training-cost`:
every configuration's training step timed alone and side by side (`mixlib.bench.training_cost`).

The chapter runs in the report's timed phase, after every run and with nothing beside it; it builds
each configuration from its first finished run's `config.json` and writes the record to
`<runs_dir>/training_cost.json`, which the findings page (run after the timed phase) reads. The
command builds them from a profile instead and only prints.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from mixlib.bench.training_cost import (
    DEFAULT_ROUNDS,
    DEFAULT_STEPS_PER_ROUND,
    DEFAULT_WARMUP_STEPS,
    geometric_mean_ratios,
    measure_training_cost,
    paired_ratios,
    setting_text,
    shown_summary,
    step_times,
    write_record,
)
from mixlib.chapters.scores import label_in_header
from mixlib.config import RunConfig
from mixlib.profiles import available_profiles, load_profile
from mixlib.runs import finished_runs

BASELINE = "baseline"  # the configuration the ratios are taken to, as on the findings page


def run_configurations(
    runs_dir: str | Path, configurations: Sequence[str], seeds: Sequence[int]
) -> dict[str, RunConfig]:
    """Each configuration's parameters as its first finished run trained with them."""
    chosen: dict[str, RunConfig] = {}
    for run in finished_runs(runs_dir, configurations, seeds):
        chosen.setdefault(run.configuration, run.config)
    return chosen


def measure_and_record(
    runs_dir: str | Path,
    configurations: Sequence[str],
    seeds: Sequence[int],
    rounds: int = DEFAULT_ROUNDS,
    steps_per_round: int = DEFAULT_STEPS_PER_ROUND,
    warmup_steps: int = DEFAULT_WARMUP_STEPS,
) -> dict:
    """Measure every configuration with a finished run and write `<runs_dir>/training_cost.json`."""
    configs = run_configurations(runs_dir, configurations, seeds)
    record = measure_training_cost(configs, rounds, steps_per_round, warmup_steps)
    write_record(record, runs_dir)
    return record


def extra_batches(record: Mapping, runs_dir: str | Path, seeds: Sequence[int]) -> pd.DataFrame:
    """For each configuration with proxy epochs: the batches a run trains without them, the extra
    batches its runs' proxy epochs trained (mean over the finished seeds, from `history.csv`), and the
    run's step work relative to the baseline's (step ratio x batches ratio; the proxy steps' own
    prediction and CAM time is not in it)."""
    rows = []
    names = [name for name, entry in record["configurations"].items() if entry["proxy_epochs"]]
    ratios = (
        geometric_mean_ratios(step_times(record), BASELINE) if BASELINE in record["configurations"] else None
    )
    for run in finished_runs(runs_dir, names, seeds) if names else []:
        entry = record["configurations"][run.configuration]
        rows.append(
            {
                "configuration": run.configuration,
                "seed": run.seed,
                "proxy_epochs": ", ".join(map(str, entry["proxy_epochs"])),
                "batches": entry["batches_per_epoch"] * entry["epochs"],
                "extra": int(run.folder.read_history()["proxy_extra_steps"].sum()),
            }
        )
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).groupby(["configuration", "proxy_epochs", "batches"], sort=False)["extra"]
    table = table.agg(["mean", "size"]).reset_index().set_index("configuration")
    table = table.rename(columns={"mean": "extra batches per run", "size": "seeds"})
    if ratios is not None:
        base = record["configurations"][BASELINE]
        base_batches = base["batches_per_epoch"] * base["epochs"]
        table["step work per run x baseline's"] = [
            f"{ratios[name] * (row['batches'] + row['extra batches per run']) / base_batches:.3g}"
            for name, row in table.iterrows()
        ]
    table = table.rename(columns={"proxy_epochs": "proxy epochs", "batches": "batches without proxies"})
    return label_in_header(table)


def plot_ratios(record: Mapping) -> plt.Figure:
    """Every round's ratio to the baseline, one row per configuration, with the geometric mean."""
    times = step_times(record)
    ratios = paired_ratios(times, BASELINE)
    names = list(dict.fromkeys(times["configuration"]))
    means = geometric_mean_ratios(times, BASELINE)
    figure, axis = plt.subplots(figsize=(6.5, 0.3 * len(names) + 1.2))
    positions = {name: len(names) - 1 - i for i, name in enumerate(names)}
    axis.scatter(ratios["ratio"], ratios["configuration"].map(positions), s=12, alpha=0.6, label="one round")
    axis.scatter(
        means[names], [positions[n] for n in names], marker="|", s=200, c="k", label="geometric mean"
    )
    axis.axvline(1.0, color="grey", lw=0.8)
    axis.set_yticks(list(positions.values()), list(positions))
    axis.set_xlabel(f"step time / {BASELINE}'s step time in the same round")
    axis.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    return figure


# ----------------------------------------------------------------- python -m mixlib bench training-cost


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="quick", help=f"profile name ({', '.join(available_profiles())}) or a .yml path"
    )
    parser.add_argument("--data-root", default=None, help="dataset folder, overrides the profile's data_root")
    parser.add_argument("--configurations", nargs="+", default=None, help="a subset (default: all)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS_PER_ROUND, help="timed steps per round")
    parser.add_argument("--warmup-steps", type=int, default=DEFAULT_WARMUP_STEPS)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")


def benchmark(args: argparse.Namespace) -> dict:
    """The record of the profile's configurations, each with the profile's first seed."""
    profile = load_profile(args.profile, args.data_root)
    chosen = args.configurations or [c.name for c in profile.configurations]
    known = {c.name: c.config.replace(seed=profile.seeds[0]) for c in profile.configurations}
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(
            f"--configurations {unknown} are not in profile {profile.name!r}: {', '.join(known)}"
        )
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return measure_training_cost(
        {name: known[name] for name in chosen}, args.rounds, args.steps, args.warmup_steps
    )


def step_table(times: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """`shown_summary` as the chapter shows it: the configuration label in the header row."""
    return label_in_header(shown_summary(times, baseline))


def format_table(record: dict) -> str:
    baseline = BASELINE if BASELINE in record["configurations"] else None
    table = shown_summary(step_times(record), baseline).to_string()
    return f"{setting_text(record)}\n\n{table}\n"

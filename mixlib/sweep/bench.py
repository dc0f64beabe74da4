"""`python -m mixlib bench sweep`: the report's notebooks on Dask against the serial runner they
replaced, on one profile, one after the other in one process.

Both execute every notebook of the profile from scratch, each into its own folder under `--out`
(emptied first, nothing reused), and time it from the first notebook to the last; the book build is
the same for both and is not timed:

- `serial`: what `python -m mixlib report` did before it ran on Dask (commit c527d0d): one kernel per
  configuration trains every seed and renders the chapter (`train.ipynb` over all the profile's seeds),
  then the summary chapters, one notebook at a time, PyTorch on every core;
- `dask`: `mixlib.sweep.runner.run_sweep` on the local cluster the report starts (`--workers` as in
  the report), the cluster's start included.

The profile's data is prepared (the synthetic cache drawn) before either is timed, and `--order`
says which goes first, so a second call in the other order shows how much a slow spell of a shared
machine moved the figures.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import replace
from pathlib import Path

from mixlib.chapters.contents import SUMMARY_CHAPTERS, TRAIN_TEMPLATE
from mixlib.profiles import Profile, available_profiles, load_profile
from mixlib.run_data import load_config_splits
from mixlib.runs import configuration_folder
from mixlib.sweep.cluster import dask_client
from mixlib.sweep.runner import (
    CHAPTER,
    NotebookTask,
    execute,
    notebook_overhead,
    notebook_task,
    run_sweep,
    run_tasks,
    summary_task,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="quick", help=f"profile name ({', '.join(available_profiles())}) or a .yml path"
    )
    parser.add_argument("--data-root", default=None, help="dataset folder, overrides the profile's data_root")
    parser.add_argument(
        "--out", default="runs/bench-sweep", help="run folders of both variants (emptied first)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="local Dask workers (default: as the report)"
    )
    parser.add_argument("--order", default="serial,dask", help="the variants in the order they run")


def benchmark(args: argparse.Namespace) -> dict:
    order = [name.strip() for name in args.order.split(",")]
    if sorted(order) != sorted(TIMERS):
        raise ValueError(f"--order must name {' and '.join(TIMERS)} once each, got {args.order!r}")
    if not TRAIN_TEMPLATE.is_file():
        raise FileNotFoundError("run `python -m mixlib bench sweep` from the repository root")
    profile = load_profile(args.profile, args.data_root)
    for configuration in profile.configurations:
        load_config_splits(configuration.config)
    root = Path.cwd()
    seconds = {}
    for variant in order:
        runs_dir = Path(args.out) / variant
        shutil.rmtree(runs_dir, ignore_errors=True)
        seconds[variant] = TIMERS[variant](profile, runs_dir, root, args.workers)
    overhead = {v: notebook_overhead(run_notebooks(profile, Path(args.out) / v, root, v)) for v in order}
    return {
        "profile": profile.name,
        "runs": len(profile.configurations) * len(profile.seeds),
        "order": order,
        "seconds": seconds,
        "dask_over_serial": seconds["dask"] / seconds["serial"],
        "overhead": overhead,
    }


def time_serial(profile: Profile, runs_dir: Path, root: Path, workers: int | None) -> float:
    start = time.perf_counter()
    for configuration in profile.configurations:
        task = notebook_task(configuration, profile, runs_dir, root)
        # train every seed in this one kernel, as the serial runner did
        execute_here(replace(task, parameters={**task.parameters, "finished_runs_only": False}))
    for chapter in SUMMARY_CHAPTERS:
        execute_here(summary_task(chapter, profile, runs_dir, root))
    return time.perf_counter() - start


def execute_here(task: NotebookTask) -> None:
    """Execute `task` in this process; its error ends the benchmark."""
    task.output.parent.mkdir(parents=True, exist_ok=True)
    error = execute(task.root / task.template, task.output, task.parameters, task.root, progress_bar=False)
    if error is not None:
        raise RuntimeError(f"{task.describe()}: {error}")


def time_dask(profile: Profile, runs_dir: Path, root: Path, workers: int | None) -> float:
    start = time.perf_counter()
    with dask_client(workers=workers) as client:
        failures = run_sweep(client, profile, runs_dir, root, force=True)
    if failures:
        raise RuntimeError(f"{failures[0].task.describe()} failed: {failures[0].error}")
    return time.perf_counter() - start


TIMERS = {"serial": time_serial, "dask": time_dask}  # each: (profile, runs_dir, root, workers) -> seconds


def run_notebooks(profile: Profile, runs_dir: Path, root: Path, variant: str) -> list[Path]:
    """The notebooks that trained: the serial runner's configuration chapters, the Dask runs."""
    if variant == "serial":
        return [configuration_folder(root / runs_dir, c.name) / CHAPTER for c in profile.configurations]
    return [task.output for task in run_tasks(profile, runs_dir, root)]


def format_table(result: dict) -> str:
    lines = [
        f"profile {result['profile']!r}, {result['runs']} (configuration, seed) runs, order: "
        f"{' then '.join(result['order'])}",
        *(
            f"  {variant:>6}: {result['seconds'][variant]:7.0f} s   {result['overhead'][variant]}"
            for variant in result["order"]
        ),
        f"  dask / serial: {result['dask_over_serial']:.2f}",
    ]
    return "\n".join(lines)

"""`python -m mixlib bench <target>`: speed benchmarks, each registered under a name, one module each.

The benchmarks sit above the packages they time (mixing methods, CAMs, the training engine as a run
builds it), so no algorithm package imports the trainer to be measured. The command sits above the
sweep and the chapters too: two of its targets live there (`bench sweep` times the runner, and the
training cost of every configuration of a profile is the module of the chapter it feeds).

Targets are measured side by side in one process, so the printed ratios compare like with like.
"""

from __future__ import annotations

import argparse
import json
from types import ModuleType


def targets() -> dict[str, ModuleType]:
    """target name -> module with `add_arguments(parser)`, `benchmark(args) -> dict` and
    `format_table(result) -> str`.

    Imported when the command runs, not with this package: chapters import `mixlib.bench.mixing` and
    `mixlib.bench.training_cost`, which runs this file first, and a chapter must not load the sweep
    (and Dask with it).
    """
    from mixlib.bench import cams, mixing, training
    from mixlib.chapters import training_cost
    from mixlib.sweep import bench as sweep

    return {
        "cams": cams,
        "mixing": mixing,
        "sweep": sweep,
        "training": training,
        "training-cost": training_cost,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    modules = targets()
    commands = parser.add_subparsers(dest="target", required=True, metavar="{" + ",".join(modules) + "}")
    for name, module in modules.items():
        sub = commands.add_parser(name)
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        module.add_arguments(sub)
        sub.set_defaults(bench_module=module)


def run(args: argparse.Namespace) -> int:
    module = args.bench_module
    result = module.benchmark(args)
    print(json.dumps(result, indent=2) if args.json else module.format_table(result))
    return 0

"""`python -m mixlib bench <target>`: speed benchmarks, each registered under a name, one module each.

The benchmarks sit above the packages they time (mixing methods, CAMs, the training engine as a run
builds it), so no algorithm package imports the trainer to be measured.

Targets are measured side by side in one process, so the printed ratios compare like with like.
"""

from __future__ import annotations

import argparse
import importlib
import json

# target name -> module with `add_arguments(parser)`, `benchmark(args) -> dict`, `format_table(result) -> str`
TARGETS: dict[str, str] = {
    "cams": "mixlib.bench.cams",
    "mixing": "mixlib.bench.mixing",
    "sweep": "mixlib.sweep.bench",  # above the runner it times, so it lives in mixlib.sweep
    "training": "mixlib.bench.training",
    # every configuration of a profile, so above the profiles, with the chapter it feeds
    "training-cost": "mixlib.chapters.training_cost",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    targets = parser.add_subparsers(dest="target", required=True, metavar="{" + ",".join(TARGETS) + "}")
    for name, module_name in TARGETS.items():
        sub = targets.add_parser(name)
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        sub.set_defaults(bench_module=module)


def run(args: argparse.Namespace) -> int:
    module = args.bench_module
    result = module.benchmark(args)
    print(json.dumps(result, indent=2) if args.json else module.format_table(result))
    return 0

"""`python -m mixlib <command>`: each command lives in its own module with `add_arguments` and `run`.

Only the chosen command's module is imported, so `report` does not pay for the latency or benchmark
imports and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "report": ("mixlib.report.runner", "run every configuration of a profile and build the book"),
    "bench": ("mixlib.bench", "speed benchmarks that print ratios measured side by side"),
    "latency": ("mixlib.latency.cli", "model cost, measured latency and the Jetson AGX Orin projection"),
    "tune": ("mixlib.report.tuning", "the baseline's lr and weight decay from a grid, on validation only"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mixlib")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return int(args.run(args) or 0)

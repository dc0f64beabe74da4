"""`python -m mixlib <command>`: each command lives in its own module with `add_arguments` and `run`.

Only the chosen command's module is imported, so `report` does not pay for the latency or benchmark
imports and vice versa.

A bad profile, parameter or file (a ValueError or OSError) ends the command with one line on stderr
and exit status 2, like argparse's own usage errors; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

USAGE_ERROR = 2  # the exit status of argparse's usage errors, used for every bad input

COMMANDS = {
    "report": ("mixlib.sweep.runner", "run every configuration of a profile and build the book"),
    "bench": ("mixlib.bench", "speed benchmarks that print ratios measured side by side"),
    "latency": ("mixlib.latency.cli", "model cost, measured latency and the Jetson AGX Orin projection"),
    "tune": ("mixlib.profiles.tuning", "the baseline's lr and weight decay from a grid, on validation only"),
    "pilot": ("mixlib.profiles.pilot", "validation accuracy and wall time at several schedule lengths"),
    "chapters": ("mixlib.chapters.contents", "the book's templates (--notebooks) or its _toc.yml (--toc)"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mixlib")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "mixlib", *argv])  # what a result records it came from
    try:
        return int(args.run(args) or 0)
    except (ValueError, OSError) as error:
        if args.debug:
            raise
        message = " ".join(str(error).split())  # one line, whatever the message's own layout
        print(f"error: {message} (--debug shows the traceback)", file=sys.stderr)
        return USAGE_ERROR

"""The book's chapters, listed once.

`SUMMARY_CHAPTERS` is the one list: the report runner executes each chapter's template
(`notebooks/<name>.ipynb`, with its tables and figures in `mixlib/chapters/<name>.py`) over the
profile's finished runs and the book shows it as `book/generated/<name>.ipynb`, in this order; the
table of contents `_toc.yml` is written from it, and
`make test` runs every template it names (`python -m mixlib chapters --notebooks`). A new chapter is
one entry here. The configuration chapters come from the training template, one per configuration.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path("notebooks")
# one run per (configuration, seed), then each configuration's chapter over its seeds
TRAIN_TEMPLATE = TEMPLATES / "train.ipynb"
GENERATED = Path("book/generated")
TOC = Path("_toc.yml")


@dataclass(frozen=True)
class Chapter:
    name: str  # notebooks/<name>.ipynb -> book/generated/<name>.ipynb
    part: str  # the caption of the part of the book it is listed in
    # it measures time (benchmarks, latency), so the report runs it alone, after every other notebook
    timed: bool = False
    # it reads what a timed chapter measured (findings reads training_cost.json), so it runs after them
    reads_timed: bool = False
    # what it reads besides the run folders, relative to the repository root (`{runs_dir}` is the
    # profile's): the report executes it again when one of them changes (`mixlib.sweep.runner`)
    reads: tuple[str, ...] = ()
    # the stage of each run whose records it shows: "evaluation" (test metrics, predictions, CAM
    # scores) or "training" (checkpoint, history, configuration only); it is executed again when a
    # run's record of that stage changes, so re-evaluating the runs leaves a "training" chapter as it is
    run_stage: str = "evaluation"

    @property
    def template(self) -> Path:
        return TEMPLATES / f"{self.name}.ipynb"

    @property
    def module(self) -> str:
        """The chapter's module, with its tables and figures: the template imports it."""
        return f"mixlib.chapters.{self.name}"


ORIN_RESULTS = "results/orin"  # measured Jetson figures (mixlib.chapters.latency)
SUMMARY_CHAPTERS = (
    Chapter(
        "findings",
        "Findings",
        reads_timed=True,
        reads=("{runs_dir}/training_cost.json", "book/published.yml", ORIN_RESULTS),
    ),
    Chapter("results", "Results"),
    Chapter("mixing", "Results", timed=True, reads=("book/methods.yml",), run_stage="training"),
    Chapter("training_cost", "Results", timed=True, run_stage="training"),
    Chapter("cams", "Results"),
    Chapter("proxy", "Results"),
    Chapter("latency", "Results", timed=True, reads=(ORIN_RESULTS,), run_stage="training"),
)
# after the summary chapters: the configuration chapters, then the glossary the runner writes
TRAINING_RUNS_PART = "Training runs (one chapter per configuration)"
REFERENCE_PART = "Reference"
GLOSSARY = GENERATED / "glossary"


# each configuration's chapter is the training template over the configuration's finished seeds
CONFIGURATION_CHAPTER_MODULE = "mixlib.chapters.configuration"


def chapter_modules() -> list[str]:
    """Every chapter's module: the configuration chapter's, then the summary chapters' in book order."""
    return [CONFIGURATION_CHAPTER_MODULE, *(chapter.module for chapter in SUMMARY_CHAPTERS)]


def notebook_templates() -> list[Path]:
    """Every template the report executes, the training template first (the others read its runs)."""
    return [TRAIN_TEMPLATE, *(chapter.template for chapter in SUMMARY_CHAPTERS)]


def table_of_contents() -> str:
    """`_toc.yml` for Jupyter Book: the introduction, the summary chapters by part, the configuration
    chapters and the glossary."""
    parts: dict[str, list[str]] = {}
    for chapter in SUMMARY_CHAPTERS:
        parts.setdefault(chapter.part, []).append(f"file: {(GENERATED / chapter.name).as_posix()}")
    parts[TRAINING_RUNS_PART] = [f"glob: {(GENERATED / 'runs').as_posix()}/*"]
    parts[REFERENCE_PART] = [f"file: {GLOSSARY.as_posix()}"]
    lines = [
        "# Written by `python -m mixlib chapters --toc` (and by every report) from",
        "# mixlib/chapters/contents.py: edit the chapter list there, not this file.",
        "format: jb-book",
        "root: book/intro",
        "parts:",
    ]
    for caption, entries in parts.items():
        lines += [f"  - caption: {caption}", "    chapters:", *(f"      - {entry}" for entry in entries)]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shown = parser.add_mutually_exclusive_group(required=True)
    shown.add_argument("--notebooks", action="store_true", help="the template paths, one a line")
    shown.add_argument("--toc", action="store_true", help="the table of contents, as _toc.yml holds it")


def run(args: argparse.Namespace) -> int:
    notebooks = "".join(f"{path}\n" for path in notebook_templates())
    sys.stdout.write(notebooks if args.notebooks else table_of_contents())
    return 0

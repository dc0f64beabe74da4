"""`python -m mixlib report`: run every configuration of a profile through papermill, build the book.

Layout (all relative to the repository root, the working directory):
- `runs/<profile>/<configuration>/seed<k>/`: one training run (checkpoint, history, metrics, logs);
- `runs/<profile>/<configuration>/chapter.ipynb` + `chapter.json`: the executed template and the
  fingerprint (parameters, seeds, code, template) it was made with; an unchanged one is not rerun;
- `book/generated/`: what the book shows for this profile (chapters, summary pages, glossary),
  rewritten on every call; `_build/html/`: the built book.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill

from mixlib.config import code_version, fingerprint
from mixlib.files import atomic_write_json, read_json, read_or_set_aside
from mixlib.report.glossary import write_glossary_page
from mixlib.report.profiles import Configuration, Profile, available_profiles, load_profile

TRAIN_TEMPLATE = Path("notebooks/train.ipynb")
# summary chapters, run after every configuration has trained: notebooks/<name>.ipynb is executed into
# book/generated/<name>.ipynb with the profile's parameters
SUMMARY_TEMPLATES = ("findings", "results", "mixing", "cams", "proxy", "latency")
GENERATED = Path("book/generated")
GLOSSARY_DATA = Path("book/glossary.yml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="quick", help=f"profile name ({', '.join(available_profiles())}) or a .yml path"
    )
    parser.add_argument("--data-root", default=None, help="dataset folder, overrides the profile's data_root")
    parser.add_argument("--runs-dir", default=None, help="where run folders go (default runs/<profile>)")
    parser.add_argument("--force", action="store_true", help="rerun configurations even if unchanged")
    parser.add_argument("--no-build", action="store_true", help="run the notebooks but do not build the book")


@dataclass
class Failure:
    name: str
    output: Path
    error: str


def run(args: argparse.Namespace) -> int:
    root = Path.cwd()
    if not (root / "_config.yml").is_file() or not (root / TRAIN_TEMPLATE).is_file():
        raise FileNotFoundError(
            "run `python -m mixlib report` from the repository root (where _config.yml is)"
        )
    profile = load_profile(args.profile, args.data_root)
    runs_dir = Path(args.runs_dir or Path("runs") / profile.name)
    start = time.perf_counter()
    failures = run_configurations(profile, runs_dir, args.force)
    if failures:
        for failure in failures:
            print(
                f"FAILED configuration {failure.name!r}: {failure.error}\n  notebook: {failure.output}",
                file=sys.stderr,
            )
        print(
            f"{len(failures)} of {len(profile.configurations)} configuration(s) failed; book not built. "
            "Finished configurations are kept and will not rerun.",
            file=sys.stderr,
        )
        return 1
    write_book_sources(profile, runs_dir)
    if not args.no_build:
        build_book(root)
    print(
        f"report for profile {profile.name!r} done in {time.perf_counter() - start:.0f} s: "
        f"{root / '_build' / 'html' / 'index.html'}"
    )
    return 0


def run_configurations(profile: Profile, runs_dir: Path, force: bool) -> list[Failure]:
    failures = []
    for number, configuration in enumerate(profile.configurations, start=1):
        label = f"[{number}/{len(profile.configurations)}] {configuration.name}"
        folder = runs_dir / configuration.name
        key = chapter_fingerprint(configuration, profile.seeds, runs_dir)
        if not force and read_fingerprint(folder) == key:
            print(f"{label}: unchanged, reusing {folder / 'chapter.ipynb'}")
            continue
        print(f"{label}: running {TRAIN_TEMPLATE} ({len(profile.seeds)} seed(s))", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        error = execute(
            TRAIN_TEMPLATE, folder / "chapter.ipynb", train_parameters(configuration, profile, runs_dir)
        )
        if error:
            failures.append(Failure(configuration.name, folder / "chapter.ipynb", error))
        else:
            atomic_write_json(folder / "chapter.json", {"fingerprint": key})
    return failures


def train_parameters(configuration: Configuration, profile: Profile, runs_dir: Path) -> dict:
    parameters = {k: v for k, v in configuration.parameters().items() if k != "seed"}
    return {
        **parameters,
        "config_name": configuration.name,
        "runs_dir": str(runs_dir),
        "seeds": list(profile.seeds),
    }


def chapter_fingerprint(configuration: Configuration, seeds: tuple[int, ...], runs_dir: Path) -> str:
    template = hashlib.sha256(TRAIN_TEMPLATE.read_bytes()).hexdigest()
    return fingerprint(
        {
            "parameters": configuration.parameters(),
            "seeds": list(seeds),
            "runs_dir": str(runs_dir),
            "code": code_version(),
            "template": template,
        }
    )


def read_fingerprint(folder: Path) -> str | None:
    path = folder / "chapter.json"
    if not (path.is_file() and (folder / "chapter.ipynb").is_file()):
        return None
    record = read_or_set_aside(path, read_json, "the configuration runs again")
    return record.get("fingerprint") if isinstance(record, dict) else None


def execute(template: Path, output: Path, parameters: dict) -> str | None:
    """Run one template with papermill; returns an error summary, or None on success."""
    try:
        papermill.execute_notebook(
            str(template), str(output), parameters=parameters, cwd=str(Path.cwd()), progress_bar=True
        )
    except papermill.PapermillExecutionError as error:
        return f"{error.ename}: {error.evalue}"
    return None


# --------------------------------------------------------------------------- book sources


def write_book_sources(profile: Profile, runs_dir: Path) -> None:
    """Rewrite book/generated/ for this profile: chapters, summary pages and the glossary."""
    shutil.rmtree(GENERATED, ignore_errors=True)
    (GENERATED / "runs").mkdir(parents=True)
    for number, configuration in enumerate(profile.configurations, start=1):
        notebook = nbformat.read(runs_dir / configuration.name / "chapter.ipynb", as_version=4)
        set_title(notebook, configuration, profile)
        hide_injected_parameters(notebook)
        nbformat.write(notebook, GENERATED / "runs" / f"{number:02d}-{configuration.name}.ipynb")
    summary = {
        "profile_name": profile.name,
        "profile_title": profile.title,
        "profile_description": profile.description,
        "runs_dir": str(runs_dir),
        "configurations": [c.name for c in profile.configurations],
        "seeds": list(profile.seeds),
    }
    for name in SUMMARY_TEMPLATES:
        print(f"summary chapter {name}", flush=True)
        output = GENERATED / f"{name}.ipynb"
        error = execute(Path("notebooks") / f"{name}.ipynb", output, summary)
        if error:
            raise SystemExit(f"summary notebook {name!r} failed: {error}")
        notebook = nbformat.read(output, as_version=4)
        hide_injected_parameters(notebook)
        nbformat.write(notebook, output)
    write_glossary_page(GLOSSARY_DATA, GENERATED / "glossary.md")


def set_title(notebook: nbformat.NotebookNode, configuration: Configuration, profile: Profile) -> None:
    """The template's first cell is its heading; a chapter is titled by its configuration."""
    first = notebook.cells[0]
    first.source = (
        f"# {configuration.title}\n\nConfiguration `{configuration.name}` of the `{profile.name}` profile "
        f"({profile.title}); {len(profile.seeds)} seed(s): {', '.join(map(str, profile.seeds))}."
    )


def hide_injected_parameters(notebook: nbformat.NotebookNode) -> None:
    """papermill's injected cell documents the run in the .ipynb; the book shows a parameter table instead."""
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")


def build_book(root: Path) -> None:
    """`jupyter-book build` with warnings as errors; the notebooks are already executed."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(root), "--builder", "html", "-W", "-n", "--keep-going"]
    print("building the book:", " ".join(command), flush=True)
    subprocess.run(command, check=True)

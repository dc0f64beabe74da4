"""The report redoes only what an edit invalidates: `python -m mixlib report` run three times on a copy of
the repository whose package is edited between reports, with a profile of two methods (the smoke
profile's data and length). The report runs in a subprocess with the copy first on PYTHONPATH, so the
runner, its Dask workers and their kernels all import the edited package. After a first report from
scratch:

- the repository moved to another folder, a docstring and comment edit in `mixing/` and a code edit of
  one chapter module: no run trained or evaluated, no run notebook executed, that chapter alone executed;
- a code edit of MixUp's module together with one of the evaluation: MixUp's run trained again, the
  baseline's evaluated again from its checkpoint, which stays byte-identical.
Edits are paired so that the test needs three reports, not five (each report executes the timed
chapters again, about a minute on two cores).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import copy_from_repository

COPIED = ("mixlib", "notebooks", "book", "results", "_config.yml")
PROFILE = """name: reuse
title: Two methods, one seed
description: The smoke profile's data and length with MixUp beside the baseline.
seeds: [0]
defaults: {dataset: synthetic, images_per_class: 8, val_per_class: 4, test_per_class: 4, image_size: 32,
           epochs: 1, batch_size: 16, warmup_epochs: 0}
configurations:
  - name: baseline
    method: none
  - name: mixup
    method: mixup
chapters:
  mixing: {benchmark_repeats: 1, benchmark_step_repeats: 1, benchmark_batch_size: 16,
           benchmark_image_size: 32}
  training_cost: {rounds: 2}
  latency: {reference_models: [], measure_here: false}
"""
OUTCOME = re.compile(
    r"report for profile 'reuse': trained (\d+), re-evaluated (\d+) and reused (\d+) run\(s\); "
    r"executed (\d+) notebook\(s\), kept (\d+) unchanged"
)
ADDED_CODE = "\n\n_EDITED_FOR_A_TEST = True\n"


def report(root: Path) -> tuple[tuple[int, int, int], dict[Path, int]]:
    """(trained, re-evaluated, reused) and each executed notebook's modification time."""
    environment = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-m", "mixlib", "report", "--profile", str(root / "reuse.yml"), "--no-build"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (outcome,) = OUTCOME.findall(result.stdout)
    notebooks = {path: path.stat().st_mtime_ns for path in (root / "runs" / "reuse").rglob("*.ipynb")}
    return tuple(int(count) for count in outcome[:3]), notebooks


def executed(before: dict[Path, int], after: dict[Path, int], root: Path) -> set[str]:
    """The notebooks written since `before`, relative to the profile's runs folder."""
    runs = root / "runs" / "reuse"
    return {str(path.relative_to(runs)) for path, stamp in after.items() if before.get(path) != stamp}


def checkpoints(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((root / "runs" / "reuse").rglob("checkpoint.pt"))
    }


def edit(path: Path, old: str, new: str) -> None:
    source = path.read_text()
    assert old in source, f"{path} no longer holds {old!r}: choose another edit"
    path.write_text(source.replace(old, new, 1))


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_from_repository(COPIED, tmp_path_factory.mktemp("edited-repository"))
    (root / "reuse.yml").write_text(PROFILE)
    return root


@pytest.mark.slow
def test_each_edit_redoes_only_the_stages_that_execute_the_edited_code(copy):
    runs, first = report(copy)
    assert runs == (2, 0, 0)
    # the keys name no absolute path: the repository moved elsewhere keeps them
    moved = copy.with_name("moved-repository")
    shutil.copytree(copy, moved, symlinks=True)
    first = {moved / path.relative_to(copy): stamp for path, stamp in first.items()}
    copy = moved

    mixup = copy / "mixlib" / "mixing" / "mixup.py"
    edit(mixup, '"""', '"""A reworded docstring. ')
    edit(mixup, "\nfrom torch import Tensor", "\n# a comment added for a test\nfrom torch import Tensor")
    chapter = copy / "mixlib" / "chapters" / "proxy.py"
    chapter.write_text(chapter.read_text() + ADDED_CODE)
    runs, second = report(copy)
    assert runs == (0, 0, 2)
    assert executed(first, second, copy) == {"summaries/proxy.ipynb"}

    before = checkpoints(copy)
    mixup.write_text(mixup.read_text() + ADDED_CODE)
    evaluation = copy / "mixlib" / "evaluation.py"
    evaluation.write_text(evaluation.read_text() + ADDED_CODE)
    runs, third = report(copy)
    assert runs == (1, 1, 0)  # MixUp's run trained (and evaluated), the baseline's evaluated again
    assert "mixup/seed0/train.ipynb" in executed(second, third, copy)
    after = checkpoints(copy)
    assert {path for path in before if before[path] != after[path]} == {
        "runs/reuse/mixup/seed0/checkpoint.pt"
    }

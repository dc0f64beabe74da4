"""The chapter list is the one place a chapter is named: the templates, the table of contents, the
chapter modules and `make test` all follow it."""

from __future__ import annotations

import importlib
from pathlib import Path

from mixlib.chapters.contents import (
    SUMMARY_CHAPTERS,
    TOC,
    TRAIN_TEMPLATE,
    chapter_modules,
    notebook_templates,
    table_of_contents,
)
from mixlib.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]


def test_every_template_is_a_listed_chapter_and_every_chapter_has_a_template():
    templates = {path.relative_to(REPOSITORY) for path in (REPOSITORY / "notebooks").glob("*.ipynb")}
    assert set(notebook_templates()) == templates
    assert notebook_templates()[0] == TRAIN_TEMPLATE  # the others read the runs it makes


def test_every_chapter_has_its_module_and_its_template_imports_it():
    for module, template in zip(chapter_modules(), notebook_templates(), strict=True):
        importlib.import_module(module)
        package, name = module.rsplit(".", 1)
        assert f"from {package} import {name}" in (REPOSITORY / template).read_text(), template


def test_the_training_cost_is_timed_and_the_findings_read_it():
    timed = {chapter.name for chapter in SUMMARY_CHAPTERS if chapter.timed}
    assert "training_cost" in timed  # it writes training_cost.json, which the findings read
    assert {chapter.name for chapter in SUMMARY_CHAPTERS if chapter.reads_timed} == {"findings"}


def test_the_committed_table_of_contents_is_the_generated_one():
    assert (REPOSITORY / TOC).read_text() == table_of_contents()
    for chapter in SUMMARY_CHAPTERS:
        assert f"      - file: book/generated/{chapter.name}\n" in table_of_contents()


def test_make_test_runs_the_listed_templates():
    makefile = (REPOSITORY / "Makefile").read_text()
    assert "NOTEBOOKS = $(shell $(PY) -m mixlib chapters --notebooks)" in makefile
    assert "$(PY) -m pytest tests $(NOTEBOOKS)" in makefile
    assert "notebooks/results.ipynb" not in makefile  # the list is not written out a second time


def test_the_chapters_command_prints_the_list(capsys):
    assert main(["chapters", "--notebooks"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(path) for path in notebook_templates()]
    assert main(["chapters", "--toc"]) == 0
    assert capsys.readouterr().out == table_of_contents()

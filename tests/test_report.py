"""End-to-end: the whole report on the `smoke` profile, built once per session into a scratch copy of
the book sources (the `built` fixture of conftest.py, which tests/test_browser.py reads too)."""

import os
import re
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
import torch

from mixlib.chapters.contents import SUMMARY_CHAPTERS, TOC, table_of_contents
from mixlib.cli import main
from mixlib.profiles import load_profile
from mixlib.runs import RunFolder, run_folder, train_run
from mixlib.runs.folder import METRICS
from mixlib.sweep import runner
from mixlib.sweep.cluster import plan_workers
from mixlib.training import CHECKPOINT, HISTORY


@pytest.mark.slow
def test_smoke_report_builds_every_page(built):
    html = built / "_build" / "html"
    assert (html / "index.html").is_file()
    for chapter in SUMMARY_CHAPTERS:  # every chapter of the one list, built from the table of contents
        assert (html / "book" / "generated" / f"{chapter.name}.html").is_file(), chapter.name
    assert (built / TOC).read_text() == table_of_contents()
    assert (html / "book" / "generated" / "glossary.html").is_file()
    chapters = sorted((html / "book" / "generated" / "runs").glob("*.html"))
    assert [c.stem for c in chapters] == ["01-baseline", "02-label-smoothing"]
    page = chapters[0].read_text()
    assert re.search(r"<h1>baseline\b", page), "the chapter is titled by its configuration"
    assert "2 seed(s): 0, 1" in page
    assert page.count("<img") >= 3  # learning curves, confusion matrix, CAM grid
    results = (html / "book" / "generated" / "results.html").read_text()
    assert "label-smoothing" in results and "± " in results


@pytest.mark.slow
def test_the_findings_page_opens_with_its_figure_and_the_profile_story_is_told_once(built):
    generated = built / "_build" / "html" / "book" / "generated"
    description = " ".join(load_profile("smoke").description.split()[:8])
    pages = {page.name: page.read_text() for page in generated.rglob("*.html")}
    assert [name for name, text in pages.items() if description in text] == ["findings.html"]
    findings = pages["findings.html"]
    assert findings.index("<img") < findings.index(description)


@pytest.mark.slow
def test_no_page_of_the_book_shows_stderr(built):
    """A warning printed while a page executed (tqdm's missing-IProgress notice did) reaches the book."""
    pages = sorted((built / "book" / "generated").rglob("*.ipynb"))
    assert len(pages) > len(SUMMARY_CHAPTERS)  # the summaries and the configuration chapters
    for page in pages:
        for cell in nbformat.read(page, as_version=4).cells:
            streams = [o for o in cell.get("outputs", []) if o.get("name") == "stderr"]
            assert not streams, (page.name, streams)


def papermill_span(path: Path) -> tuple[datetime, datetime]:
    """When papermill started and ended the executed notebook at `path`."""
    times = nbformat.read(path, as_version=4).metadata["papermill"]
    return datetime.fromisoformat(times["start_time"]), datetime.fromisoformat(times["end_time"])


@pytest.mark.slow
def test_each_notebook_starts_after_what_it_reads_and_timed_chapters_run_alone(built):
    runs_dir = built / "runs" / "smoke"
    profile = load_profile("smoke")
    runs = {
        c.name: [
            papermill_span(run_folder(runs_dir, c.name, seed).path / "train.ipynb") for seed in profile.seeds
        ]
        for c in profile.configurations
    }
    last_run = max(end for spans in runs.values() for _, end in spans)
    chapters = {c.name: papermill_span(runs_dir / c.name / "chapter.ipynb") for c in profile.configurations}
    for name, (start, _) in chapters.items():
        assert start >= max(end for _, end in runs[name]), name
    summaries = {c: papermill_span(runs_dir / "summaries" / f"{c.name}.ipynb") for c in SUMMARY_CHAPTERS}
    untimed = [span for chapter, span in summaries.items() if not chapter.timed and not chapter.reads_timed]
    assert all(start >= last_run for start, _ in untimed)
    others = [span for spans in runs.values() for span in spans] + list(chapters.values()) + untimed
    timed = sorted(span for chapter, span in summaries.items() if chapter.timed)
    assert len(timed) >= 2  # so that the check below compares timed chapters with each other too
    for start, end in timed:
        assert all(start >= other_end for _, other_end in others)
        others.append((start, end))
    readers = [span for chapter, span in summaries.items() if chapter.reads_timed]
    assert readers  # the findings read the training cost: they start once every timed chapter has ended
    assert all(start >= max(end for _, end in timed) for start, _ in readers)
    assert (runs_dir / "training_cost.json").is_file()


@pytest.mark.slow
def test_two_workers_give_the_metrics_of_the_serial_run(built, tmp_path):
    profile = load_profile("smoke")
    threads = plan_workers(len(os.sched_getaffinity(0)), 0, workers=2)[0].threads
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # as in each worker's kernels: CAM scores depend on the thread count
    try:
        for configuration in profile.configurations:
            for seed in profile.seeds:
                run_dir = run_folder(built / "runs" / "smoke", configuration.name, seed).path
                assert (run_dir / "train.ipynb").is_file()  # every run keeps its executed notebook
                on_dask = RunFolder(run_dir).read_metrics()
                config = configuration.config.replace(seed=seed)
                serial = train_run(
                    config, tmp_path / configuration.name / run_dir.name, progress=False
                ).metrics
                assert on_dask["threads"] == threads
                assert on_dask.pop("epoch_seconds") > 0 and serial.pop("epoch_seconds") > 0
                # same weights, but each checkpoint's history holds its own epoch times: other bytes
                assert on_dask.pop("evaluation_fingerprint") != serial.pop("evaluation_fingerprint")
                assert on_dask == serial, (configuration.name, seed)
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_failing_configuration_is_named_and_exits_non_zero(built, tmp_path, capsys):
    data = tmp_path / "too-small"
    for split in ("train", "test"):
        (data / split / "only").mkdir(parents=True)
    profile = tmp_path / "broken.yml"
    profile.write_text(
        "name: broken\nseeds: [0]\ndefaults: {epochs: 1, image_size: 32}\nconfigurations:\n"
        "  - name: fine\n    images_per_class: 4\n    val_per_class: 2\n    test_per_class: 2\n"
        f"  - name: no-images\n    dataset: imagefolder\n    data_root: {data}\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(built)
        assert main(["report", "--profile", str(profile)]) == 1
        err = capsys.readouterr().err
        notebook = built / "runs" / "broken" / "no-images" / "seed0" / "train.ipynb"
        assert "FAILED configuration 'no-images', seed 0: " in err and "'only' (0)" in err  # the class folder
        assert f"notebook: {notebook}" in err and notebook.is_file()
        assert (built / "runs" / "broken" / "fine" / "chapter.json").is_file()  # finished work is kept
        assert not (built / "runs" / "broken" / "no-images" / "chapter.ipynb").exists()
        assert not (built / "runs" / "broken" / "summaries").exists()  # they read every run
        assert "\n1 notebook(s) failed" in err  # the chapters that read the failed run are not counted
        assert main(["report", "--profile", str(profile), "--no-build"]) == 1  # and not rerun
    captured = capsys.readouterr()
    assert "2 run(s): 1 to train, 0 to re-evaluate, 1 reused; 1 run notebook(s) to execute" in captured.out
    assert "FAILED configuration 'no-images', seed 0: " in captured.err


@pytest.mark.slow
def test_damaged_records_of_finished_runs_recover_on_the_next_report(built, capsys):
    """A truncated metrics.json, checkpoint.pt or history.csv is set aside and its run resumed or
    retrained, with the metrics it had. The summary chapters (rerun on every report, and slow) are
    left out: the configuration chapters, which load every run, read the recovered ones."""
    runs_dir = built / "runs" / "smoke"
    damaged = {("baseline", 0): METRICS, ("baseline", 1): CHECKPOINT, ("label-smoothing", 0): HISTORY}
    folders = {key: run_folder(runs_dir, *key) for key in damaged}
    before = {key: folder.read_metrics() for key, folder in folders.items()}
    capsys.readouterr()
    for key, record in damaged.items():
        path = folders[key].path / record
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.MonkeyPatch.context() as patch, pytest.warns(UserWarning, match="is damaged") as caught:
        patch.chdir(built)
        patch.setattr(runner, "SUMMARY_CHAPTERS", ())
        assert main(["report", "--profile", "smoke", "--workers", "2", "--no-build"]) == 0
    captured = capsys.readouterr()
    # damaged metrics: evaluated again; a damaged checkpoint or history: trained (or resumed) again
    assert "4 run(s): 2 to train, 1 to re-evaluate, 1 reused; 3 run notebook(s) to execute" in captured.out
    last_line = captured.out.rstrip().splitlines()[-1]
    assert last_line.endswith("book sources written to book/generated/ (book not built)")
    warned = " ".join(str(warning.message) for warning in caught)
    for key, record in damaged.items():
        folder = folders[key]
        assert f"{folder.path / record} is damaged" in warned  # the warning names the run
        assert len(list(folder.path.glob(f"{record}.damaged-*"))) == 1
        after = folder.read_metrics()
        if record == CHECKPOINT:  # one epoch: trained again from scratch, to the same weights (the new
            # checkpoint's history holds new epoch times, so its bytes and the evaluation key differ)
            for changed in ("epoch_seconds", "evaluation_fingerprint"):
                after.pop(changed), before[key].pop(changed)
        assert after == before[key], key
    assert len(list((folders["baseline", 0].path / "tensorboard").iterdir())) == 1  # nothing trained again

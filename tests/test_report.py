"""End-to-end: the whole report on the `smoke` profile, built into a scratch copy of the book sources."""

import shutil
from pathlib import Path

import pytest

from mixlib.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book", "notebooks")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    for name in BOOK_SOURCES:
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("generated"))
        else:
            shutil.copy(source, root / name)
    # `make install` leaves a virtual environment in the repository root; its packages' own Markdown
    # must not reach the book (the build runs with -W, so one warning there fails it).
    stray = root / ".venv" / "lib" / "site-packages" / "package" / "README.md"
    stray.parent.mkdir(parents=True)
    stray.write_text("### A heading that starts at H3\n")
    return root


@pytest.fixture(scope="module")
def built(workspace):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        assert main(["report", "--profile", "smoke"]) == 0
    return workspace


@pytest.mark.slow
def test_smoke_report_builds_every_page(built):
    html = built / "_build" / "html"
    assert (html / "index.html").is_file()
    assert (html / "book" / "generated" / "results.html").is_file()
    assert (html / "book" / "generated" / "glossary.html").is_file()
    chapters = sorted((html / "book" / "generated" / "runs").glob("*.html"))
    assert [c.stem for c in chapters] == ["01-baseline", "02-label-smoothing"]
    page = chapters[0].read_text()
    assert "Baseline" not in page or "baseline" in page
    assert page.count("<img") >= 3  # learning curves, confusion matrix, CAM grid
    results = (html / "book" / "generated" / "results.html").read_text()
    assert "label-smoothing" in results and "± " in results


@pytest.mark.slow
def test_unchanged_configurations_are_not_rerun(built, capsys):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(built)
        assert main(["report", "--profile", "smoke", "--no-build"]) == 0
    out = capsys.readouterr().out
    assert out.count("unchanged, reusing") == 2


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
        assert "FAILED configuration 'no-images'" in err and "'only' (0)" in err  # the class folder
        assert (built / "runs" / "broken" / "fine" / "chapter.json").is_file()  # finished work is kept
        assert main(["report", "--profile", str(profile), "--no-build"]) == 1  # and not rerun
    captured = capsys.readouterr()
    assert "[1/2] fine: unchanged, reusing" in captured.out
    assert "FAILED configuration 'no-images'" in captured.err

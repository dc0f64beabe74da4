"""The smoke book read in headless Chromium, offline, as a reader opens it from the file system: every
page loads without a console error, typesets every formula, keeps its tables and figures in the text
column, loads its images and links only to pages and anchors that exist (`mixlib.chapters.browser`).

Each check is shown to fail for real on a page of the same book with one defect put in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mixlib.chapters.browser import check_book

FINDINGS = Path("book") / "generated" / "findings.html"
ARTICLE = '<article class="bd-article">'  # the text column of sphinx-book-theme
# one defect each, put in at the top of the page's article, and the problem the check must report for it
DEFECTS = {
    "raw LaTeX": (
        r"<p>The box side is (\sqrt{1-\lambda}) of the image side.</p>",
        "raw LaTeX command \\sqrt",
    ),
    "wide table": (
        "<table><tr>" + "<td>a-wide-cell-of-numbers</td>" * 40 + "</tr></table>",
        "at 1280 px: table",
    ),
    "broken image": (
        '<img src="no-such-figure.png" alt="a figure">',
        "image does not load: no-such-figure.png",
    ),
    "broken link": ('<a href="no-such-page.html">a chapter</a>', "link to a missing file"),
    "broken anchor": ('<a href="results.html#no-such-section">a section</a>', "link to a missing anchor"),
    "console error": ("<script>console.error('a script failed')</script>", "console: "),
}


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser-screenshots")


@pytest.fixture(scope="session")
def reports(built: Path, screenshots: Path) -> dict:
    return {report.page: report for report in check_book(built / "_build" / "html", screenshots)}


@pytest.mark.slow
def test_every_page_of_the_smoke_book_reads_cleanly_offline(reports):
    problems = {page: report.problems for page, report in reports.items() if report.problems}
    assert not problems, "\n".join(
        f"{page} (screenshot: {reports[page].screenshot}):\n  " + "\n  ".join(found)
        for page, found in problems.items()
    )


@pytest.mark.slow
def test_every_page_was_opened_and_the_findings_page_has_a_screenshot(reports, built):
    chapters = {
        p.relative_to(built / "_build" / "html").as_posix() for p in built.glob("_build/html/**/*.html")
    }
    assert set(reports) == {c for c in chapters if not c.startswith("_static")}
    screenshot = reports[FINDINGS.as_posix()].screenshot
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def book_copy(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built book, copied so that defective pages can be added to it."""
    return Path(shutil.copytree(built / "_build" / "html", tmp_path_factory.mktemp("defects") / "html"))


@pytest.mark.slow
@pytest.mark.parametrize("defect", DEFECTS)
def test_each_check_fails_on_a_page_with_that_defect(book_copy, defect):
    markup, problem = DEFECTS[defect]
    page = book_copy / FINDINGS.with_name(f"defect-{defect.replace(' ', '-')}.html")
    page.write_text((book_copy / FINDINGS).read_text().replace(ARTICLE, ARTICLE + markup, 1))
    (report,) = check_book(book_copy, pages=[page])
    assert any(found.startswith(problem) for found in report.problems), report.problems


@pytest.mark.slow
def test_formulas_from_a_network_fail_offline(book_copy):
    """The issue's first symptom: MathJax from a CDN leaves every formula as raw LaTeX offline."""
    page = book_copy / FINDINGS.with_name("defect-mathjax-from-a-cdn.html")
    cams = (book_copy / FINDINGS.with_name("cams.html")).read_text()
    page.write_text(
        cams.replace("../../_static/mathjax/tex-chtml.js", "https://cdn.example.org/mathjax/tex-chtml.js")
    )
    (report,) = check_book(book_copy, pages=[page])
    assert "fetched from a network: https://cdn.example.org/mathjax/tex-chtml.js" in report.problems
    assert any(found.startswith("raw LaTeX \\(") for found in report.problems)
    assert any(found.startswith("formula not typeset") for found in report.problems)

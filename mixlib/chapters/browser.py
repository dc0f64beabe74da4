"""Read a built book in a real browser, as a reader opens it from the file system without network, and
list what a reader would stumble on: console errors, resources fetched from a network, formulas left as
raw LaTeX, tables or figures wider than the text column (at 1280 px) or cut off instead of scrolling (at
a 390 px phone width), images that do not load and internal links that lead nowhere.

Driven by Selenium with Debian's `chromium` and `chromium-driver` (`make browser` installs them); the
browser resolves no host name at all, so a page that needs the network fails here as it would offline.

    python -m mixlib.chapters.browser _build/html --screenshots _build/browser
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

DESKTOP_WIDTH = 1280
PHONE_WIDTH = 390
WINDOW_HEIGHT = 900
MATHJAX_TIMEOUT_S = 30
# pixels a box may exceed its column by: sub-pixel layout rounds either way
TOLERANCE_PX = 1
# Debian's flags for a quiet headless Chromium: without the background-networking ones it keeps trying
# to reach Google's services, and every refused connection is noise in the log
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # every host name fails to resolve: the book must work offline, and a page that fetches anything
    # from a network logs a console error
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

CHECKS = (Path(__file__).with_name("browser_checks.js")).read_text()
# resolves once MathJax has typeset the page (Selenium's asynchronous scripts get a callback last)
MATHJAX_DONE = """
const done = arguments[arguments.length - 1];
const startup = window.MathJax && window.MathJax.startup;
if (!startup || !startup.promise) { done("no MathJax"); return; }
startup.promise.then(() => done("typeset"), (error) => done("failed: " + error));
"""


@dataclass
class PageReport:
    """What was wrong with one page, and where its screenshot is."""

    page: str
    problems: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def pages_of(html_dir: Path) -> list[Path]:
    """Every HTML page of a built book (the theme's own assets aside)."""
    return sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.relative_to(html_dir).parts)


def chromium_options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise RuntimeError(
            "no chromium on PATH: `make browser` installs Debian's chromium and chromium-driver"
        )
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@contextmanager
def chromium(profile_dir: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a new empty profile in `profile_dir`, driven by the system's driver
    (Selenium would otherwise try to download one)."""
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        raise RuntimeError("no chromedriver on PATH: `make browser` installs Debian's chromium-driver")
    options = chromium_options()
    options.add_argument(f"--user-data-dir={profile_dir}")
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_script_timeout(MATHJAX_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The console errors logged since the last call (reading the log empties it)."""
    return [
        f"console: {entry['message']}" for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
    ]


def open_page(driver: webdriver.Chrome, page: Path, width: int) -> list[str]:
    """Load `page` at `width` px, wait for it and for MathJax; problems of loading and typesetting."""
    driver.set_window_size(width, WINDOW_HEIGHT)
    driver.get(page.as_uri())
    WebDriverWait(driver, MATHJAX_TIMEOUT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    typeset = driver.execute_async_script(MATHJAX_DONE)
    has_math = driver.execute_script("return document.querySelector('.math') !== null")
    problems = [f"MathJax: {typeset}"] if has_math and typeset != "typeset" else []
    return problems + console_errors(driver)


def run_check(driver: webdriver.Chrome, call: str) -> Any:
    """A function of browser_checks.js, called in the page that is open: its JSON result."""
    return driver.execute_script(f"{CHECKS}\nreturn {call};")


def save_screenshot(driver: webdriver.Chrome, path: Path) -> Path:
    """The whole page, not only the window: the window grows to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(DESKTOP_WIDTH, min(max(height, WINDOW_HEIGHT), 16000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def check_page(driver: webdriver.Chrome, page: Path, screenshot: Path | None) -> tuple[PageReport, dict]:
    """Every check of one page at the desktop and the phone width; the page's ids and links as well,
    for the link check that needs every page."""
    report = PageReport(page.name)
    report.problems += open_page(driver, page, DESKTOP_WIDTH)
    for check in ("rawLatex()", "brokenImages()", "networkResources()"):
        report.problems += run_check(driver, check)
    report.problems += [f"at {DESKTOP_WIDTH} px: {p}" for p in run_check(driver, f"tooWide({TOLERANCE_PX})")]
    facts = run_check(driver, "pageFacts()")
    if screenshot is not None:
        report.screenshot = save_screenshot(driver, screenshot)
    report.problems += open_page(driver, page, PHONE_WIDTH)
    report.problems += run_check(driver, f"cutOff({TOLERANCE_PX})")
    return report, facts


def ids_in_file(page: Path) -> set[str]:
    """The ids of a page that was not opened, from its HTML (a link's anchor is one of them)."""
    return set(re.findall(r'\bid="([^"]+)"', page.read_text(errors="replace")))


def broken_links(links: list[str], ids: dict[Path, set[str]]) -> list[str]:
    """Links to a file of the book that is missing, or to an anchor that its page does not have."""
    problems = []
    for link in links:
        parts = urlsplit(link)
        if parts.scheme != "file":
            continue  # an external link is the reader's to follow; nothing is fetched at reading time
        target = Path(unquote(parts.path))
        if not target.exists():
            problems.append(f"link to a missing file: {link}")
            continue
        if parts.fragment and target.suffix == ".html":
            anchors = ids[target] if target in ids else ids.setdefault(target, ids_in_file(target))
            if unquote(parts.fragment) not in anchors:
                problems.append(f"link to a missing anchor: {link}")
    return problems


def check_book(
    html_dir: str | Path, screenshots: str | Path | None = None, pages: list[Path] | None = None
) -> list[PageReport]:
    """Check every page of the book built in `html_dir` (or only `pages` of it); with `screenshots`,
    save each page there as `<page path with / as ->.png`, at the desktop width."""
    html_dir = Path(html_dir).resolve()
    pages = [Path(p).resolve() for p in pages] if pages else pages_of(html_dir)
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {html_dir}")
    reports, ids, links = [], {}, {}
    with (
        tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
        chromium(Path(profile)) as driver,
    ):
        for page in pages:
            name = page.relative_to(html_dir).with_suffix(".png").as_posix().replace("/", "-")
            report, facts = check_page(driver, page, Path(screenshots) / name if screenshots else None)
            report.page = page.relative_to(html_dir).as_posix()
            reports.append(report)
            ids[page], links[page] = set(facts["ids"]), facts["links"]
    for report, page in zip(reports, pages, strict=True):
        report.problems += broken_links(links[page], ids)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "html_dir", nargs="?", default="_build/html", help="the built book (default: %(default)s)"
    )
    parser.add_argument("--screenshots", help="folder for a full-page PNG of every page")
    args = parser.parse_args(argv)
    reports = check_book(args.html_dir, args.screenshots)
    for report in reports:
        print(f"{report.page}: {len(report.problems) or 'ok'}")
        for problem in report.problems:
            print(f"  {problem}")
    return 1 if any(report.problems for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Plain `pytest` (an editor's test runner) and `python -m pytest` collect the same tests: the second
puts the working directory on the path, the first does not, so a test that imported `tests.<module>`
was collected only by the second."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPOSITORY


def collect(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*command, "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collected(process: subprocess.Popen) -> list[str]:
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return [line for line in stdout.splitlines() if "::" in line]


@pytest.mark.slow
def test_plain_pytest_and_python_m_pytest_collect_the_same_tests():
    # both at once: each spends most of its time importing the test modules, on a core of its own
    plain = collect([str(Path(sys.executable).with_name("pytest"))])
    as_module = collect([sys.executable, "-m", "pytest"])
    plain, as_module = collected(plain), collected(as_module)
    assert len(plain) > 500
    assert plain == as_module

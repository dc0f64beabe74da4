"""Plain `pytest` (an editor's test runner) and `python -m pytest` collect the same tests: the second
puts the working directory on the path, the first does not, so a test that imported `tests.<module>`
was collected only by the second."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPOSITORY


def collected(command: list[str]) -> list[str]:
    result = subprocess.run(
        [*command, "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.mark.slow
def test_plain_pytest_and_python_m_pytest_collect_the_same_tests():
    plain = collected([str(Path(sys.executable).with_name("pytest"))])
    as_module = collected([sys.executable, "-m", "pytest"])
    assert len(plain) > 500
    assert plain == as_module

"""The code keeps one style: ruff's lint and format, at 79 columns.

The configuration is in pyproject.toml; it covers xentlib, the tests, the
benchmarks, the data scripts and the chapters' code cells (what a page
shows in a 1280 px column without a sideways scroll).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from xentlib.book import find_root

ROOT = find_root(__file__)
RUFF = Path(sys.executable).with_name("ruff")
PATHS = ["xentlib", "tests", "benchmarks", "data", "chapters"]


@pytest.fixture(scope="module")
def ruff():
    if not RUFF.is_file():
        pytest.fail(f"ruff is not installed beside {sys.executable}")
    return str(RUFF)


def test_ruff_finds_nothing_to_lint(ruff):
    done = subprocess.run(
        [ruff, "check", "--no-cache", *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr


def test_ruff_format_would_change_nothing(ruff):
    done = subprocess.run(
        [ruff, "format", "--check", "--no-cache", *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr

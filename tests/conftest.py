import os

import pytest
import torch

from xentlib.book import find_root

# Float64 by default in the tests would hide float32 problems: keep torch's default.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def root():
    return find_root(os.path.dirname(__file__))


def pytest_terminal_summary(terminalreporter):
    """After the run, show how long each chapter took to execute."""
    import sys

    from xentlib.book import timing_table

    module = sys.modules.get("test_chapters")
    runs = list(getattr(module, "_runs", {}).values())
    if runs:
        terminalreporter.section("chapter execution times")
        terminalreporter.write_line(timing_table(runs))

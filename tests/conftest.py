import os

import pytest
import torch
from hypothesis import settings

from xentlib.book import chapters, execute_book, find_root, timing_table

# Without a GPU, Triton's kernels run in its interpreter, which must be
# chosen before anything imports triton (a test module, a doctest of
# xentlib): set here, first, so that tests/test_triton_linear_cross_entropy.py
# always runs the kernel instead of skipping for the order it was collected in.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Float64 by default in the tests would hide float32 problems: keep torch's
# default dtype.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# A test never fails because a shared machine was slow. Hypothesis's
# per-example deadline (200 ms unless a test says otherwise) is such a
# wall-clock assertion, so it is off for the whole suite. And a test gives
# the same verdict on every run: Hypothesis draws its examples from a fixed
# seed (derandomize), so a property that fails fails every time, here and in
# CI, and a new counterexample appears only when the code or the test
# changes.
settings.register_profile("book", deadline=None, derandomize=True)
settings.load_profile("book")

ROOT = find_root(os.path.dirname(__file__))
_BOOK_RUN = pytest.StashKey()


@pytest.fixture(scope="session")
def root():
    return find_root(os.path.dirname(__file__))


def _chapters_wanted(items) -> list[str]:
    """The stems of the chapters that the session's tests of ``book_runs``
    ask for: a test parametrized by a chapter's ``path`` asks for that
    chapter, any other asks for the whole book."""
    wanted = set()
    for item in items:
        if "book_runs" not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        path = callspec.params.get("path") if callspec else None
        if path is None:
            return [p.stem for p in chapters(ROOT)]
        wanted.add(path.stem)
    return [p.stem for p in chapters(ROOT) if p.stem in wanted]


@pytest.fixture(scope="session")
def book_runs(request):
    """The chapters that this session's tests ask for, executed once, fresh
    (never reused from an earlier build) and side by side, one per core: a
    :class:`xentlib.book.BookRun` (``book_runs.chapter(stem)`` is one
    chapter's run). Their timing table ends the session's report."""
    run = execute_book(ROOT, _chapters_wanted(request.session.items))
    request.config.stash[_BOOK_RUN] = run
    return run


def pytest_terminal_summary(terminalreporter, config):
    """After the run, show how long each chapter took to execute."""
    run = config.stash.get(_BOOK_RUN, None)
    if run:
        terminalreporter.section("chapter execution times")
        terminalreporter.write_line(timing_table(run))

"""Executing, checking and rendering the book, one module per job.

* :mod:`~xentlib.book.toc` - the repository and the chapters that
  ``_toc.yml`` lists, in reading order;
* :mod:`~xentlib.book.execution` - executing one chapter with papermill into
  ``_build/executed/<stem>.ipynb`` and collecting the results it recorded with
  :func:`xentlib.record` into ``_build/results/<stem>.json``;
* :mod:`~xentlib.book.cache` - reusing a chapter's last execution while its
  inputs (notebook, xentlib, data, lock, parameters) are unchanged;
* :mod:`~xentlib.book.parallel` - executing the book, chapters side by side,
  one per core, each kernel on a fixed number of threads;
* :mod:`~xentlib.book.expectations` - the stored expectations in
  ``tests/expected/<stem>.json`` and the check of results against them;
* :mod:`~xentlib.book.report` - the timing table and the execution page: times
  against the budget, results against expectations;
* :mod:`~xentlib.book.site` - rendering the website from the executed
  chapters, without executing anything again;
* :mod:`~xentlib.book.extension` - the Sphinx extension (this package is
  listed in ``_config.yml`` as ``xentlib.book``);
* :mod:`~xentlib.book.cli` - the command line, ``python -m xentlib.book``,
  which the Makefile drives.
"""

from .cli import main
from .execution import (
    ChapterRun,
    collapse_progress_output,
    execute_chapter,
    extract_results,
)
from .expectations import (
    DEFAULT_TOLERANCE,
    compare_results,
    expected_path,
    load_expected,
    write_expected,
)
from .extension import book_note, chapter_usage, setup
from .parallel import BookRun, execute_book
from .report import (
    BOOK_BUDGET_SECONDS,
    BUDGET_CORES,
    CHAPTER_BUDGET_SECONDS,
    RUNAWAY_FACTOR,
    execution_report,
    timing_table,
)
from .site import EXECUTION_MARKER, build_site
from .toc import _toc_files, chapter_title, chapters, find_root

__all__ = [
    "BOOK_BUDGET_SECONDS",
    "BUDGET_CORES",
    "CHAPTER_BUDGET_SECONDS",
    "DEFAULT_TOLERANCE",
    "EXECUTION_MARKER",
    "RUNAWAY_FACTOR",
    "BookRun",
    "ChapterRun",
    "_toc_files",
    "book_note",
    "build_site",
    "chapter_title",
    "chapter_usage",
    "chapters",
    "collapse_progress_output",
    "compare_results",
    "execute_book",
    "execute_chapter",
    "execution_report",
    "expected_path",
    "extract_results",
    "find_root",
    "load_expected",
    "main",
    "setup",
    "timing_table",
    "write_expected",
]

"""Reporting a build: each chapter's time against the budget, its results
against their expectations, and which chapters were reused from the cache.

The budget is a goal that every build measures and reports, not a test: a
shared machine's noise must not fail a good chapter. ``make bench-book``
(``benchmarks/book.py``) measures it properly, as a median of several runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .execution import ChapterRun
from .expectations import compare_results, load_expected
from .toc import chapter_title

__all__ = [
    "BOOK_BUDGET_SECONDS",
    "BUDGET_CORES",
    "CHAPTER_BUDGET_SECONDS",
    "RUNAWAY_FACTOR",
    "execution_report",
    "timing_table",
]

#: A chapter's budget: the median of its execution times on a 2-core CPU.
CHAPTER_BUDGET_SECONDS = 60.0
#: The whole book's budget, the sum of its chapters' times.
BOOK_BUDGET_SECONDS = 360.0
#: A chapter this many times over its budget has run away: the one timing a
#: test checks, far beyond any machine's noise. It is checked on the kernel's
#: CPU time, against this many times what a chapter at its budget can use
#: (its budget on both cores), since a busy machine inflates wall time.
RUNAWAY_FACTOR = 3
#: The cores of the machine the budget is set for.
BUDGET_CORES = 2


def _within(seconds: float, budget: float) -> str:
    return "ok" if seconds <= budget else "OVER"


def _how(runs) -> str | None:
    """How a :class:`~xentlib.book.parallel.BookRun` was executed (None for
    a plain list of runs)."""
    wall = getattr(runs, "wall_seconds", None)
    if wall is None:
        return None
    fresh = sum(not r.reused for r in runs)
    if not fresh:
        return f"wall time {wall:.1f} s: every chapter reused"
    threads = runs.threads or "all"
    return (
        f"wall time {wall:.1f} s for {fresh} chapter(s) executed,"
        f" {runs.workers} at once, {threads} thread(s) each"
    )


def timing_table(runs: list[ChapterRun]) -> str:
    """A plain-text table of each chapter's execution time against the
    budget, and the book's sum beside the build's wall time."""
    width = max([len(r.stem) for r in runs] + [len("sum of chapter times")])
    lines = [
        f"{'chapter':<{width}}  {'seconds':>7}  budget  {'cpu s':>7}"
        "  results  status  executed",
        f"{'-' * width}  -------  ------  -------  -------  ------  --------",
    ]
    for r in runs:
        status = "ok" if r.error is None else "FAILED"
        executed = f"reused, from {r.finished}" if r.reused else "now"
        cpu = "-" if r.cpu_seconds is None else f"{r.cpu_seconds:.1f}"
        lines.append(
            f"{r.stem:<{width}}  {r.seconds:7.1f}  "
            f"{_within(r.seconds, CHAPTER_BUDGET_SECONDS):<6}  {cpu:>7}  "
            f"{len(r.results):7d}  {status:<6}  {executed}"
        )
    total = sum(r.seconds for r in runs)
    lines.append(
        f"{'sum of chapter times':<{width}}  {total:7.1f}  "
        f"{_within(total, BOOK_BUDGET_SECONDS):<6}"
    )
    how = _how(runs)
    if how:
        lines.append(how)
    lines.append(
        f"budget: {CHAPTER_BUDGET_SECONDS:.0f} s a chapter and"
        f" {BOOK_BUDGET_SECONDS:.0f} s the book (medians on 2 cores; times of"
        " chapters run side by side are inflated; `make bench-book` measures"
        " medians)"
    )
    return "\n".join(lines)


def _machine_description() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        device = f"CUDA GPU ({torch.cuda.get_device_name(0)})"
    else:
        device = f"CPU ({os.cpu_count()} cores)"
    return (
        f"Python {platform.python_version()}, PyTorch {torch.__version__}, "
        f"{platform.system()} {platform.machine()}; chapters with `device ="
        f' "auto"` ran on: {device}'
    )


def execution_report(root: Path, runs: list[ChapterRun]) -> str:
    """A Markdown table of the run the site was built from: each chapter's
    time against the budget, its results against their expectations, and
    whether it executed in this build or was reused from an earlier one."""
    rows = [
        (
            "| chapter | run time (s) | within budget | recorded results |"
            " against expectations | status | executed |"
        ),
        "|---|--:|---|--:|---|---|---|",
    ]
    for run in runs:
        failures = compare_results(
            run.stem, run.results, load_expected(root, run.stem)
        )
        check = "all within" if not failures else f"{len(failures)} outside"
        status = "ok" if run.error is None else "failed"
        budget = "yes" if run.seconds <= CHAPTER_BUDGET_SECONDS else "**no**"
        executed = (
            f"reused, from {run.finished}" if run.reused else "this build"
        )
        rows.append(
            f"| [{chapter_title(run.executed)}](chapters/{run.stem}.ipynb) |"
            f" {run.seconds:.1f} | {budget} | {len(run.results)} | {check} |"
            f" {status} | {executed} |"
        )
    total = sum(run.seconds for run in runs)
    budget = "yes" if total <= BOOK_BUDGET_SECONDS else "**no**"
    rows.append(
        f"| **all {len(runs)} chapters** | **{total:.1f}** | {budget} |"
        f" **{sum(len(r.results) for r in runs)}** | | | |"
    )
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    how = _how(runs)
    lines = [f"Built on {when}. {_machine_description()}.", "", *rows]
    if how:
        lines += ["", how[0].upper() + how[1:] + "."]
    return "\n".join(lines)

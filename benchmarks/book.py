"""Measure the book's time budget: execute each chapter several times and
print the median and spread of its time.

    python benchmarks/book.py                # every chapter, 3 times each
    python benchmarks/book.py --repeat 5 01_surprise_and_cross_entropy
    make bench-book REPEAT=5 CHAPTERS="01_surprise_and_cross_entropy"

Each chapter executes alone, one at a time, as a reader runs it in
JupyterLab: its kernel on torch's default number of threads (one per core),
kernel start-up included; ``--threads 1`` measures it as the parallel build
runs it. The repetitions go round the book (every chapter once, then again),
so that a slow spell of a shared machine spreads over the chapters instead of
landing on one. The budget: a chapter's median at most 60 s and the book's
(the sum of the chapters' times in one round) at most 360 s, on a 2-core CPU.
The executions go to a temporary folder: ``_build`` is left alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from xentlib.book import (
    BOOK_BUDGET_SECONDS,
    CHAPTER_BUDGET_SECONDS,
    chapters,
    execute_chapter,
    find_root,
)


def _row(name: str, times: list[float], budget: float, same: str) -> str:
    median = statistics.median(times)
    verdict = "ok" if median <= budget else "OVER"
    return (
        f"{name:<36}  {median:7.1f}  {min(times):7.1f}  {max(times):7.1f}"
        f"  {len(times):4d}  {verdict:<6}  {same}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="*", help="chapters (default: all)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="executions of each chapter (default: 3)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads of each kernel; 0 for torch's default (the default)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1; got {args.repeat}")
    root = find_root()
    paths = chapters(root)
    unknown = set(args.stems) - {p.stem for p in paths}
    if unknown:
        parser.error(f"unknown chapter(s) {sorted(unknown)}")
    if args.stems:
        paths = [p for p in paths if p.stem in args.stems]
    threads = args.threads or None
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    times = {p.stem: [] for p in paths}
    results = {p.stem: [] for p in paths}
    failed = []
    with tempfile.TemporaryDirectory() as build:
        for round_ in range(1, args.repeat + 1):
            for path in paths:
                run = execute_chapter(
                    path, root, build_dir=Path(build), threads=threads
                )
                status = "ok" if run.error is None else "FAILED"
                print(
                    f"round {round_}/{args.repeat}  {path.stem:<36}"
                    f"  {run.seconds:6.1f} s  {status}",
                    flush=True,
                )
                if run.error:
                    failed.append(f"{path.stem}: {run.error}")
                times[path.stem].append(run.seconds)
                results[path.stem].append(run.results)
    threads_used = (
        f"{args.threads} thread(s)"
        if args.threads
        else "torch's default threads (one per core)"
    )
    print(
        f"\n{platform.python_implementation()} {platform.python_version()},"
        f" {os.cpu_count()} cores, kernels on {threads_used},"
        f" {args.repeat} round(s)\n"
    )
    print(
        f"{'chapter':<36}  {'median':>7}  {'min':>7}  {'max':>7}  runs"
        "  budget  same results every run"
    )
    for stem in times:
        runs = results[stem]
        same = all(r == runs[0] for r in runs)
        same = "-" if len(runs) < 2 else "yes" if same else "NO"
        print(_row(stem, times[stem], CHAPTER_BUDGET_SECONDS, same))
    rounds = [sum(t[i] for t in times.values()) for i in range(args.repeat)]
    print(_row("the book (sum of a round)", rounds, BOOK_BUDGET_SECONDS, ""))
    print(
        f"\nbudget: a chapter's median at most {CHAPTER_BUDGET_SECONDS:.0f} s,"
        f" the book's at most {BOOK_BUDGET_SECONDS:.0f} s (2-core CPU)"
    )
    for failure in failed:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

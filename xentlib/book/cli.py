"""The command line of the book's runner: ``python -m xentlib.book``.

The Makefile drives it; from a shell in the repository::

    python -m xentlib.book build           # execute what changed, render it
    python -m xentlib.book build --fresh   # execute and render everything
    python -m xentlib.book execute 01_surprise_and_cross_entropy
    python -m xentlib.book expected        # rewrite tests/expected/*.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from .expectations import expected_path, write_expected
from .parallel import DEFAULT_THREADS, execute_book
from .report import timing_table
from .site import build_site
from .toc import find_root

__all__ = ["main"]


def _report_failures(runs) -> bool:
    """Print each failed chapter's error; return whether any failed."""
    failed = [r for r in runs if r.error]
    for r in failed:
        print(f"\n{r.stem} FAILED:\n{r.error}", file=sys.stderr)
    return bool(failed)


def _execute(root: Path, args, stems, reuse: bool):
    return execute_book(
        root,
        stems,
        reuse=reuse,
        workers=args.workers,
        threads=args.threads or None,
    )


def _cmd_execute(root: Path, args) -> int:
    runs = _execute(root, args, args.stems, reuse=args.reuse)
    print("\n" + timing_table(runs))
    return 1 if _report_failures(runs) else 0


def _cmd_build(root: Path, args) -> int:
    start = time.perf_counter()
    runs = _execute(root, args, None, reuse=not args.fresh)
    if _report_failures(runs):
        print("\n" + timing_table(runs))
        return 1
    render_start = time.perf_counter()
    try:
        index = build_site(root, runs, incremental=not args.fresh)
    except subprocess.CalledProcessError:
        print("\n" + timing_table(runs))
        print(
            "\nrendering FAILED: Jupyter Book reported errors or warnings (see"
            " above)",
            file=sys.stderr,
        )
        return 1
    end = time.perf_counter()
    print("\n" + timing_table(runs))
    print(
        f"\nrendered the site in {end - render_start:.1f} s; the whole build"
        f" took {end - start:.1f} s"
    )
    print(f"open {index}")
    return 0


def _cmd_expected(root: Path, args) -> int:
    runs = _execute(root, args, args.stems, reuse=False)
    print("\n" + timing_table(runs))
    _report_failures(runs)
    try:
        notes = write_expected(root, runs)
    except ValueError as err:
        print(f"\n{err}", file=sys.stderr)
        return 1
    for note in notes:
        print(note)
    for run in runs:
        print(f"wrote {expected_path(root, run.stem).relative_to(root)}")
    return 0


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="chapters executed at once (default: one per core)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=(
            "threads of each chapter's kernel; 0 for torch's default, one"
            f" per core (default: {DEFAULT_THREADS})"
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xentlib.book",
        description="Execute, check and render the book.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the repository root (default: found from here)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "execute", help="execute chapters and write their recorded results"
    )
    p.add_argument("stems", nargs="*", help="chapter stems (default: all)")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the executions whose inputs have not changed",
    )
    _add_execution_options(p)
    p = sub.add_parser(
        "build",
        help=(
            "execute the chapters whose inputs changed since their last"
            " execution, then render the website"
        ),
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="execute every chapter and render the whole site afresh",
    )
    _add_execution_options(p)
    p = sub.add_parser(
        "expected",
        help=(
            "rewrite tests/expected from a fresh execution: every chapter's"
            " file, or none if one fails or breaks a bound"
        ),
    )
    p.add_argument("stems", nargs="*", help="chapter stems (default: all)")
    _add_execution_options(p)
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1; got {args.workers}")
    if args.threads < 0:
        parser.error(f"--threads must be 0 or more; got {args.threads}")
    root = find_root(args.root)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if args.command == "execute":
        return _cmd_execute(root, args)
    if args.command == "build":
        return _cmd_build(root, args)
    return _cmd_expected(root, args)

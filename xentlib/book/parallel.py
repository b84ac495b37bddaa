"""Executing the book: every chapter, or those asked for, concurrently, and
reusing the executions whose inputs did not change.

Chapters run in separate worker processes, ``workers`` at once (by default
one per core), each chapter's kernel with ``threads`` threads (by default
one), so the machine is never oversubscribed.

The thread count of a chapter is fixed, whatever the number of workers. It
has to be: torch's and the BLAS libraries' parallel reductions split a sum
differently for different thread counts, and so round differently, and a
chapter's results would then depend on how many other chapters ran beside it
(or on how many cores the machine has). With one thread per chapter the
results are the same in a serial and a parallel build and on any number of
cores, and the cores are used by running chapters side by side, which pays
better than splitting the small tensors of one chapter across threads.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from . import cache
from .execution import ChapterRun, execute_chapter
from .toc import chapters

__all__ = ["DEFAULT_THREADS", "BookRun", "available_cores", "execute_book"]

#: Threads of each chapter's kernel; see the module's docstring for why it
#: does not depend on the number of workers.
DEFAULT_THREADS = 1


class BookRun(list):
    """The runs of one execution of the book, in reading order (a list of
    :class:`ChapterRun`), and how they were executed: ``wall_seconds`` from
    the start of the first to the end of the last, ``workers`` chapters at
    once, each kernel on ``threads`` threads."""

    def __init__(
        self,
        runs: list[ChapterRun],
        wall_seconds: float,
        workers: int,
        threads: int | None,
    ):
        super().__init__(runs)
        self.wall_seconds = wall_seconds
        self.workers = workers
        self.threads = threads

    def chapter(self, stem: str) -> ChapterRun:
        """The run of chapter ``stem``."""
        for run in self:
            if run.stem == stem:
                return run
        raise KeyError(f"chapter {stem!r} was not executed in this run")


def available_cores() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _select(root: Path, stems: list[str] | None) -> list[Path]:
    paths = chapters(root)
    if not stems:
        return paths
    unknown = set(stems) - {p.stem for p in paths}
    if unknown:
        raise ValueError(
            f"unknown chapter(s) {sorted(unknown)}; _toc.yml lists"
            f" {[p.stem for p in paths]}"
        )
    return [p for p in paths if p.stem in stems]


def _execute_and_store(
    path: Path,
    root: Path,
    parameters: dict | None,
    build_dir: Path,
    threads: int | None,
    key: str,
) -> ChapterRun:
    run = execute_chapter(path, root, parameters, build_dir, threads)
    if run.error is None:
        cache.store(build_dir, run, key)
    return run


def _outcome(run: ChapterRun) -> str:
    if run.reused:
        return (
            f"  reused {run.stem} (executed {run.finished} in"
            f" {run.seconds:.1f} s; its inputs have not changed)"
        )
    status = "ok" if run.error is None else "FAILED"
    return (
        f"  {status:<6} {run.stem} in {run.seconds:.1f} s,"
        f" {len(run.results)} results"
    )


def execute_book(
    root: Path,
    stems: list[str] | None = None,
    *,
    reuse: bool = False,
    workers: int | None = None,
    threads: int | None = DEFAULT_THREADS,
    parameters: dict | None = None,
    build_dir: Path | None = None,
    log: Callable[[str], None] | None = print,
) -> BookRun:
    """Execute the chapters (all, or those whose stems are given).

    With ``reuse``, a chapter whose inputs have not changed since its last
    successful execution in ``build_dir`` (default ``<root>/_build``) is not
    executed again: its executed notebook and results are reused (see
    :mod:`xentlib.book.cache`). The others execute ``workers`` at once
    (default: one per core, at most one per chapter), each kernel on
    ``threads`` threads (None: torch's default, one per core), the longest
    (as last measured) first. ``parameters`` go to every chapter. ``log``
    receives a line per chapter (None: silent). Returns the runs in reading
    order; a failed chapter has its :attr:`ChapterRun.error` set.
    """
    build_dir = Path(build_dir) if build_dir is not None else root / "_build"
    paths = _select(root, stems)
    say = log or (lambda line: None)
    start = time.perf_counter()
    shared = cache.shared_digest(root)
    keys = {
        p.stem: cache.input_key(root, p, parameters, threads, shared)
        for p in paths
    }
    done: dict[str, ChapterRun] = {}
    if reuse:
        for path in paths:
            run = cache.reuse(build_dir, path, keys[path.stem])
            if run is not None:
                done[path.stem] = run
                say(_outcome(run))
    todo = [p for p in paths if p.stem not in done]
    # Longest first, so that the last chapter to start is a short one.
    todo.sort(
        key=lambda p: -(cache.last_seconds(build_dir, p.stem) or math.inf)
    )
    if workers is None:
        workers = max(1, available_cores() // (threads or available_cores()))
    workers = max(1, min(workers, len(todo)))
    if todo:
        say(
            f"executing {len(todo)} chapter(s), {workers} at once, each on"
            f" {threads or 'all'} thread(s)"
        )
    for path in todo:
        cache.forget(build_dir, path.stem)
    jobs = [
        (p, root, parameters, build_dir, threads, keys[p.stem]) for p in todo
    ]
    if workers == 1:
        for job in jobs:
            run = _execute_and_store(*job)
            done[run.stem] = run
            say(_outcome(run))
    elif jobs:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_execute_and_store, *job) for job in jobs]
            for future in as_completed(futures):
                run = future.result()
                done[run.stem] = run
                say(_outcome(run))
    wall = time.perf_counter() - start
    return BookRun(
        [done[p.stem] for p in paths], wall, workers if todo else 0, threads
    )

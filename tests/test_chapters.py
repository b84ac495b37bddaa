"""The chapter regression: execute every chapter with papermill and check its
results.

Each chapter is executed once per session, fresh, side by side with the
others (the ``book_runs`` fixture); its recorded results must stay within the
expectations stored in ``tests/expected/<stem>.json``. Then the site is
rendered from the executed notebooks, failing on any Sphinx warning.
Expectations change only through ``make expected``.

The time budget (60 s a chapter, 6 minutes the book, medians on 2 cores) is
measured and reported, in the timing table that ends the session and by
``make bench-book``, but no test asserts it: a shared machine's noise must
not fail a good chapter. A test fails only on a runaway: a chapter whose
kernel used :data:`~xentlib.book.RUNAWAY_FACTOR` times the CPU time that a
chapter at its budget can use (60 s on each of 2 cores). CPU time, unlike
wall time, does not grow when other work shares the machine.
"""

import subprocess

import pytest

from xentlib.book import (
    BUDGET_CORES,
    CHAPTER_BUDGET_SECONDS,
    RUNAWAY_FACTOR,
    build_site,
    chapters,
    compare_results,
    execute_book,
    execute_chapter,
    find_root,
    load_expected,
)

ROOT = find_root(__file__)
CHAPTERS = chapters(ROOT)


@pytest.mark.chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes_and_its_results_match_expectations(path, book_runs):
    run = book_runs.chapter(path.stem)
    assert run.error is None, f"{path.stem} failed to execute:\n{run.error}"
    assert not run.reused
    expected = load_expected(ROOT, path.stem)
    assert expected, (
        f"{path.stem}: no expectations stored in"
        f" tests/expected/{path.stem}.json (run `make expected`)"
    )
    failures = compare_results(path.stem, run.results, expected)
    assert not failures, "\n".join(failures)
    print(
        f"{path.stem}: executed in {run.seconds:.1f} s, {len(run.results)}"
        " results within expectations"
    )


@pytest.mark.chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_does_not_run_away(path, book_runs):
    # On the kernel's CPU time, which other work on a busy machine does not
    # inflate: a chapter at its budget uses at most its budget on every core.
    run = book_runs.chapter(path.stem)
    if run.cpu_seconds is None:
        pytest.skip("the kernel's CPU time cannot be measured here")
    limit = RUNAWAY_FACTOR * CHAPTER_BUDGET_SECONDS * BUDGET_CORES
    assert run.cpu_seconds <= limit, (
        f"{path.stem} used {run.cpu_seconds:.0f} s of CPU time,"
        f" {RUNAWAY_FACTOR} times what a chapter at its budget of"
        f" {CHAPTER_BUDGET_SECONDS:.0f} s on {BUDGET_CORES} cores can use: a"
        " runaway (a loop that does not end, a size knob left large)"
    )


@pytest.mark.chapters
@pytest.mark.parametrize("path", CHAPTERS[:1], ids=lambda p: p.stem)
def test_same_seed_gives_the_same_results(path, book_runs, tmp_path):
    # One chapter suffices to check the machinery (seeding, parameter
    # injection); re-running every chapter would double the suite's time.
    first = book_runs.chapter(path.stem)
    again = execute_chapter(
        path, ROOT, parameters={"seed": 0}, build_dir=tmp_path, threads=1
    )
    assert first.error is None and again.error is None, again.error
    assert again.results == first.results


# Two fast chapters, executed one at a time and side by side: the first
# records the same numbers on any number of threads, the fifth does not (two
# of its results move in the fifth digit between one thread and two), so a
# build that gave a chapter a thread count depending on how many chapters run
# at once would fail here. test_book.py checks the same on small notebooks.
SERIAL_AND_PARALLEL = [
    "01_surprise_and_cross_entropy",
    "05_classification_in_the_sciences",
]


@pytest.mark.chapters
def test_parallel_and_serial_execution_record_identical_results(tmp_path):
    serial = execute_book(
        ROOT,
        SERIAL_AND_PARALLEL,
        workers=1,
        build_dir=tmp_path / "s",
        log=None,
    )
    parallel = execute_book(
        ROOT,
        SERIAL_AND_PARALLEL,
        workers=2,
        build_dir=tmp_path / "p",
        log=None,
    )
    assert (serial.workers, parallel.workers) == (1, 2)
    for one, other in zip(serial, parallel):
        assert one.error is None and other.error is None, (
            one.error or other.error
        )
        assert one.results and one.results == other.results, one.stem


@pytest.mark.chapters
def test_site_renders_from_the_executed_chapters_without_warnings(book_runs):
    failed = [r.stem for r in book_runs if r.error]
    if failed:
        pytest.skip(f"chapters failed to execute: {failed}")
    assert [r.stem for r in book_runs] == [p.stem for p in CHAPTERS]
    try:
        index = build_site(ROOT, book_runs)
    except subprocess.CalledProcessError as err:
        pytest.fail(
            "Jupyter Book reported warnings or errors (exit"
            f" {err.returncode}); see the captured output"
        )
    assert index.is_file()
    page = (index.parent / "chapters" / f"{CHAPTERS[0].stem}.html").read_text()
    assert "xentlib" in page

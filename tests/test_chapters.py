"""The chapter regression: execute every chapter with papermill and check its results.

Each chapter is executed once per session; its recorded results must stay
within the expectations stored in ``tests/expected/<stem>.json``. Then the site
is rendered from the executed notebooks, failing on any Sphinx warning.
Expectations change only through ``make expected``.
"""

import subprocess

import pytest

from xentlib.book import (
    build_site,
    chapters,
    compare_results,
    execute_chapter,
    find_root,
    load_expected,
)

ROOT = find_root(__file__)
CHAPTERS = chapters(ROOT)
BUDGET_SECONDS = 60.0
_runs = {}


def run_of(path):
    if path.stem not in _runs:
        _runs[path.stem] = execute_chapter(path, ROOT)
    return _runs[path.stem]


@pytest.mark.chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes_and_its_results_match_expectations(path):
    run = run_of(path)
    assert run.error is None, f"{path.stem} failed to execute:\n{run.error}"
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
def test_chapter_executes_within_its_time_budget(path):
    run = run_of(path)
    # Kernel start-up counts too: this is what a reader waits for.
    assert run.seconds <= BUDGET_SECONDS, (
        f"{path.stem} took {run.seconds:.1f} s; the budget is"
        f" {BUDGET_SECONDS:.0f} s"
    )


@pytest.mark.chapters
def test_same_seed_gives_the_same_results(tmp_path):
    # One chapter suffices to check the machinery (seeding, parameter injection);
    # re-running every chapter would double the suite's time.
    path = CHAPTERS[0]
    first = run_of(path)
    again = execute_chapter(
        path, ROOT, parameters={"seed": 0}, build_dir=tmp_path
    )
    assert first.error is None and again.error is None, again.error
    assert again.results == first.results


@pytest.mark.chapters
def test_site_renders_from_the_executed_chapters_without_warnings():
    runs = [run_of(path) for path in CHAPTERS]
    failed = [r.stem for r in runs if r.error]
    if failed:
        pytest.skip(f"chapters failed to execute: {failed}")
    try:
        index = build_site(ROOT, runs)
    except subprocess.CalledProcessError as err:
        pytest.fail(
            "Jupyter Book reported warnings or errors (exit"
            f" {err.returncode}); see the captured output"
        )
    assert index.is_file()
    page = (index.parent / "chapters" / f"{CHAPTERS[0].stem}.html").read_text()
    assert "xentlib" in page

"""The book's runner: progress output, the execution report and the API's links back to the chapters."""

import nbformat
import pytest

from xentlib.book import (
    ChapterRun,
    book_note,
    chapter_title,
    chapter_usage,
    chapters,
    collapse_progress_output,
    execution_report,
    find_root,
)

ROOT = find_root(__file__)


def _cell_with(*outputs):
    cell = nbformat.v4.new_code_cell("pass")
    cell.outputs = [
        nbformat.v4.new_output("stream", name=name, text=text)
        for name, text in outputs
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell]
    return nb


def test_a_progress_bar_keeps_only_its_last_state_as_a_terminal_shows_it():
    nb = _cell_with(
        ("stderr", "\rtrain:   0%|  | 0/8"),
        ("stderr", "\rtrain:  50%|# | 4/8"),
        ("stderr", "\rtrain: 100%|##| 8/8"),
        ("stderr", "\n"),
    )
    assert collapse_progress_output(nb)
    (output,) = nb.cells[0].outputs
    assert output["text"] == "train: 100%|##| 8/8\n"


def test_collapsing_keeps_ordinary_lines_and_joins_each_stream():
    # a loop that prints a line per step while its progress bar redraws on stderr
    nb = _cell_with(
        ("stderr", "\rbar 1/2"),
        ("stdout", "step 1\n"),
        ("stderr", "\rbar 2/2"),
        ("stdout", "step 2\n"),
        ("stderr", "\n"),
    )
    collapse_progress_output(nb)
    assert [(o["name"], o["text"]) for o in nb.cells[0].outputs] == [
        ("stderr", "bar 2/2\n"),
        ("stdout", "step 1\nstep 2\n"),
    ]
    assert not collapse_progress_output(nb), (
        "a second pass must change nothing"
    )


def test_chapter_usage_finds_functions_however_they_are_imported():
    usage = chapter_usage(ROOT)
    stems = [p.stem for p in chapters(ROOT)]
    # `xentlib.cross_entropy` (re-exported) counts for xentlib.losses.cross_entropy
    assert usage["xentlib.losses.cross_entropy"][0] == stems[0]
    # `from xentlib.calibration import fit_temperature` in chapter 14
    assert (
        "14_calibration_and_soft_targets"
        in usage["xentlib.calibration.fit_temperature"]
    )
    # every chapter records results through xentlib.record
    assert usage["xentlib.results.record"] == stems
    for name, used_in in usage.items():
        assert used_in == sorted(used_in, key=stems.index), (
            f"{name}: chapters out of reading order"
        )


def test_book_note_links_to_the_introducing_chapter_then_the_module_then_the_docstring():
    usage = {"xentlib.a.f": ["03_x", "05_y"], "xentlib.a": ["03_x", "05_y"]}
    assert (
        book_note("xentlib.a.f", usage)[1]
        == "*In the book:* introduced in :doc:`/chapters/03_x`; also used in"
        " chapter :doc:`5 </chapters/05_y>`."
    )
    assert ":doc:`/chapters/03_x`" in book_note("xentlib.a.g", usage)[1]
    note = book_note(
        "xentlib.b.h",
        usage,
        docs=(None, "Shared by chapters 5 and 3."),
        stems=("03_x", "05_y"),
    )
    assert (
        note[1]
        == "*In the book:* used behind the scenes in :doc:`/chapters/05_y`."
    )
    assert (
        book_note(
            "xentlib.c.k", usage, docs=("no chapter here",), stems=("03_x",)
        )
        == []
    )


def test_execution_report_lists_every_chapter_with_its_time_and_regression(
    tmp_path,
):
    path = chapters(ROOT)[0]
    run = ChapterRun(
        stem=path.stem,
        seconds=12.34,
        executed=path,
        results={"not_expected": 1.0},
    )
    report = execution_report(ROOT, [run])
    assert (
        f"[{chapter_title(path)}](chapters/{path.stem}.ipynb) | 12.3 | 1 |"
        in report
    )
    assert (
        "outside" in report
    )  # an unexpected result and the missing ones leave the expectations
    assert "**all 1 chapters** | **12.3**" in report


@pytest.mark.parametrize("path", chapters(ROOT), ids=lambda p: p.stem)
def test_chapter_title_is_its_numbered_heading(path):
    assert chapter_title(path).split(".")[0] == str(int(path.stem[:2]))

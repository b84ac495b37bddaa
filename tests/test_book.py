"""The book's runner: progress output, the execution report, the timing
table and the API's links back to the chapters."""

import importlib.metadata
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from xentlib.book import (
    BookRun,
    ChapterRun,
    book_note,
    cache,
    chapter_title,
    chapter_usage,
    chapters,
    collapse_progress_output,
    compare_results,
    execute_book,
    execute_chapter,
    execution_report,
    find_root,
    load_expected,
    main,
    timing_table,
    write_expected,
)
from xentlib.book.cache import LOCK_FILE
from xentlib.book.parallel import available_cores

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
    # a loop that prints a line per step while its progress bar redraws on
    # stderr
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
    # `xentlib.cross_entropy` (re-exported) counts for
    # xentlib.losses.cross_entropy
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


def test_book_note_links_first_chapter_then_module_then_docstring():
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


def test_execution_report_lists_every_chapter_with_its_time_and_regression():
    path = chapters(ROOT)[0]
    run = ChapterRun(
        stem=path.stem,
        seconds=12.34,
        executed=path,
        results={"not_expected": 1.0},
    )
    report = execution_report(ROOT, [run])
    assert (
        f"[{chapter_title(path)}](chapters/{path.stem}.ipynb) | 12.3 | yes |"
        " 1 |" in report
    )
    # an unexpected result and the missing ones leave the expectations
    assert "outside" in report
    assert "**all 1 chapters** | **12.3** | yes |" in report


def test_execution_report_says_which_chapters_were_reused_and_over_budget():
    path = chapters(ROOT)[0]
    runs = BookRun(
        [
            ChapterRun(path.stem, 61.0, path, reused=True, finished="then"),
            ChapterRun(path.stem, 300.0, path),
        ],
        wall_seconds=302.5,
        workers=2,
        threads=1,
    )
    report = execution_report(ROOT, runs)
    assert "| 61.0 | **no** |" in report
    assert "| reused, from then |" in report and "| this build |" in report
    assert "**all 2 chapters** | **361.0** | **no** |" in report
    assert "Wall time 302.5 s for 1 chapter(s) executed, 2 at once" in report


def test_timing_table_sets_the_budget_beside_each_time_and_the_wall_time():
    runs = BookRun(
        [
            ChapterRun(
                "a", 59.0, Path("a.ipynb"), {"x": 1.0}, cpu_seconds=30.5
            ),
            ChapterRun("b", 61.0, Path("b.ipynb"), error="boom"),
            ChapterRun("c", 7.0, Path("c.ipynb"), reused=True, finished="t"),
        ],
        wall_seconds=64.0,
        workers=2,
        threads=1,
    )
    lines = timing_table(runs).splitlines()
    row = {line.split()[0]: line.split() for line in lines[2:5]}
    assert row["a"][1:6] == ["59.0", "ok", "30.5", "1", "ok"]
    assert row["b"][1:6] == ["61.0", "OVER", "-", "0", "FAILED"]
    assert row["c"][6:] == ["reused,", "from", "t"]
    assert lines[5].split()[-2:] == ["127.0", "ok"]
    assert "wall time 64.0 s for 2 chapter(s) executed, 2 at once" in lines[6]


@pytest.mark.parametrize("path", chapters(ROOT), ids=lambda p: p.stem)
def test_chapter_title_is_its_numbered_heading(path):
    assert chapter_title(path).split(".")[0] == str(int(path.stem[:2]))


# The cache: a chapter is reused only while none of its inputs changed.


def _small_book(tmp_path):
    """A repository with two chapters, a module, a data file and a lock."""
    root = tmp_path / "book"
    for folder in ("chapters", "xentlib", "data"):
        (root / folder).mkdir(parents=True)
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n"
        "- file: chapters/01_a\n- file: chapters/02_b\n"
    )
    (root / "intro.md").write_text("# Intro\n")
    for stem in ("01_a", "02_b"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(f"x = {stem!r}")]
        nbformat.write(nb, root / "chapters" / f"{stem}.ipynb")
    (root / "xentlib" / "losses.py").write_text("def f():\n    pass\n")
    (root / "data" / "table.csv").write_text("1,2\n")
    (root / LOCK_FILE).write_text("torch==2.4.0\n")
    return root


def _pretend_executed(root, stem, parameters=None, threads=1):
    """Leave in ``_build`` what a successful execution of ``stem`` leaves:
    the executed copy, the results and the cache record."""
    build = root / "_build"
    path = root / "chapters" / f"{stem}.ipynb"
    (build / "executed").mkdir(parents=True, exist_ok=True)
    (build / "results").mkdir(parents=True, exist_ok=True)
    executed = build / "executed" / path.name
    shutil.copy2(path, executed)
    (build / "results" / f"{stem}.json").write_text('{"x": 1.0}\n')
    run = ChapterRun(stem, 4.2, executed, {"x": 1.0}, finished="earlier")
    cache.store(build, run, cache.input_key(root, path, parameters, threads))
    return path


def _reused(root, path, parameters=None, threads=1):
    key = cache.input_key(root, path, parameters, threads)
    return cache.reuse(root / "_build", path, key)


def test_an_unchanged_chapter_is_reused_with_its_time_and_results(tmp_path):
    root = _small_book(tmp_path)
    path = _pretend_executed(root, "01_a")
    run = _reused(root, path)
    assert run.reused and run.error is None
    assert (run.seconds, run.results, run.finished) == (
        4.2,
        {"x": 1.0},
        "earlier",
    )


def _append(path, text):
    path.write_text(path.read_text() + text)


CHANGES = {
    "the notebook": lambda r: _append(r / "chapters" / "01_a.ipynb", " "),
    "xentlib's source": lambda r: _append(r / "xentlib" / "losses.py", "#"),
    "a new xentlib module": lambda r: (r / "xentlib" / "new.py").touch(),
    "a data file": lambda r: _append(r / "data" / "table.csv", "3,4\n"),
    "the lock": lambda r: (r / LOCK_FILE).write_text("torch==2.5.0\n"),
    "the executed copy": lambda r: _append(
        r / "_build" / "executed" / "01_a.ipynb", " "
    ),
    "the results": lambda r: (r / "_build" / "results" / "01_a.json").unlink(),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_chapter_is_not_reused_after_a_change_to(change, tmp_path):
    root = _small_book(tmp_path)
    path = _pretend_executed(root, "01_a")
    CHANGES[change](root)
    assert _reused(root, path) is None


def test_a_chapter_is_not_reused_for_other_parameters_or_threads(tmp_path):
    root = _small_book(tmp_path)
    path = _pretend_executed(root, "01_a", parameters={"seed": 0})
    assert _reused(root, path, parameters={"seed": 0}) is not None
    assert _reused(root, path, parameters={"seed": 1}) is None
    assert _reused(root, path, parameters={"seed": 0}, threads=2) is None


def test_a_change_to_one_chapter_leaves_the_other_reusable(tmp_path):
    root = _small_book(tmp_path)
    a = _pretend_executed(root, "01_a")
    b = _pretend_executed(root, "02_b")
    CHANGES["the notebook"](root)
    assert _reused(root, a) is None and _reused(root, b) is not None


def test_execute_book_reuses_every_unchanged_chapter(tmp_path):
    root = _small_book(tmp_path)
    for stem in ("01_a", "02_b"):
        _pretend_executed(root, stem)
    book = execute_book(root, reuse=True, log=None)
    assert [(r.stem, r.reused) for r in book] == [
        ("01_a", True),
        ("02_b", True),
    ]
    assert book.workers == 0  # nothing was executed
    assert "every chapter reused" in timing_table(book)


def test_a_kernel_runs_on_the_threads_it_is_given(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import torch, xentlib\n"
            "xentlib.record('threads', torch.get_num_threads())"
        )
    ]
    path = tmp_path / "threads.ipynb"
    nbformat.write(nb, path)
    # one thread, since torch caps its pool at the number of cores
    run = execute_chapter(path, ROOT, build_dir=tmp_path / "_build", threads=1)
    assert run.error is None, run.error
    assert run.results == {"threads": 1} and run.threads == 1
    # the kernel's CPU time is measured: at least that of its start-up
    assert 0.1 < run.cpu_seconds


# Expectations: `make expected` rewrites every chapter's file, or none.


def test_expectations_are_rewritten_for_every_chapter_or_none(tmp_path):
    expected = tmp_path / "tests" / "expected"
    expected.mkdir(parents=True)
    before = {
        "a": {"x": {"value": 1.0, "rtol": 0.1}},
        "b": {"y": {"value": 1.0, "rtol": 0.1, "max": 2.0}},
    }
    for stem, spec in before.items():
        (expected / f"{stem}.json").write_text(json.dumps(spec))
    runs = [
        ChapterRun("a", 1.0, tmp_path / "a.ipynb", {"x": 1.05}),
        ChapterRun("b", 1.0, tmp_path / "b.ipynb", {"y": 3.0}),
    ]
    with pytest.raises(ValueError, match=r"'y' = 3.0 breaks its bounds"):
        write_expected(tmp_path, runs)
    for stem, spec in before.items():
        assert load_expected(tmp_path, stem) == spec, f"{stem} was rewritten"
    runs[0].error = "NameError: boom"
    runs[1].results = {"y": 1.5}
    with pytest.raises(ValueError, match="a: failed to execute: NameError"):
        write_expected(tmp_path, runs)
    runs[0].error = None
    write_expected(tmp_path, runs)
    assert load_expected(tmp_path, "a")["x"]["value"] == 1.05
    assert load_expected(tmp_path, "b")["y"] == {
        "value": 1.5,
        "rtol": 0.1,
        "max": 2.0,
    }


def test_a_timing_is_checked_only_against_its_runaway_bound():
    spec = {"value": 2.0, "rtol": 0.5, "min": 1.0, "max": 8.0, "timing": True}
    assert compare_results("ch", {"t": 0.7}, {"t": spec}) == []
    assert compare_results("ch", {"t": 5.0}, {"t": spec}) == []
    (failure,) = compare_results("ch", {"t": 9.0}, {"t": spec})
    assert "above its required maximum 8.0" in failure
    assert compare_results("ch", {"t": float("nan")}, {"t": spec})
    untimed = {k: v for k, v in spec.items() if k != "timing"}
    assert len(compare_results("ch", {"t": 0.7}, {"t": untimed})) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["build", "--workers", "0"], "--workers must be at least 1; got 0"),
        (["execute", "--threads", "-1"], "--threads must be 0 or more"),
    ],
)
def test_the_command_line_rejects_impossible_settings(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


# The locked environment: requirements.txt holds floors, requirements.lock
# the exact versions `make` installs, and xentlib's own dependencies stay
# floors for Colab and `pip install`.


def _requirements(text: str) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line]


def _locked() -> dict[str, str]:
    """The lock's pins that apply to this Python and platform."""
    pins = {}
    for req in _requirements((ROOT / LOCK_FILE).read_text()):
        if req.marker is None or req.marker.evaluate():
            (spec,) = req.specifier
            assert spec.operator == "==", f"{req} is not an exact pin"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_the_lock_pins_every_requirement_within_its_floor():
    pins = _locked()
    for req in _requirements((ROOT / "requirements.txt").read_text()):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is required but not in the lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"the lock pins {req.name}=={pins[name]}, outside {req};"
            " run `make lock`"
        )


def test_the_environment_holds_the_locked_versions():
    for name, version in _locked().items():
        installed = Version(importlib.metadata.version(name))
        # a local label (torch's "+cu130") names the build, not the release
        assert installed.public == Version(version).public, (
            f"{name} {installed} is installed, the lock says {version}:"
            " reinstall with `touch requirements.lock && make setup`"
        )


def test_xentlib_itself_asks_only_for_floors():
    for dependency in importlib.metadata.requires("xentlib"):
        req = Requirement(dependency)
        if req.marker is None:  # not an extra
            assert all(s.operator == ">=" for s in req.specifier), dependency


# Threads: a parallel reduction rounds differently on different numbers of
# threads, so the build gives every chapter the same number, however many
# chapters run at once.

THREAD_SENSITIVE_CODE = """\
import torch, xentlib
for seed in range(6):
    x = torch.rand(2**22, generator=torch.Generator().manual_seed(seed))
    xentlib.record(f"mean_square_{seed}", (x * x).mean().item())
"""


def _thread_sensitive_book(tmp_path):
    root = _small_book(tmp_path)
    for stem in ("01_a", "02_b"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(THREAD_SENSITIVE_CODE)]
        nbformat.write(nb, root / "chapters" / f"{stem}.ipynb")
    return root


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores")
def test_these_results_change_with_the_number_of_threads(tmp_path):
    # the control for the test below: on one thread and on two, the same
    # code records different numbers
    root = _thread_sensitive_book(tmp_path)
    path = root / "chapters" / "01_a.ipynb"
    one, two = (
        execute_chapter(path, root, build_dir=tmp_path / str(n), threads=n)
        for n in (1, 2)
    )
    assert one.error is None and two.error is None, one.error or two.error
    assert one.results != two.results


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores")
def test_serial_and_parallel_builds_record_identical_results(tmp_path):
    root = _thread_sensitive_book(tmp_path)
    serial, parallel = (
        execute_book(root, workers=n, build_dir=tmp_path / str(n), log=None)
        for n in (1, 2)
    )
    assert (serial.workers, parallel.workers) == (1, 2)
    for one, other in zip(serial, parallel):
        assert one.error is None and other.error is None, (
            one.error or other.error
        )
        assert one.results and one.results == other.results, one.stem

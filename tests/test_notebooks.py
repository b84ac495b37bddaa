"""Every chapter is committed clean and keeps the book's contracts."""

import re

import nbformat
import pytest
import yaml

from xentlib.book import chapters, find_root

ROOT = find_root(__file__)
CHAPTERS = chapters(ROOT)


def test_the_table_of_contents_lists_chapters():
    assert CHAPTERS, "_toc.yml lists no chapter notebooks"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {i} has outputs"
            assert cell.execution_count is None, (
                f"{path.name}: cell {i} has an execution count"
            )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_a_title_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[
        0
    ].source.lstrip().startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = code[0]
    assert "parameters" in params.metadata.get("tags", []), (
        f"{path.name}: first code cell is not tagged 'parameters'"
    )
    assert "seed =" in params.source and "device =" in params.source
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_installs_xentlib_from_the_books_repository_when_missing(path):
    # The repository and branch come from _config.yml, the one place that names
    # them: the Colab button opens the chapter from that branch, and its setup
    # cell installs xentlib from the same branch, so notebook and library
    # match.
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    setup = [
        c
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code"
    ][1]
    assert (
        "import xentlib" in setup.source
        and "except ImportError" in setup.source
    )
    url, branch = repo["url"], repo["branch"]
    # the URL sits in a variable, which IPython expands, so the cell fits
    # the page's 79 columns
    assert f'book = "git+{url}@{branch}"' in setup.source
    assert '%pip install --quiet "xentlib @ {book}"' in setup.source


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_number_matches_its_file_and_place_in_the_book(path):
    title = (
        nbformat.read(path, as_version=4)
        .cells[0]
        .source.lstrip()
        .splitlines()[0]
    )
    number = int(path.stem.split("_")[0])
    assert title.startswith(f"# {number}. "), (
        f"{path.name}: title {title!r} should start with '# {number}. '"
    )
    numbers = [int(p.stem.split("_")[0]) for p in CHAPTERS]
    assert numbers == list(range(1, len(CHAPTERS) + 1)), (
        f"chapters are not numbered 1..n in _toc.yml order: {numbers}"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercise_solutions_are_folded_away(path):
    # A solution is revealed on demand (a dropdown), never printed beside
    # its question.
    text = "\n".join(
        c.source
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "markdown"
    )
    exercises = text.split("## Exercises", 1)[1].split("\n## ", 1)[0]
    opened = exercises.count("{dropdown}")
    assert opened >= 2, (
        f"{path.name}: expected at least two exercises with folded solutions,"
        f" found {opened}"
    )
    outside = re.sub(
        r"(`{3,})\{dropdown\}.*?\n\1(?!`)", "", exercises, flags=re.S
    )
    assert "Solution" not in outside and "solution:" not in outside.lower(), (
        f"{path.name}: a solution in the exercises is not inside a dropdown"
    )


# A dropdown's box is narrower than a code cell's: at 1280 px a line of 72
# columns already scrolls sideways there (tests/test_site.py finds it only
# after a full build; this finds it in a second).
SOLUTION_COLUMNS = 70
CODE_FENCE = re.compile(
    r"^(`{3,})(?:python|py|ipython3?)[ \t]*\n(.*?)^\1[ \t]*$", re.M | re.S
)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_code_in_the_prose_fits_its_box(path):
    wide = [
        line
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "markdown"
        for match in CODE_FENCE.finditer(cell.source)
        for line in match.group(2).splitlines()
        if len(line) > SOLUTION_COLUMNS
    ]
    assert not wide, (
        f"{path.name}: code lines in markdown cells longer than"
        f" {SOLUTION_COLUMNS} columns: {wide}"
    )


def test_every_bibliography_entry_is_cited():
    # The bibliography page lists the cited works only; an uncited entry
    # would silently vanish.
    keys = set(
        re.findall(
            r"^@\w+\{([^,\s]+),",
            (ROOT / "references.bib").read_text(),
            flags=re.M,
        )
    )
    sources = [
        c.source
        for p in CHAPTERS
        for c in nbformat.read(p, as_version=4).cells
        if c.cell_type == "markdown"
    ]
    sources += [
        p.read_text() for p in ROOT.glob("*.md") if p.name != "README.md"
    ]  # README is not a page
    cited = set()
    for text in sources:
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            cited.update(k.strip() for k in group.split(","))
    assert not keys - cited, (
        f"references.bib entries cited nowhere: {sorted(keys - cited)}"
    )
    assert not cited - keys, (
        f"cited keys missing from references.bib: {sorted(cited - keys)}"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_reads_well(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("Learning goals", "## What to remember", "## Exercises"):
        assert heading in text, f"{path.name} lacks '{heading}'"
    assert "{cite}" in text, f"{path.name} cites no literature"
    assert "{glue:text}" in text, f"{path.name} quotes no recorded number"
    assert "xentlib.record(" in "\n".join(
        c.source for c in nb.cells if c.cell_type == "code"
    )


def _code_cells(path):
    return [
        (i, c)
        for i, c in enumerate(nbformat.read(path, as_version=4).cells)
        if c.cell_type == "code"
    ]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_results_are_recorded_only_in_bookkeeping_cells(path):
    # Recording is bookkeeping, not the lesson: it lives in short cells
    # tagged remove-input, which the site hides (STYLE.md).
    teaching = [
        i
        for i, cell in _code_cells(path)
        if "record(" in cell.source
        and "remove-input" not in cell.metadata.get("tags", [])
    ]
    assert not teaching, (
        f"{path.name}: cells {teaching} call xentlib.record but are not "
        "tagged remove-input; move the recording into a bookkeeping cell"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_bookkeeping_cells_do_not_end_in_a_value_that_would_show(path):
    import ast

    shown = []
    for i, cell in _code_cells(path):
        if "remove-input" not in cell.metadata.get("tags", []):
            continue
        body = ast.parse(cell.source).body
        last = body[-1] if body else None
        if isinstance(last, ast.Expr) and not (
            isinstance(last.value, ast.Call)
            and getattr(last.value.func, "id", "") == "print"
        ):
            shown.append(i)
    assert not shown, (
        f"{path.name}: bookkeeping cells {shown} end in an expression whose "
        "value would appear on the page; assign it or end with `;`-free code"
    )


#: Words that talk about the book's machinery rather than to the reader.
MACHINERY = re.compile(
    r"the book asks|the plan\b|recorded (?:as|under)\s*`|\bthe tests\b"
    r"|tests/|expected/|regression test|time budget",
    re.IGNORECASE,
)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_prose_talks_to_the_reader_not_about_the_books_machinery(path):
    import json

    expected = ROOT / "tests" / "expected" / f"{path.stem}.json"
    keys = (
        set(json.loads(expected.read_text())) if expected.is_file() else set()
    )
    problems = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        prose = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", "", cell.source)
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", prose):
            if name in keys:
                problems.append(f"names the recorded result `{name}`")
        for match in MACHINERY.finditer(prose):
            start = max(0, match.start() - 40)
            problems.append(
                f"talks about the machinery: "
                f"{prose[start : match.end() + 40]!r}"
            )
    assert not problems, f"{path.name}:\n" + "\n".join(problems)

"""Every chapter is committed clean and keeps the book's contracts."""

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
            assert cell.execution_count is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_a_title_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = code[0]
    assert "parameters" in params.metadata.get("tags", []), f"{path.name}: first code cell is not tagged 'parameters'"
    assert "seed =" in params.source and "device =" in params.source
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_installs_xentlib_from_the_books_repository_when_missing(path):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    setup = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"][1]
    assert "import xentlib" in setup.source and "except ImportError" in setup.source
    assert f'%pip install --quiet "xentlib @ git+{url}"' in setup.source


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_reads_well(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("Learning goals", "## What to remember", "## Exercises"):
        assert heading in text, f"{path.name} lacks '{heading}'"
    assert "{cite}" in text, f"{path.name} cites no literature"
    assert "{glue:text}" in text, f"{path.name} quotes no recorded number"
    assert "xentlib.record(" in "\n".join(c.source for c in nb.cells if c.cell_type == "code")

"""The book's table of contents: where the repository is, which chapters it
lists, in what order, and their titles."""

from __future__ import annotations

from pathlib import Path

__all__ = ["chapter_title", "chapters", "find_root"]


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder at or above ``start`` (default:
    the working directory) holding ``_toc.yml``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"no _toc.yml found at or above {here}; run this from the book's"
        " repository"
    )


def _toc_files(entry) -> list[str]:
    """Every file named in a parsed ``_toc.yml`` entry, in reading order."""
    files = []
    if isinstance(entry, dict):
        for key in ("root", "file"):
            if isinstance(entry.get(key), str):
                files.append(entry[key])
        for key in ("parts", "chapters", "sections"):
            for child in entry.get(key, []) or []:
                files.extend(_toc_files(child))
    return files


def chapters(root: Path) -> list[Path]:
    """The chapter notebooks listed in ``_toc.yml``, in reading order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = []
    for name in _toc_files(toc):
        path = root / name
        if path.suffix == "":
            candidates = [path.with_suffix(s) for s in (".ipynb", ".md")]
            existing = [c for c in candidates if c.is_file()]
            if not existing:
                raise FileNotFoundError(
                    f"_toc.yml lists {name}, but neither {name}.ipynb nor"
                    f" {name}.md exists"
                )
            path = existing[0]
        elif not path.is_file():
            raise FileNotFoundError(
                f"_toc.yml lists {name}, but {path} does not exist"
            )
        if path.suffix == ".ipynb":
            found.append(path)
    return found


def chapter_title(path: Path) -> str:
    """The title of a chapter notebook: the text of its first Markdown
    heading."""
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem

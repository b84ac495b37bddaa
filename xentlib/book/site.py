"""Rendering the website from the executed chapters, without executing
anything again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .execution import ChapterRun
from .report import execution_report

__all__ = ["EXECUTION_MARKER", "build_site"]

_SITE_FILES = ("_config.yml", "_toc.yml", "references.bib")
#: The line of ``execution.md`` that :func:`build_site` replaces with the
#: execution report.
EXECUTION_MARKER = "<!-- execution report -->"


def _sources(root: Path, runs: list[ChapterRun]) -> dict[Path, bytes]:
    """What Jupyter Book renders: the book's pages with each chapter replaced
    by its executed copy and the execution page filled in, by path relative
    to the staging folder."""
    files = {Path(name): (root / name).read_bytes() for name in _SITE_FILES}
    for page in root.glob("*.md"):
        if page.name != "README.md":
            files[Path(page.name)] = page.read_bytes()
    for path in (root / "chapters").rglob("*"):
        skip = path.suffix == ".ipynb" or ".ipynb_checkpoints" in path.parts
        if path.is_file() and not skip:
            files[path.relative_to(root)] = path.read_bytes()
    # the site's own stylesheets, which Jupyter Book includes from _static/
    for path in (root / "_static").rglob("*"):
        if path.is_file():
            files[path.relative_to(root)] = path.read_bytes()
    for run in runs:
        files[Path("chapters") / run.executed.name] = run.executed.read_bytes()
    report = Path("execution.md")
    if report in files:
        text = files[report].decode()
        if EXECUTION_MARKER not in text:
            raise ValueError(
                f"execution.md lacks the line {EXECUTION_MARKER!r} to put the"
                " report at"
            )
        text = text.replace(EXECUTION_MARKER, execution_report(root, runs))
        files[report] = text.encode()
    return files


def build_site(
    root: Path, runs: list[ChapterRun], incremental: bool = False
) -> Path:
    """Render the website from the executed notebooks; return the path of
    ``index.html``.

    The book's sources are staged in ``_build/src`` with each chapter
    replaced by its executed copy and the execution page filled with
    :func:`~xentlib.book.report.execution_report`, and Jupyter Book renders
    them with execution off and warnings treated as errors. By default the
    whole site is rendered afresh. With ``incremental``, a staged file is
    rewritten only when its bytes change and Sphinx renders again only the
    pages whose sources changed (``make book`` on a tree where little
    changed); their warnings still fail the render, but those of the pages
    kept from the last render are not repeated.
    """
    build = root / "_build"
    src, html = build / "src", build / "html"
    files = _sources(root, runs)
    if not incremental:
        for folder in (src, html, build / ".doctrees"):
            if folder.exists():
                shutil.rmtree(folder)
    for old in [p for p in src.rglob("*") if p.is_file()]:
        if old.relative_to(src) not in files:
            old.unlink()
    for name, data in files.items():
        target = src / name
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jupyter_book),
        "build",
        str(src),
        "--path-output",
        str(root),
        "--builder",
        "html",
        *([] if incremental else ["--all"]),
        "--warningiserror",
        "--keep-going",
    ]
    subprocess.run(cmd, check=True, cwd=root)
    return html / "index.html"

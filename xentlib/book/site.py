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


def build_site(root: Path, runs: list[ChapterRun]) -> Path:
    """Render the website from the executed notebooks; return the path of
    ``index.html``.

    The book's sources are staged in ``_build/src`` with each chapter
    replaced by its executed copy and the execution page filled with
    :func:`~xentlib.book.report.execution_report`, and Jupyter Book renders
    them with execution off and warnings treated as errors.
    """
    src = root / "_build" / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in _SITE_FILES:
        shutil.copy2(root / name, src / name)
    for page in root.glob("*.md"):
        if page.name != "README.md":
            shutil.copy2(page, src / page.name)
    shutil.copytree(
        root / "chapters",
        src / "chapters",
        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"),
    )
    for run in runs:
        shutil.copy2(run.executed, src / "chapters" / run.executed.name)
    report = src / "execution.md"
    if report.is_file():
        text = report.read_text()
        if EXECUTION_MARKER not in text:
            raise ValueError(
                f"execution.md lacks the line {EXECUTION_MARKER!r} to put the"
                " report at"
            )
        report.write_text(
            text.replace(EXECUTION_MARKER, execution_report(root, runs))
        )
    html = root / "_build" / "html"
    if html.exists():
        shutil.rmtree(html)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jupyter_book),
        "build",
        str(src),
        "--path-output",
        str(root),
        "--builder",
        "html",
        "--all",
        "--warningiserror",
        "--keep-going",
    ]
    subprocess.run(cmd, check=True, cwd=root)
    return html / "index.html"

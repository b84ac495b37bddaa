"""The Sphinx extension of the book's website.

Listed in ``_config.yml`` under ``sphinx.extra_extensions`` as
``xentlib.book``, whose :func:`setup` is this module's. Each function and
class of the API reference links back to the chapters that use it
(:func:`chapter_usage`, :func:`book_note`), and each page loads every script
once and starts without console errors.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from .toc import chapters

__all__ = ["book_note", "chapter_usage", "setup"]


def _code_of(notebook) -> str:
    """A notebook's code cells as one Python module, with IPython magics and
    shell lines blanked."""
    lines = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            lines += [
                "" if line.lstrip().startswith(("%", "!")) else line
                for line in cell.source.splitlines()
            ]
    return "\n".join(lines)


def _xentlib_object(dotted: str):
    """The object that a dotted name starting with ``xentlib`` refers to, or
    None."""
    import importlib

    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if not hasattr(obj, part):
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
                continue
            except ImportError:
                return None
        obj = getattr(obj, part)
    return obj


def _qualified_name(obj) -> str | None:
    import types

    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module, qualname = (
        getattr(obj, "__module__", None),
        getattr(obj, "__qualname__", None),
    )
    if module and qualname and module.startswith("xentlib"):
        return f"{module}.{qualname}"
    return None


def _names_used(code: str) -> set[str]:
    """The dotted xentlib names (``xentlib.losses.cross_entropy``) that a
    chapter's code imports or uses."""
    tree = ast.parse(code)
    aliases: dict[str, str] = {}  # local name -> dotted xentlib name
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "xentlib":
                    aliases[a.asname or a.name.split(".")[0]] = (
                        a.name if a.asname else "xentlib"
                    )
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "xentlib"
        ):
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                used.add(f"{node.module}.{a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                used.add(".".join([aliases[base.id], *reversed(chain)]))
    return used


def chapter_usage(root: Path) -> dict[str, list[str]]:
    """Which chapters use each xentlib function, class and module, in
    reading order.

    Maps qualified names (``"xentlib.losses.cross_entropy"``, or a module
    such as ``"xentlib.losses"``) to the stems of the chapters whose code
    imports or calls them, however they are imported
    (``xentlib.cross_entropy`` counts for ``xentlib.losses.cross_entropy``).
    A module counts as used by every chapter that uses anything in it. The
    API reference links each function back to the first of these chapters,
    the one that introduces it.
    """
    import nbformat

    usage: dict[str, list[str]] = {}
    for path in chapters(root):
        found = set()
        for dotted in _names_used(_code_of(nbformat.read(path, as_version=4))):
            obj = _xentlib_object(dotted)
            name = _qualified_name(obj) if obj is not None else None
            if name:
                found.add(name)
                found.add(getattr(obj, "__module__", None) or name)
        for name in sorted(n for n in found if n):
            usage.setdefault(name, []).append(path.stem)
    return usage


def _doc_link(stem: str, text: str | None = None) -> str:
    return (
        f":doc:`{text} </chapters/{stem}>`"
        if text
        else f":doc:`/chapters/{stem}`"
    )


def _chapter_number(stem: str) -> str:
    return stem.split("_")[0].lstrip("0") or "0"


def book_note(
    name: str,
    usage: dict[str, list[str]],
    docs: tuple[str | None, ...] = (),
    stems: tuple[str, ...] = (),
) -> list[str]:
    """The reST lines that link a documented xentlib object back to the
    chapters that use it.

    ``usage`` is :func:`chapter_usage`. An object that no chapter calls itself
    links to its module's first chapter; failing that, to the first chapter
    that ``docs`` (its own docstring, then its module's) name as "chapter N",
    among the chapter ``stems``.
    """
    direct = usage.get(name, [])
    if direct:
        first, rest = direct[0], direct[1:]
        line = f"*In the book:* introduced in {_doc_link(first)}"
        if rest:
            line += "; also used in chapter" + ("s " if len(rest) > 1 else " ")
            line += ", ".join(_doc_link(s, _chapter_number(s)) for s in rest)
        return ["", line + "."]
    module = name.rsplit(".", 1)[0]
    while module and module not in usage:
        module = module.rsplit(".", 1)[0] if "." in module else ""
    if module:
        return [
            "",
            (
                "*In the book:* not called by a chapter itself; its module is"
                f" introduced in {_doc_link(usage[module][0])}."
            ),
        ]
    by_number = {_chapter_number(stem): stem for stem in stems}
    for doc in docs:
        for number in re.findall(r"[Cc]hapters? (\d+)", doc or ""):
            if number in by_number:
                return [
                    "",
                    (
                        "*In the book:* used behind the scenes in"
                        f" {_doc_link(by_number[number])}."
                    ),
                ]
    return []


def _add_book_note(app, what, name, obj, options, lines) -> None:
    if what not in ("function", "class"):
        return
    if not hasattr(app, "_xentlib_usage"):
        app._xentlib_usage = chapter_usage(Path(app.srcdir))
        app._xentlib_stems = tuple(
            path.stem for path in chapters(Path(app.srcdir))
        )
    qualified = _qualified_name(obj) or name
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    docs = (getattr(obj, "__doc__", None), getattr(module, "__doc__", None))
    lines.extend(
        book_note(qualified, app._xentlib_usage, docs, app._xentlib_stems)
    )


def _drop_repeated_scripts(
    app, pagename, templatename, context, doctree
) -> None:
    # Jupyter Book 1 sets up sphinx-thebe and sphinx-togglebutton twice, so
    # each page declared `const THEBE_JS_URL` twice: a JavaScript error on
    # every page.
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # an inline script is registered with filename None or "", depending
        # on the extension
        key = (
            str(getattr(js, "filename", js) or ""),
            tuple(sorted(getattr(js, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


#: The theme reads the colour mode from localStorage, which is empty on a
#: first visit, and logs a console error before falling back to "auto"; start
#: at "auto".
_DEFAULT_MODE_JS = (
    "if (!document.documentElement.dataset.mode) {"
    ' document.documentElement.dataset.mode = "auto"; }'
)


def setup(app):
    """Sphinx extension for the book's site.

    Each function and class of the API reference links back to the chapters
    that use it (:func:`book_note`), and each page loads every script once and
    starts without console errors. Listed in ``_config.yml`` under
    ``sphinx.extra_extensions`` as ``xentlib.book``.
    """
    app.connect("autodoc-process-docstring", _add_book_note)
    app.connect(
        "html-page-context", _drop_repeated_scripts, priority=100
    )  # before handlers that end the event
    app.add_js_file(None, body=_DEFAULT_MODE_JS, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

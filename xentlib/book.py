"""Executing, checking and rendering the book.

Every chapter notebook listed in ``_toc.yml`` is executed once with papermill
into ``_build/executed/<stem>.ipynb``; the results it recorded with
:func:`xentlib.record` are collected into ``_build/results/<stem>.json`` (a flat
JSON object, name -> number) and can be compared with the expectations stored
in ``tests/expected/<stem>.json``. The website is then rendered by Jupyter
Book from the executed copies, without executing anything again.

The Makefile drives this module; from a shell in the repository::

    python -m xentlib.book build      # execute every chapter, then render the site
    python -m xentlib.book execute 01_surprise_and_cross_entropy
    python -m xentlib.book expected   # deliberately rewrite tests/expected/*.json

An expectation file maps each result name to a specification::

    {"coin_kl_nats": {"value": 0.1111, "rtol": 1e-9, "atol": 1e-12},
     "max_abs_diff_torch_float32": {"value": 6e-08, "atol": 1e-06, "max": 1e-06}}

``value`` with ``rtol``/``atol`` pins the number of a regenerated run
(``|x - value| <= atol + rtol * |value|``); ``min`` and ``max`` are the bounds
the book plan demands, which no regeneration may move.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .results import RECORD_METADATA_KEY

__all__ = [
    "ChapterRun",
    "book_note",
    "build_site",
    "chapter_title",
    "chapter_usage",
    "chapters",
    "collapse_progress_output",
    "compare_results",
    "execute_book",
    "execute_chapter",
    "execution_report",
    "find_root",
    "load_expected",
    "write_expected",
]

#: Tolerances given to a result that has no stored expectation yet.
DEFAULT_TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}


@dataclass
class ChapterRun:
    """The outcome of executing one chapter."""

    stem: str
    seconds: float
    executed: Path
    results: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder at or above ``start`` holding ``_toc.yml``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"no _toc.yml found at or above {here}; run this from the book's"
        " repository"
    )


def _toc_files(entry) -> list[str]:
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


def extract_results(notebook) -> dict[str, float]:
    """Collect the values recorded with :func:`xentlib.record` from an executed notebook."""
    results: dict[str, float] = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {})
            if not meta.get(RECORD_METADATA_KEY):
                continue
            name = meta["scrapbook"]["name"]
            text = output["data"][
                meta["scrapbook"]["mime_prefix"] + "text/plain"
            ]
            if name in results:
                raise ValueError(
                    f"result {name!r} is recorded twice in one notebook"
                )
            results[name] = ast.literal_eval(text)
    return results


def _terminal_text(text: str) -> str:
    """What a terminal shows for ``text``: each carriage return rewinds to the start of its line."""
    lines = []
    for line in text.split("\n"):
        parts = [part for part in line.split("\r") if part]
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines)


def collapse_progress_output(notebook) -> bool:
    """Merge each cell's stream outputs by stream and keep only what a terminal would show.

    A progress bar (tqdm) that is not attached to a terminal redraws itself by
    writing ``"\r"`` and the new state, so an executed notebook holds every state
    it went through, and a rendered page would show them all, one per line. This
    joins each cell's stdout outputs into one and its stderr outputs into one
    (where the first of each was; the site merges them so anyway), then keeps
    the last state of each line, as a terminal does. Returns whether anything
    changed; the notebook is modified in place.
    """
    changed = False
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.get("outputs"):
            continue
        merged, first = [], {}
        for output in cell.outputs:
            if (
                output.get("output_type") == "stream"
                and output["name"] in first
            ):
                first[output["name"]]["text"] += output["text"]
                changed = True
                continue
            if output.get("output_type") == "stream":
                first[output["name"]] = output
            merged.append(output)
        for output in merged:
            if (
                output.get("output_type") == "stream"
                and "\r" in output["text"]
            ):
                output["text"] = _terminal_text(output["text"])
                changed = True
        cell.outputs = merged
    return changed


def chapter_title(path: Path) -> str:
    """The title of a chapter notebook: the text of its first Markdown heading."""
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def _code_of(notebook) -> str:
    """A notebook's code cells as one Python module, with IPython magics and shell lines blanked."""
    lines = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            lines += [
                "" if line.lstrip().startswith(("%", "!")) else line
                for line in cell.source.splitlines()
            ]
    return "\n".join(lines)


def _xentlib_object(dotted: str):
    """The object that a dotted name starting with ``xentlib`` refers to, or None."""
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
    """The dotted xentlib names (``xentlib.losses.cross_entropy``) that a chapter's code imports or uses."""
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
    """Which chapters use each xentlib function, class and module, in reading order.

    Maps qualified names (``"xentlib.losses.cross_entropy"``, or a module such as
    ``"xentlib.losses"``) to the stems of the chapters whose code imports or
    calls them, however they are imported (``xentlib.cross_entropy`` counts for
    ``xentlib.losses.cross_entropy``). A module counts as used by every chapter
    that uses anything in it. The API reference links each function back to
    the first of these chapters, the one that introduces it.
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
    """The reST lines that link a documented xentlib object back to the chapters that use it.

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
    # Jupyter Book 1 sets up sphinx-thebe and sphinx-togglebutton twice, so each
    # page declared `const THEBE_JS_URL` twice: a JavaScript error on every page.
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # an inline script is registered with filename None or "", depending on the extension
        key = (
            str(getattr(js, "filename", js) or ""),
            tuple(sorted(getattr(js, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


#: The theme reads the colour mode from localStorage, which is empty on a first
#: visit, and logs a console error before falling back to "auto"; start at "auto".
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


def execute_chapter(
    path: Path,
    root: Path,
    parameters: dict | None = None,
    build_dir: Path | None = None,
) -> ChapterRun:
    """Execute one chapter with papermill and write its executed copy and results.

    The executed notebook goes to ``<build_dir>/executed/<stem>.ipynb`` and the
    recorded results to ``<build_dir>/results/<stem>.json``; ``build_dir``
    defaults to ``<root>/_build``. ``parameters`` override the chapter's
    parameters cell (papermill injects them after it). The kernel runs in the
    chapter's folder, as in JupyterLab. A failing chapter is reported in
    :attr:`ChapterRun.error`, not raised.
    """
    import nbformat
    import papermill

    build_dir = Path(build_dir) if build_dir is not None else root / "_build"
    executed_dir = build_dir / "executed"
    results_dir = build_dir / "results"
    executed_dir.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    out = executed_dir / path.name
    results_file = results_dir / f"{path.stem}.json"
    results_file.unlink(missing_ok=True)
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(path),
            str(out),
            parameters=parameters or {},
            kernel_name="python3",
            cwd=str(path.parent),
            progress_bar=False,
        )
    except (
        Exception
    ) as err:  # papermill raises its own PapermillExecutionError
        error = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    run = ChapterRun(
        stem=path.stem, seconds=seconds, executed=out, error=error
    )
    executed = nbformat.read(out, as_version=4) if out.is_file() else None
    if executed is not None and collapse_progress_output(executed):
        nbformat.write(executed, out)
    if error is None:
        try:
            run.results = extract_results(executed)
        except (ValueError, KeyError, SyntaxError) as err:
            run.error = f"could not collect recorded results: {err}"
        else:
            results_file.write_text(
                json.dumps(run.results, indent=2, sort_keys=True) + "\n"
            )
    return run


def execute_book(
    root: Path, stems: list[str] | None = None
) -> list[ChapterRun]:
    """Execute the chapters (all, or those whose stems are given) in order."""
    paths = chapters(root)
    if stems:
        unknown = set(stems) - {p.stem for p in paths}
        if unknown:
            raise ValueError(
                f"unknown chapter(s) {sorted(unknown)}; _toc.yml lists"
                f" {[p.stem for p in paths]}"
            )
        paths = [p for p in paths if p.stem in stems]
    runs = []
    for path in paths:
        print(f"executing {path.relative_to(root)} ...", flush=True)
        run = execute_chapter(path, root)
        status = "ok" if run.error is None else "FAILED"
        print(
            f"  {status} in {run.seconds:.1f} s, {len(run.results)} results",
            flush=True,
        )
        runs.append(run)
    return runs


def timing_table(runs: list[ChapterRun]) -> str:
    """A plain-text table of each chapter's execution time."""
    width = max([len(r.stem) for r in runs] + [len("chapter")])
    lines = [
        f"{'chapter':<{width}}  {'seconds':>8}  {'results':>7}  status",
        f"{'-' * width}  {'-' * 8}  {'-' * 7}  ------",
    ]
    for r in runs:
        lines.append(
            f"{r.stem:<{width}}  {r.seconds:8.1f}  {len(r.results):7d} "
            f" {'ok' if r.error is None else 'FAILED'}"
        )
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in runs):8.1f}")
    return "\n".join(lines)


def expected_path(root: Path, stem: str) -> Path:
    return root / "tests" / "expected" / f"{stem}.json"


def load_expected(root: Path, stem: str) -> dict[str, dict]:
    """The stored expectations of one chapter (empty if none are stored)."""
    path = expected_path(root, stem)
    return json.loads(path.read_text()) if path.is_file() else {}


def compare_results(
    stem: str, results: dict[str, float], expected: dict[str, dict]
) -> list[str]:
    """Every way the recorded ``results`` of chapter ``stem`` leave their expectations.

    Returns a list of messages, each naming the chapter, the result, the value
    and the expectation; an empty list means the chapter passes.
    """
    failures = []
    for name in sorted(set(expected) - set(results)):
        failures.append(
            f"{stem}: result {name!r} is expected but was not recorded"
        )
    for name in sorted(set(results) - set(expected)):
        failures.append(
            f"{stem}: result {name!r} = {results[name]!r} has no stored"
            " expectation (add it with `make expected`)"
        )
    for name in sorted(set(results) & set(expected)):
        x, spec = results[name], expected[name]
        if not math.isfinite(x):
            failures.append(f"{stem}: result {name!r} = {x!r} is not finite")
            continue
        if "value" in spec:
            value = spec["value"]
            rtol, atol = spec.get("rtol", 0.0), spec.get("atol", 0.0)
            allowed = atol + rtol * abs(value)
            if abs(x - value) > allowed:
                failures.append(
                    f"{stem}: result {name!r} = {x!r}, expected {value!r}"
                    f" within {allowed:.3g} (rtol={rtol:g}, atol={atol:g});"
                    f" off by {abs(x - value):.3g}"
                )
        if "min" in spec and x < spec["min"]:
            failures.append(
                f"{stem}: result {name!r} = {x!r} is below its required"
                f" minimum {spec['min']!r}"
            )
        if "max" in spec and x > spec["max"]:
            failures.append(
                f"{stem}: result {name!r} = {x!r} is above its required"
                f" maximum {spec['max']!r}"
            )
    return failures


def write_expected(root: Path, run: ChapterRun) -> list[str]:
    """Rewrite ``tests/expected/<stem>.json`` from a fresh run, keeping tolerances and bounds.

    New results get :data:`DEFAULT_TOLERANCE` (review them); results no longer
    recorded are dropped. Refuses (returns the violations, writes nothing) when
    a fresh value breaks a ``min``/``max`` bound: those are the plan's
    requirements, not regression pins.
    """
    old = load_expected(root, run.stem)
    new, notes = {}, []
    for name, value in sorted(run.results.items()):
        spec = dict(old.get(name, DEFAULT_TOLERANCE))
        if name not in old:
            notes.append(
                f"{run.stem}: new result {name!r} = {value!r} with default"
                f" tolerance {DEFAULT_TOLERANCE}; review it"
            )
        if (
            "min" in spec
            and value < spec["min"]
            or "max" in spec
            and value > spec["max"]
        ):
            raise ValueError(
                f"{run.stem}: result {name!r} = {value!r} breaks its bounds"
                f" [{spec.get('min', '-inf')}, {spec.get('max', 'inf')}]; not"
                " rewriting expectations"
            )
        spec["value"] = value
        new[name] = {
            k: spec[k]
            for k in ("value", "rtol", "atol", "min", "max")
            if k in spec
        }
    for name in sorted(set(old) - set(run.results)):
        notes.append(
            f"{run.stem}: dropped result {name!r} (no longer recorded)"
        )
    path = expected_path(root, run.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(new, indent=2) + "\n")
    return notes


_SITE_FILES = ("_config.yml", "_toc.yml", "references.bib")
#: The line of ``execution.md`` that :func:`build_site` replaces with the execution report.
EXECUTION_MARKER = "<!-- execution report -->"


def _machine_description() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        device = f"CUDA GPU ({torch.cuda.get_device_name(0)})"
    else:
        device = (
            f"CPU ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"
        )
    return (
        f"Python {platform.python_version()}, PyTorch {torch.__version__}, "
        f"{platform.system()} {platform.machine()}; chapters with `device ="
        f' "auto"` ran on: {device}'
    )


def execution_report(root: Path, runs: list[ChapterRun]) -> str:
    """A Markdown table of the run the site was built from: time, results and regression of each chapter."""
    rows = [
        (
            "| chapter | run time (s) | recorded results | against"
            " expectations | status |"
        ),
        "|---|--:|--:|---|---|",
    ]
    for run in runs:
        failures = compare_results(
            run.stem, run.results, load_expected(root, run.stem)
        )
        check = "all within" if not failures else f"{len(failures)} outside"
        status = "ok" if run.error is None else "failed"
        rows.append(
            f"| [{chapter_title(run.executed)}](chapters/{run.stem}.ipynb) |"
            f" {run.seconds:.1f} | {len(run.results)} | {check} | {status} |"
        )
    total = sum(run.seconds for run in runs)
    rows.append(
        f"| **all {len(runs)} chapters** | **{total:.1f}** | "
        f"**{sum(len(r.results) for r in runs)}** | | |"
    )
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    return "\n".join(
        [f"Built on {when}. {_machine_description()}.", "", *rows]
    )


def build_site(root: Path, runs: list[ChapterRun]) -> Path:
    """Render the website from the executed notebooks; return the path of ``index.html``.

    The book's sources are staged in ``_build/src`` with each chapter replaced
    by its executed copy, and Jupyter Book renders them with execution off and
    warnings treated as errors.
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


def _report_failures(runs: list[ChapterRun]) -> bool:
    """Print each failed chapter's error; return whether any failed."""
    failed = [r for r in runs if r.error]
    for r in failed:
        print(f"\n{r.stem} FAILED:\n{r.error}", file=sys.stderr)
    return bool(failed)


def _cmd_execute(root: Path, stems: list[str]) -> int:
    runs = execute_book(root, stems)
    print("\n" + timing_table(runs))
    return 1 if _report_failures(runs) else 0


def _cmd_build(root: Path) -> int:
    runs = execute_book(root)
    if _report_failures(runs):
        print("\n" + timing_table(runs))
        return 1
    start = time.perf_counter()
    try:
        index = build_site(root, runs)
    except subprocess.CalledProcessError:
        print("\n" + timing_table(runs))
        print(
            "\nrendering FAILED: Jupyter Book reported errors or warnings (see"
            " above)",
            file=sys.stderr,
        )
        return 1
    render = time.perf_counter() - start
    print("\n" + timing_table(runs))
    print(f"\nrendered the site in {render:.1f} s")
    print(f"open {index}")
    return 0


def _cmd_expected(root: Path, stems: list[str]) -> int:
    runs = execute_book(root, stems)
    print("\n" + timing_table(runs))
    if _report_failures(runs):
        print(
            "not rewriting any expectations: a chapter failed", file=sys.stderr
        )
        return 1
    for run in runs:
        for note in write_expected(root, run):
            print(note)
        print(f"wrote {expected_path(root, run.stem).relative_to(root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xentlib.book", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the repository root (default: found from here)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "execute", help="execute chapters and write their recorded results"
    )
    p.add_argument("stems", nargs="*", help="chapter stems (default: all)")
    sub.add_parser(
        "build", help="execute every chapter, then render the website"
    )
    p = sub.add_parser(
        "expected", help="rewrite tests/expected from a fresh execution"
    )
    p.add_argument("stems", nargs="*", help="chapter stems (default: all)")
    args = parser.parse_args(argv)
    root = find_root(args.root)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if args.command == "execute":
        return _cmd_execute(root, args.stems)
    if args.command == "build":
        return _cmd_build(root)
    return _cmd_expected(root, args.stems)


if __name__ == "__main__":
    sys.exit(main())

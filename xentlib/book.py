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
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .results import RECORD_METADATA_KEY

__all__ = [
    "ChapterRun",
    "build_site",
    "chapters",
    "compare_results",
    "execute_book",
    "execute_chapter",
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
    raise FileNotFoundError(f"no _toc.yml found at or above {here}; run this from the book's repository")


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
                raise FileNotFoundError(f"_toc.yml lists {name}, but neither {name}.ipynb nor {name}.md exists")
            path = existing[0]
        elif not path.is_file():
            raise FileNotFoundError(f"_toc.yml lists {name}, but {path} does not exist")
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
            text = output["data"][meta["scrapbook"]["mime_prefix"] + "text/plain"]
            if name in results:
                raise ValueError(f"result {name!r} is recorded twice in one notebook")
            results[name] = ast.literal_eval(text)
    return results


def execute_chapter(
    path: Path, root: Path, parameters: dict | None = None, build_dir: Path | None = None
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
    except Exception as err:  # papermill raises its own PapermillExecutionError
        error = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    run = ChapterRun(stem=path.stem, seconds=seconds, executed=out, error=error)
    if error is None:
        try:
            run.results = extract_results(nbformat.read(out, as_version=4))
        except (ValueError, KeyError, SyntaxError) as err:
            run.error = f"could not collect recorded results: {err}"
        else:
            results_file.write_text(json.dumps(run.results, indent=2, sort_keys=True) + "\n")
    return run


def execute_book(root: Path, stems: list[str] | None = None) -> list[ChapterRun]:
    """Execute the chapters (all, or those whose stems are given) in order."""
    paths = chapters(root)
    if stems:
        unknown = set(stems) - {p.stem for p in paths}
        if unknown:
            raise ValueError(f"unknown chapter(s) {sorted(unknown)}; _toc.yml lists {[p.stem for p in paths]}")
        paths = [p for p in paths if p.stem in stems]
    runs = []
    for path in paths:
        print(f"executing {path.relative_to(root)} ...", flush=True)
        run = execute_chapter(path, root)
        status = "ok" if run.error is None else "FAILED"
        print(f"  {status} in {run.seconds:.1f} s, {len(run.results)} results", flush=True)
        runs.append(run)
    return runs


def timing_table(runs: list[ChapterRun]) -> str:
    """A plain-text table of each chapter's execution time."""
    width = max([len(r.stem) for r in runs] + [len("chapter")])
    lines = [f"{'chapter':<{width}}  {'seconds':>8}  {'results':>7}  status",
             f"{'-' * width}  {'-' * 8}  {'-' * 7}  ------"]
    for r in runs:
        lines.append(f"{r.stem:<{width}}  {r.seconds:8.1f}  {len(r.results):7d}  {'ok' if r.error is None else 'FAILED'}")
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in runs):8.1f}")
    return "\n".join(lines)


def expected_path(root: Path, stem: str) -> Path:
    return root / "tests" / "expected" / f"{stem}.json"


def load_expected(root: Path, stem: str) -> dict[str, dict]:
    """The stored expectations of one chapter (empty if none are stored)."""
    path = expected_path(root, stem)
    return json.loads(path.read_text()) if path.is_file() else {}


def compare_results(stem: str, results: dict[str, float], expected: dict[str, dict]) -> list[str]:
    """Every way the recorded ``results`` of chapter ``stem`` leave their expectations.

    Returns a list of messages, each naming the chapter, the result, the value
    and the expectation; an empty list means the chapter passes.
    """
    failures = []
    for name in sorted(set(expected) - set(results)):
        failures.append(f"{stem}: result {name!r} is expected but was not recorded")
    for name in sorted(set(results) - set(expected)):
        failures.append(f"{stem}: result {name!r} = {results[name]!r} has no stored expectation "
                        f"(add it with `make expected`)")
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
                failures.append(f"{stem}: result {name!r} = {x!r}, expected {value!r} within "
                                f"{allowed:.3g} (rtol={rtol:g}, atol={atol:g}); off by {abs(x - value):.3g}")
        if "min" in spec and x < spec["min"]:
            failures.append(f"{stem}: result {name!r} = {x!r} is below its required minimum {spec['min']!r}")
        if "max" in spec and x > spec["max"]:
            failures.append(f"{stem}: result {name!r} = {x!r} is above its required maximum {spec['max']!r}")
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
            notes.append(f"{run.stem}: new result {name!r} = {value!r} with default tolerance {DEFAULT_TOLERANCE}; review it")
        if "min" in spec and value < spec["min"] or "max" in spec and value > spec["max"]:
            raise ValueError(f"{run.stem}: result {name!r} = {value!r} breaks its bounds "
                             f"[{spec.get('min', '-inf')}, {spec.get('max', 'inf')}]; not rewriting expectations")
        spec["value"] = value
        new[name] = {k: spec[k] for k in ("value", "rtol", "atol", "min", "max") if k in spec}
    for name in sorted(set(old) - set(run.results)):
        notes.append(f"{run.stem}: dropped result {name!r} (no longer recorded)")
    path = expected_path(root, run.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(new, indent=2) + "\n")
    return notes


_SITE_FILES = ("_config.yml", "_toc.yml", "references.bib")


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
    shutil.copytree(root / "chapters", src / "chapters",
                    ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    for run in runs:
        shutil.copy2(run.executed, src / "chapters" / run.executed.name)
    html = root / "_build" / "html"
    if html.exists():
        shutil.rmtree(html)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jupyter_book), "build", str(src), "--path-output", str(root),
           "--builder", "html", "--all", "--warningiserror", "--keep-going"]
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
        print("\nrendering FAILED: Jupyter Book reported errors or warnings (see above)", file=sys.stderr)
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
        print("not rewriting any expectations: a chapter failed", file=sys.stderr)
        return 1
    for run in runs:
        for note in write_expected(root, run):
            print(note)
        print(f"wrote {expected_path(root, run.stem).relative_to(root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xentlib.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="the repository root (default: found from here)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("execute", help="execute chapters and write their recorded results")
    p.add_argument("stems", nargs="*", help="chapter stems (default: all)")
    sub.add_parser("build", help="execute every chapter, then render the website")
    p = sub.add_parser("expected", help="rewrite tests/expected from a fresh execution")
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

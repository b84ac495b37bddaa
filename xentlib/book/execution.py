"""Executing one chapter: papermill runs the notebook, the executed copy keeps
what a terminal would show, and the results it recorded are collected.

The executed notebook goes to ``<build_dir>/executed/<stem>.ipynb`` and the
results it recorded with :func:`xentlib.record` to
``<build_dir>/results/<stem>.json`` (a flat JSON object, name -> number).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..results import RECORD_METADATA_KEY

__all__ = [
    "THREAD_VARIABLES",
    "ChapterRun",
    "collapse_progress_output",
    "execute_chapter",
    "extract_results",
]

#: The environment variables that set how many threads a chapter's kernel
#: uses: torch's intra-op pool and the BLAS libraries read them at start-up.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class ChapterRun:
    """The outcome of executing one chapter.

    ``seconds`` is the wall time of the execution, kernel start-up included;
    for a chapter reused from the cache (``reused``), the time of the
    execution that made the reused copy, which finished at ``finished``.
    ``cpu_seconds`` is the CPU time the kernel used (user and system; None
    where it could not be measured), which other work on a busy machine does
    not inflate as it does the wall time. ``threads`` is the thread count the
    kernel was given (None: torch's default).
    """

    stem: str
    seconds: float
    executed: Path
    results: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    reused: bool = False
    finished: str | None = None
    threads: int | None = None
    cpu_seconds: float | None = None


def extract_results(notebook) -> dict[str, float]:
    """Collect the values recorded with :func:`xentlib.record` from an
    executed notebook."""
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
    """What a terminal shows for ``text``: each carriage return rewinds to the
    start of its line."""
    lines = []
    for line in text.split("\n"):
        parts = [part for part in line.split("\r") if part]
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines)


def collapse_progress_output(notebook) -> bool:
    """Merge each cell's stream outputs by stream and keep only what a
    terminal would show.

    A progress bar (tqdm) that is not attached to a terminal redraws itself
    by writing ``"\\r"`` and the new state, so an executed notebook holds
    every state it went through, and a rendered page would show them all, one
    per line. This joins each cell's stdout outputs into one and its stderr
    outputs into one (where the first of each was; the site merges them so
    anyway), then keeps the last state of each line, as a terminal does.
    Returns whether anything changed; the notebook is modified in place.
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


def _children_cpu_seconds() -> float | None:
    """CPU time used so far by this process's finished child processes."""
    try:
        import resource
    except ImportError:  # not on a Unix
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _kernel_threads(threads: int | None):
    """Start kernels inside this block with ``threads`` threads: the kernel
    inherits this process's environment when papermill launches it."""
    if threads is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_chapter(
    path: Path,
    root: Path,
    parameters: dict | None = None,
    build_dir: Path | None = None,
    threads: int | None = None,
) -> ChapterRun:
    """Execute one chapter with papermill and write its executed copy and
    results.

    The executed notebook goes to ``<build_dir>/executed/<stem>.ipynb`` and
    the recorded results to ``<build_dir>/results/<stem>.json``;
    ``build_dir`` defaults to ``<root>/_build``. ``parameters`` override the
    chapter's parameters cell (papermill injects them after it). The kernel
    runs in the chapter's folder, as in JupyterLab, with ``threads`` threads
    for torch and the BLAS libraries (None: their default, one per core). A
    failing chapter is reported in :attr:`ChapterRun.error`, not raised.
    The kernel's CPU time is measured as that of the child processes which
    finished meanwhile, so nothing else should start and end child processes
    of this process while it executes.
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
    cpu_start = _children_cpu_seconds()
    start = time.perf_counter()
    error = None
    try:
        with _kernel_threads(threads):
            papermill.execute_notebook(
                str(path),
                str(out),
                parameters=parameters or {},
                kernel_name="python3",
                cwd=str(path.parent),
                progress_bar=False,
                # the kernel's own log (not the cells' output) warns on
                # every start that it talks over local TCP: noise here
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
    except Exception as err:  # papermill raises PapermillExecutionError
        error = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    cpu_end = _children_cpu_seconds()
    run = ChapterRun(
        stem=path.stem,
        seconds=seconds,
        executed=out,
        error=error,
        finished=time.strftime("%Y-%m-%d %H:%M %Z"),
        threads=threads,
        cpu_seconds=None if cpu_start is None else cpu_end - cpu_start,
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

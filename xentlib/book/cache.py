"""Reusing a chapter's last execution when none of its inputs changed.

A chapter's *inputs* are everything its executed notebook and recorded
results can depend on: the notebook's bytes, xentlib's sources, the data
files, the locked requirements, the parameters papermill injects, the thread
count of its kernel, the Python version and the machine's architecture and
accelerator. :func:`input_key` hashes them into one key. After a successful
execution, :func:`store` writes a record beside the executed notebook,
``<build_dir>/executed/<stem>.cache.json``, holding that key, the execution's
time and a digest of the executed notebook and results it wrote;
:func:`reuse` returns that execution again only if the key is the same and
both files are still the ones that execution wrote.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

from .execution import ChapterRun

__all__ = [
    "LOCK_FILE",
    "forget",
    "input_key",
    "last_seconds",
    "record_path",
    "reuse",
    "shared_digest",
    "store",
]

#: The lock of every package the book installs, at exact versions.
LOCK_FILE = "requirements.lock"
#: Bumped when what the key covers changes, so older records stop matching.
_KEY_VERSION = "1"


def _files_under(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def _shared_inputs(root: Path) -> list[Path]:
    """The files every chapter depends on: xentlib's sources, the data and
    the lock (or, where there is none, the requirements)."""
    lock = root / LOCK_FILE
    return [
        *(p for p in _files_under(root / "xentlib") if p.suffix == ".py"),
        *_files_under(root / "data"),
        lock if lock.is_file() else root / "requirements.txt",
    ]


def _accelerator() -> str:
    # Whether CUDA devices are present, without importing torch (seconds).
    return "cuda" if Path("/dev/nvidia0").exists() else "none"


def input_key(
    root: Path,
    path: Path,
    parameters: dict | None,
    threads: int | None,
    shared: str | None = None,
) -> str:
    """The hash of every input of chapter ``path`` (see the module's
    docstring). ``shared`` is :func:`shared_digest` of ``root``, computed once
    for a whole build; None computes it here."""
    digest = hashlib.sha256()
    settings = {
        "version": _KEY_VERSION,
        "parameters": parameters or {},
        "threads": threads,
        "python": sys.version,
        "machine": platform.machine(),
        "accelerator": _accelerator(),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update((shared or shared_digest(root)).encode())
    digest.update(path.read_bytes())
    return digest.hexdigest()


def shared_digest(root: Path) -> str:
    """The hash of the inputs that all chapters share (names and bytes)."""
    digest = hashlib.sha256()
    for file in _shared_inputs(root):
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def record_path(build_dir: Path, stem: str) -> Path:
    return build_dir / "executed" / f"{stem}.cache.json"


def _results_path(build_dir: Path, stem: str) -> Path:
    return build_dir / "results" / f"{stem}.json"


def _file_digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_record(build_dir: Path, stem: str) -> dict | None:
    try:
        return json.loads(record_path(build_dir, stem).read_text())
    except (OSError, ValueError):
        return None


def store(build_dir: Path, run: ChapterRun, key: str) -> None:
    """Record a successful execution ``run`` under ``key``."""
    record = {
        "key": key,
        "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "finished": run.finished,
        "threads": run.threads,
        "executed": _file_digest(run.executed),
        "results": _file_digest(_results_path(build_dir, run.stem)),
    }
    record_path(build_dir, run.stem).write_text(
        json.dumps(record, indent=2) + "\n"
    )


def forget(build_dir: Path, stem: str) -> None:
    """Drop the record of chapter ``stem`` (before it executes again)."""
    record_path(build_dir, stem).unlink(missing_ok=True)


def reuse(build_dir: Path, path: Path, key: str) -> ChapterRun | None:
    """The recorded execution of chapter ``path`` if its inputs still hash
    to ``key`` and its executed notebook and results are untouched; else
    None."""
    record = _read_record(build_dir, path.stem)
    if record is None or record.get("key") != key:
        return None
    executed = build_dir / "executed" / path.name
    results = _results_path(build_dir, path.stem)
    if (
        record.get("executed") is None
        or record.get("results") is None
        or record["executed"] != _file_digest(executed)
        or record["results"] != _file_digest(results)
    ):
        return None
    return ChapterRun(
        stem=path.stem,
        seconds=record["seconds"],
        executed=executed,
        results=json.loads(results.read_text()),
        reused=True,
        finished=record.get("finished"),
        threads=record.get("threads"),
        cpu_seconds=record.get("cpu_seconds"),
    )


def last_seconds(build_dir: Path, stem: str) -> float | None:
    """How long chapter ``stem`` took when it last executed successfully
    here, whatever its inputs were then (None if never)."""
    record = _read_record(build_dir, stem)
    return None if record is None else record.get("seconds")

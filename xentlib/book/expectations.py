"""The stored expectations of each chapter's results, and the check of a run
against them.

An expectation file, ``tests/expected/<stem>.json``, maps each result name to
a specification::

    {"coin_kl_nats": {"value": 0.1111, "rtol": 1e-9, "atol": 1e-12},
     "max_abs_diff_torch_float32": {"value": 6e-08, "atol": 1e-06,
                                    "max": 1e-06}}

``value`` with ``rtol``/``atol`` pins the number of a regenerated run
(``|x - value| <= atol + rtol * |value|``); ``min`` and ``max`` are the
bounds the book plan demands, which no regeneration may move.

A result measured in wall-clock time (a ratio of two timings, say) is marked
``"timing": true``: a busy machine moves it either way, so neither its pin
nor its ``min`` is checked, only that it is finite and below its ``max``, if
it has one, which is then a bound against a runaway, set well above the
noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from .execution import ChapterRun

__all__ = [
    "DEFAULT_TOLERANCE",
    "compare_results",
    "expected_path",
    "load_expected",
    "write_expected",
]

#: Tolerances given to a result that has no stored expectation yet.
DEFAULT_TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}
_KEYS = ("value", "rtol", "atol", "min", "max", "timing")


def expected_path(root: Path, stem: str) -> Path:
    return root / "tests" / "expected" / f"{stem}.json"


def load_expected(root: Path, stem: str) -> dict[str, dict]:
    """The stored expectations of one chapter (empty if none are stored)."""
    path = expected_path(root, stem)
    return json.loads(path.read_text()) if path.is_file() else {}


def compare_results(
    stem: str, results: dict[str, float], expected: dict[str, dict]
) -> list[str]:
    """Every way the recorded ``results`` of chapter ``stem`` leave their
    expectations.

    Returns a list of messages, each naming the chapter, the result, the
    value and the expectation; an empty list means the chapter passes.
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
        timing = spec.get("timing", False)
        if "value" in spec and not timing:
            value = spec["value"]
            rtol, atol = spec.get("rtol", 0.0), spec.get("atol", 0.0)
            allowed = atol + rtol * abs(value)
            if abs(x - value) > allowed:
                failures.append(
                    f"{stem}: result {name!r} = {x!r}, expected {value!r}"
                    f" within {allowed:.3g} (rtol={rtol:g}, atol={atol:g});"
                    f" off by {abs(x - value):.3g}"
                )
        if "min" in spec and x < spec["min"] and not timing:
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


def _regenerated(
    old: dict[str, dict], run: ChapterRun
) -> tuple[dict[str, dict], list[str], list[str]]:
    """The expectations of ``run`` with its fresh values, the notes for a
    reviewer, and the bounds its values break."""
    new, notes, violations = {}, [], []
    for name, value in sorted(run.results.items()):
        spec = dict(old.get(name, DEFAULT_TOLERANCE))
        if name not in old:
            notes.append(
                f"{run.stem}: new result {name!r} = {value!r} with default"
                f" tolerance {DEFAULT_TOLERANCE}; review it"
            )
        below = "min" in spec and value < spec["min"]
        below = below and not spec.get("timing", False)
        above = "max" in spec and value > spec["max"]
        if below or above:
            violations.append(
                f"{run.stem}: result {name!r} = {value!r} breaks its bounds"
                f" [{spec.get('min', '-inf')}, {spec.get('max', 'inf')}]"
            )
        spec["value"] = value
        new[name] = {k: spec[k] for k in _KEYS if k in spec}
    for name in sorted(set(old) - set(run.results)):
        notes.append(
            f"{run.stem}: dropped result {name!r} (no longer recorded)"
        )
    return new, notes, violations


def write_expected(
    root: Path, runs: ChapterRun | Sequence[ChapterRun]
) -> list[str]:
    """Rewrite ``tests/expected/<stem>.json`` of each run from its fresh
    results, keeping tolerances and bounds; all of them or none.

    New results get :data:`DEFAULT_TOLERANCE` (review them); results no
    longer recorded are dropped. Every run is checked before any file is
    written: if a fresh value breaks a ``min``/``max`` bound (the plan's
    requirements, not regression pins), or a run failed, it raises
    :class:`ValueError` listing every such problem, and writes nothing.
    Returns the notes for a reviewer (new and dropped results).
    """
    runs = [runs] if isinstance(runs, ChapterRun) else list(runs)
    problems = [
        f"{run.stem}: failed to execute: {run.error}"
        for run in runs
        if run.error is not None
    ]
    planned, notes = [], []
    for run in runs:
        new, run_notes, violations = _regenerated(
            load_expected(root, run.stem), run
        )
        planned.append((expected_path(root, run.stem), new))
        notes += run_notes
        problems += violations
    if problems:
        raise ValueError(
            "not rewriting any expectations:\n" + "\n".join(problems)
        )
    for path, new in planned:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(new, indent=2) + "\n")
        partial.replace(path)
    return notes

"""Collect the rows and exemptions of every module's table."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import xentlib

#: Modules whose callables are not part of the library's API: the book's
#: runner is a tool with its own tests (tests/test_book.py).
SKIPPED_MODULES = ("xentlib.book",)


def _tables():
    here = Path(__file__).parent
    for info in sorted(
        pkgutil.iter_modules([str(here)]), key=lambda i: i.name
    ):
        if info.name not in ("table", "__main__"):
            yield importlib.import_module(f"bad_input.{info.name}")


def all_rows():
    return [row for table in _tables() for row in table.ROWS]


def exemptions() -> dict[str, str]:
    found = {}
    for table in _tables():
        found.update(getattr(table, "EXEMPT", {}))
    return found


def public_callables() -> list[str]:
    """Qualified names of every function and class in a module's __all__."""
    names = set()
    for info in pkgutil.walk_packages(xentlib.__path__, "xentlib."):
        # xentlib.data (the data files, as a package) holds no callables;
        # xentlib.datasets does
        in_data = info.name == "xentlib.data" or info.name.startswith(
            "xentlib.data."
        )
        if info.name.startswith(SKIPPED_MODULES) or in_data:
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if callable(obj) and getattr(obj, "__module__", "") == info.name:
                names.add(f"{info.name}.{name}")
    return sorted(names)

"""Recording a chapter's headline numbers.

Every number that a chapter's prose relies on is recorded once, by name, with
:func:`record`. Recording does two things:

* it *glues* the value into the executed notebook (the myst-nb convention), so
  the prose can quote it with ``{glue:text}`name:.3f``` and the rendered book
  shows the number this run computed;
* it marks the output as a recorded result, so the book's runner
  (:mod:`xentlib.book`) can collect every recorded value into
  ``_build/results/<notebook stem>.json`` and the tests can compare them with
  the stored expectations.

In a plain Python session (no IPython), :func:`record` only stores the value.
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np
import torch

__all__ = ["record", "recorded", "clear_recorded", "RECORD_METADATA_KEY"]

#: Output-metadata key that marks a glued output as a recorded result.
RECORD_METADATA_KEY = "xentlib_record"
#: The mime prefix myst-nb uses for glued values that are not displayed.
GLUE_PREFIX = "application/papermill.record/"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_recorded: dict[str, float] = {}


def _as_number(value, name: str) -> float | int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"value of {name!r} must be a single number; got a tensor of"
                f" shape {tuple(value.shape)}"
            )
        value = value.item()
    elif isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(
                f"value of {name!r} must be a single number; got an array of"
                f" shape {value.shape}"
            )
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"value of {name!r} must be finite; got {value}")
        return value
    raise ValueError(
        f"value of {name!r} must be a real number; got {type(value).__name__}"
    )


def record(name: str, value, display: bool = False) -> float | int:
    """Record a headline result of the running chapter under ``name``.

    Parameters
    ----------
    name : str
        A Python-identifier-like name, unique within the chapter
        (``"coin_kl_nats"``).
    value : number, 0-d tensor or 1-element array
        Converted to a Python ``float`` (or ``int`` for integers and booleans);
        must be finite.
    display : bool
        Also show the value in the notebook's output.

    Returns
    -------
    float or int
        The recorded value, so ``x = record("x", compute())`` reads naturally.

    Raises
    ------
    ValueError
        For a malformed name or a value that is not a finite real number.

    Notes
    -----
    Recording a name again (re-running a cell in JupyterLab) replaces the
    value; the book's runner rejects a chapter whose executed notebook
    records one name in two different cells.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"name must be an identifier such as 'coin_kl_nats'; got {name!r}"
        )
    if not isinstance(display, bool):
        raise ValueError(f"display must be True or False; got {display!r}")
    number = _as_number(value, name)
    _recorded[name] = number
    _glue(name, number, display)
    return number


def recorded() -> dict[str, float | int]:
    """All results recorded so far in this process, name -> number."""
    return dict(_recorded)


def clear_recorded() -> None:
    """Forget every recorded result (for tests and re-runs in one kernel)."""
    _recorded.clear()


def _glue(name: str, number: float | int, display: bool) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display as ipy_display
    except ImportError:  # plain Python without IPython: nothing to glue into
        return
    if get_ipython() is None:
        return
    prefix = "" if display else GLUE_PREFIX
    # repr() of a float round-trips exactly and is what myst-nb formats.
    bundle = {prefix + "text/plain": repr(number)}
    metadata = {
        "scrapbook": {"name": name, "mime_prefix": prefix},
        RECORD_METADATA_KEY: True,
    }
    ipy_display(bundle, raw=True, metadata=metadata)

"""The bad-input table: xentlib's public callables, one bad argument at a time.

Each module of xentlib has a file here, ``tests/bad_input/<module>.py``,
holding ``ROWS``: one :class:`Row` per public callable (or several, for a
callable whose arguments depend on each other). A row gives a call that
works (its arguments, each wrapped in :class:`Arg` with the kinds of bad
value that argument must reject) and ``tests/test_bad_input.py`` makes one
argument bad at a time and expects a :class:`ValueError` whose message names
that argument. ``python tests/bad_input`` prints how each case ended
(clear error, cryptic error, accepted, hang) without asserting.

The kinds are functions from the good value to ``(label, bad value)`` pairs,
so that one row yields many cases: :func:`tensor` (not a tensor, wrong
rank, wrong length, empty, NaN, infinities), :func:`class_index` (out of
range, negative, floating), :func:`unit_interval`, :func:`distribution`,
and the scalar kinds (:func:`positive_int`, :func:`positive_real`, ...).
"""

from __future__ import annotations

import copy
import math
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

Kind = Callable[[object], Iterator[tuple[str, object]]]


@dataclass
class Arg:
    """An argument's good value and the kinds of bad value it must reject.

    ``name`` is what the error message must contain when this argument is
    bad; it defaults to the argument's own name.
    """

    good: object
    kinds: tuple[Kind, ...] = ()
    name: str | None = None


@dataclass
class Row:
    """One call of a public callable that works, with its arguments."""

    covers: str  # the qualified name, "xentlib.losses.cross_entropy"
    func: Callable
    args: dict[str, Arg | object] = field(default_factory=dict)
    positional: tuple[str, ...] = ()  # names passed by position, in order
    note: str = ""

    @property
    def id(self) -> str:
        return self.covers.removeprefix("xentlib.") + (
            f"[{self.note}]" if self.note else ""
        )

    def values(self) -> dict[str, object]:
        return {
            k: copy.deepcopy(a.good if isinstance(a, Arg) else a)
            for k, a in self.args.items()
        }

    def call(self, values: dict[str, object]):
        pos = [values[k] for k in self.positional]
        kw = {k: v for k, v in values.items() if k not in self.positional}
        return self.func(*pos, **kw)

    def cases(self) -> Iterator[tuple[str, str, str, object]]:
        """Every (argument, name in message, kind label, bad value)."""
        for key, arg in self.args.items():
            if not isinstance(arg, Arg):
                continue
            for kind in arg.kinds:
                for label, bad in kind(arg.good):
                    yield key, arg.name or key, label, bad


# ------------------------------------------------------------------ kinds


def _is_float_tensor(x) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _with_first(x: torch.Tensor, value) -> torch.Tensor:
    bad = x.clone()
    bad.view(-1)[0] = value
    return bad


def not_tensor(good) -> Iterator[tuple[str, object]]:
    yield "a string", "not a tensor"


def tensor(
    rank: bool = True,
    rows: bool = True,
    empty: bool = False,
    nan: bool = True,
    inf: bool = True,
    neg_inf: bool = True,
    kind: bool = True,
) -> Kind:
    """Bad versions of a tensor: each flag turns one family on."""

    def bad(good):
        if kind:
            yield "a string", "not a tensor"
        if rank:
            yield "one more dimension", good.unsqueeze(0)
            if good.dim() >= 1:
                yield (
                    "one dimension less",
                    good[0] if good.dim() > 1 else (good.sum()),
                )
        if rows and good.dim() >= 1 and good.shape[0] > 1:
            yield "one row short", good[:-1]
        if empty and good.dim() >= 1:
            yield "empty", good[:0]
        if _is_float_tensor(good) and good.numel():
            if nan:
                yield "NaN", _with_first(good, math.nan)
            if inf:
                yield "+inf", _with_first(good, math.inf)
            if neg_inf:
                yield "-inf", _with_first(good, -math.inf)

    return bad


def class_index(n_classes: int | None = None, dtype: bool = True) -> Kind:
    """Bad class indices: out of range (when the range is known),
    negative, and floating-point."""

    def bad(good):
        if n_classes is not None:
            yield f"index {n_classes}", _with_first(good, n_classes)
        yield "index -1", _with_first(good, -1)
        if dtype:
            yield "floating-point indices", good.double()

    return bad


def unit_interval(good) -> Iterator[tuple[str, object]]:
    yield "below 0", _with_first(good, -0.5)
    yield "above 1", _with_first(good, 1.5)


def distribution(good) -> Iterator[tuple[str, object]]:
    yield "sums to one half", good * 0.5


def positive_int(good) -> Iterator[tuple[str, object]]:
    yield from (("0", 0), ("-1", -1), ("2.5", 2.5), ("True", True))
    yield "a string", "3"


def nonneg_int(good) -> Iterator[tuple[str, object]]:
    yield from (("-1", -1), ("2.5", 2.5), ("True", True), ("a string", "3"))


def positive_real(good) -> Iterator[tuple[str, object]]:
    yield from (("0", 0.0), ("-1", -1.0), ("NaN", math.nan))
    yield from (("+inf", math.inf), ("a string", "1"))


def nonneg_real(good) -> Iterator[tuple[str, object]]:
    yield from (("-1", -1.0), ("NaN", math.nan), ("+inf", math.inf))
    yield "a string", "1"


def finite_real(good) -> Iterator[tuple[str, object]]:
    yield from (("NaN", math.nan), ("+inf", math.inf), ("-inf", -math.inf))
    yield "a string", "1"


def probability(good) -> Iterator[tuple[str, object]]:
    yield from (("-0.1", -0.1), ("1.1", 1.1), ("NaN", math.nan))


def open_probability(good) -> Iterator[tuple[str, object]]:
    """A probability strictly between 0 and 1."""
    yield from (("0", 0.0), ("1", 1.0), ("-0.1", -0.1), ("NaN", math.nan))


def choice(good) -> Iterator[tuple[str, object]]:
    yield "an unknown option", "no-such-option"


def boolean(good) -> Iterator[tuple[str, object]]:
    yield "a string", "yes"


def callable_(good) -> Iterator[tuple[str, object]]:
    yield "not callable", 3


def rng(good) -> Iterator[tuple[str, object]]:
    yield from (("-1", -1), ("1.5", 1.5), ("a string", "0"))
    yield "a numpy generator", np.random.default_rng(0)


def module(good) -> Iterator[tuple[str, object]]:
    yield "not a module", "not a model"


def device(good) -> Iterator[tuple[str, object]]:
    yield "an unknown device", "tpu"


# --------------------------------------------------------------- outcomes


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def outcome(
    row: Row, key: str, name: str, bad, seconds: int = 60
) -> tuple[str, str]:
    """How a call with argument ``key`` made ``bad`` ends, and its message.

    ``"clear"``: a ValueError naming ``name``; ``"unnamed"``: a ValueError
    that does not; ``"cryptic"``: another exception; ``"accepted"``: it
    returned; ``"hang"``: it ran past ``seconds``.
    """
    values = row.values()
    values[key] = bad
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        result = row.call(values)
    except _Hang:
        return "hang", f"ran past {seconds} s"
    except ValueError as err:
        return ("clear" if name in str(err) else "unnamed"), str(err)
    except Exception as err:  # noqa: BLE001 - classifying is the point
        return "cryptic", f"{type(err).__name__}: {err}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return "accepted", f"returned {str(result)[:200]}"

"""Rows for xentlib.information: surprise, entropy and the divergences
(chapters 1 and 2)."""

import math

import torch

from xentlib import information

from . import Arg, Row, distribution, tensor, unit_interval

_p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
_q = torch.tensor([0.6, 0.1, 0.3], dtype=torch.float64)


def _base(good):
    yield from (("1", 1), ("0", 0), ("-2", -2.0), ("NaN", math.nan))
    yield from (("+inf", math.inf), ("a string", "2"), ("True", True))


def _probabilities():
    # a shorter vector is a distribution over fewer outcomes; a longer one
    # does not match the other argument
    return (distribution, unit_interval, tensor(rank=False, rows=False))


ROWS = [
    Row(
        "xentlib.information.surprise",
        information.surprise,
        {
            "p": Arg(_p, (unit_interval, tensor(rank=False, rows=False))),
            "base": Arg(2, (_base,)),
        },
    ),
    Row(
        "xentlib.information.entropy",
        information.entropy,
        {
            "p": Arg(
                _p,
                (distribution, unit_interval, tensor(rank=False, rows=False)),
            ),
            "base": Arg(2, (_base,)),
        },
    ),
] + [
    Row(
        f"xentlib.information.{func.__name__}",
        func,
        {
            "p": Arg(_p, _probabilities()),
            "q": Arg(_q, _probabilities()),
            "base": Arg(None, (_base,)),
        },
    )
    for func in (
        information.distribution_cross_entropy,
        information.kl_divergence,
        information.js_divergence,
    )
]

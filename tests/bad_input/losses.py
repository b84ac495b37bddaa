"""Rows for xentlib.losses: cross-entropy and binary cross-entropy
(chapters 1 and 3)."""

import math

import torch

from xentlib import losses

from . import (
    Arg,
    Row,
    choice,
    class_index,
    distribution,
    probability,
    tensor,
    unit_interval,
)

_g = torch.Generator().manual_seed(0)
_x = torch.randn(4, 3, generator=_g)
_y = torch.tensor([0, 1, 2, 1])
_p = torch.softmax(torch.randn(4, 3, generator=_g), 1)
_t = torch.rand(4, 3, generator=_g)


def _weights(good):
    """Class or element weights: negative, NaN, infinite, not a tensor."""
    yield "negative", -good
    yield "NaN", torch.full_like(good, math.nan)
    yield "+inf", torch.full_like(good, math.inf)
    yield "a string", "1"


def _integer(good):
    yield from (("1.5", 1.5), ("a string", "-100"), ("None", None))


def _class_weight():
    return Arg(torch.ones(3), (_weights, tensor(nan=False, inf=False)))


def _broadcast_weight():
    def bad(good):
        yield "not broadcastable", torch.ones(5)
        yield "one more dimension", torch.ones(2, 4, 3)

    return Arg(torch.ones(3), (_weights, bad))


ROWS = [
    Row(
        "xentlib.losses.cross_entropy",
        losses.cross_entropy,
        {
            # -inf masks a class; NaN and +inf are rejected
            "input": Arg(_x, (tensor(neg_inf=False),)),
            "target": Arg(
                _y,
                (class_index(3), tensor(nan=False, inf=False, neg_inf=False)),
            ),
            "weight": _class_weight(),
            "ignore_index": Arg(-100, (_integer,)),
            "reduction": Arg("mean", (choice,)),
            "label_smoothing": Arg(0.1, (probability,)),
        },
        note="class indices",
    ),
    Row(
        "xentlib.losses.cross_entropy",
        losses.cross_entropy,
        {
            "input": Arg(_x, (tensor(neg_inf=False),)),
            "target": Arg(_p, (distribution, unit_interval, tensor())),
            "weight": _class_weight(),
            "reduction": Arg("sum", (choice,)),
        },
        note="probabilities",
    ),
    Row(
        "xentlib.losses.binary_cross_entropy",
        losses.binary_cross_entropy,
        {
            # infinite logits have an exact loss; NaN is rejected
            "input": Arg(_x, (tensor(inf=False, neg_inf=False),)),
            "target": Arg(_t, (unit_interval, tensor(inf=False))),
            "weight": _broadcast_weight(),
            "pos_weight": _broadcast_weight(),
            "reduction": Arg("mean", (choice,)),
        },
    ),
]

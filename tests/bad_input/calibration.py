"""Rows for xentlib.calibration: reliability curves, the expected
calibration error and temperature scaling (chapters 5, 6 and 14)."""

import torch

from xentlib import calibration

from . import (
    Arg,
    Row,
    class_index,
    distribution,
    positive_int,
    tensor,
    unit_interval,
)

_g = torch.Generator().manual_seed(0)
_logits = 2 * torch.randn(12, 3, generator=_g, dtype=torch.float64)
_prob = torch.softmax(_logits, dim=1)
_classes = torch.arange(12) % 3
_binary_prob = torch.rand(12, generator=_g, dtype=torch.float64)
_binary = (torch.arange(12) % 2).double()


def _bins():
    return Arg(10, (positive_int,))


def _binary_target():
    def bad(good):
        yield "a label 2", torch.where(good == 1, 2.0, good)
        yield "one short", good[:-1]

    return Arg(_binary, (bad,))


def _bounds(good):
    yield from (("reversed", (5.0, 0.5)), ("zero", (0.0, 5.0)))
    yield from (("a string", "ab"), ("NaN", (float("nan"), 5.0)))


ROWS = (
    [
        Row(
            f"xentlib.calibration.{func.__name__}",
            func,
            {
                "prob": Arg(
                    _prob, (tensor(rank=False), unit_interval, distribution)
                ),
                "target": Arg(
                    _classes,
                    (
                        tensor(nan=False, inf=False, neg_inf=False),
                        class_index(3),
                    ),
                ),
                "n_bins": _bins(),
            },
            note="classes",
        )
        for func in (
            calibration.reliability_curve,
            calibration.expected_calibration_error,
        )
    ]
    + [
        Row(
            f"xentlib.calibration.{func.__name__}",
            func,
            {
                "prob": Arg(_binary_prob, (tensor(rank=False), unit_interval)),
                "target": _binary_target(),
                "n_bins": _bins(),
            },
            note="binary",
        )
        for func in (
            calibration.reliability_curve,
            calibration.expected_calibration_error,
        )
    ]
    + [
        Row(
            "xentlib.calibration.fit_temperature",
            calibration.fit_temperature,
            {
                "logits": Arg(_logits, (tensor(empty=True),)),
                "target": Arg(
                    _classes,
                    (
                        tensor(nan=False, inf=False, neg_inf=False),
                        class_index(3),
                    ),
                ),
                "bounds": Arg((0.05, 20.0), (_bounds,)),
                "iterations": Arg(30, (positive_int,)),
            },
        ),
    ]
)

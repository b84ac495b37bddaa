"""Rows for xentlib.linear_models: logistic and softmax regression
(chapter 3)."""

import numpy as np
import torch

from xentlib import linear_models as lm

from . import (
    Arg,
    Row,
    boolean,
    choice,
    class_index,
    nonneg_int,
    nonneg_real,
    positive_int,
    positive_real,
    rng,
    tensor,
    unit_interval,
)

_g = torch.Generator().manual_seed(0)
_x = torch.randn(12, 3, generator=_g, dtype=torch.float64)
_y = (torch.arange(12) % 2).double()
_c = torch.arange(12) % 3
_w = torch.randn(3, generator=_g, dtype=torch.float64)
_b = torch.tensor(0.1, dtype=torch.float64)
_W = torch.randn(3, 3, generator=_g, dtype=torch.float64)
_B = torch.zeros(3, dtype=torch.float64)


def _features():
    return Arg(_x, (tensor(empty=True),))


def _binary_target():
    return Arg(_y, (tensor(), unit_interval))


def _class_target():
    return Arg(
        _c, (tensor(nan=False, inf=False, neg_inf=False), class_index(3))
    )


def _parameter(good):
    return Arg(good, (tensor(rows=good.dim() > 0),))


def _l2():
    return Arg(0.1, (nonneg_real,))


ROWS = (
    [
        Row(
            f"xentlib.linear_models.{func.__name__}",
            func,
            {
                "features": _features(),
                "target": _binary_target(),
                "weight": _parameter(_w),
                "bias": _parameter(_b),
                "l2": _l2(),
            },
        )
        for func in (
            lm.logistic_regression_loss,
            lm.logistic_regression_gradient,
        )
    ]
    + [
        Row(
            f"xentlib.linear_models.{func.__name__}",
            func,
            {
                "features": _features(),
                "target": _class_target(),
                "weight": _parameter(_W),
                "bias": _parameter(_B),
                "l2": _l2(),
            },
        )
        for func in (
            lm.softmax_regression_loss,
            lm.softmax_regression_gradient,
        )
    ]
    + [
        Row(
            "xentlib.linear_models.gradient_lipschitz_bound",
            lm.gradient_lipschitz_bound,
            {
                "features": Arg(_x, (tensor(rows=False, empty=True),)),
                "model": Arg("softmax", (choice,)),
                "l2": _l2(),
                "fit_intercept": Arg(True, (boolean,)),
            },
        ),
        Row(
            "xentlib.linear_models.fit_logistic_regression",
            lm.fit_logistic_regression,
            {
                "features": _features(),
                "target": _binary_target(),
                "l2": _l2(),
                "fit_intercept": Arg(True, (boolean,)),
                "steps": Arg(3, (nonneg_int,)),
                "lr": Arg(0.5, (positive_real,)),
                "init": _parameter(torch.zeros(4, dtype=torch.float64)),
                "record_path": Arg(False, (boolean,)),
            },
        ),
        Row(
            "xentlib.linear_models.fit_softmax_regression",
            lm.fit_softmax_regression,
            {
                "features": _features(),
                "target": _class_target(),
                "n_classes": Arg(3, (positive_int,)),
                "l2": _l2(),
                "fit_intercept": Arg(True, (boolean,)),
                "steps": Arg(3, (nonneg_int,)),
                "lr": Arg(0.5, (positive_real,)),
            },
        ),
        Row(
            "xentlib.linear_models.standardised_split",
            lm.standardised_split,
            {
                "features": Arg(
                    np.arange(24.0).reshape(12, 2),
                    (
                        lambda g: [
                            ("a string", "not an array"),
                            ("one dimension less", g[:, 0]),
                            ("one row short", g[:-1]),
                            ("NaN", np.where(g == 0, np.nan, g)),
                            ("+inf", np.where(g == 0, np.inf, g)),
                        ],
                    ),
                ),
                "target": Arg(
                    np.arange(12) % 2,
                    (
                        lambda g: [
                            ("a string", "labels"),
                            ("one dimension more", g[None]),
                            ("floating labels", g + 0.5),
                        ],
                    ),
                ),
                "test_size": Arg(
                    0.25,
                    (
                        lambda g: [
                            ("0", 0.0),
                            ("1", 1.0),
                            ("NaN", float("nan")),
                            ("a string", "0.25"),
                            ("everything but one", 0.99),
                        ],
                    ),
                ),
                "rng": Arg(0, (rng,)),
                "device": Arg(
                    "cpu", (lambda g: [("an unknown device", "tpu")],)
                ),
                "dtype": Arg(
                    torch.float64,
                    (
                        lambda g: [
                            ("an integer dtype", torch.long),
                            ("a str", "x"),
                        ],
                    ),
                ),
            },
        ),
    ]
)

EXEMPT = {
    "xentlib.linear_models.LinearModelFit": (
        "a result record that the fit functions build"
    ),
}

"""Rows for xentlib.fairness (chapter 11): the parity penalty and fair loss,
the fair logistic regression, the group metrics and the German credit
folds."""

import torch

from xentlib import fairness
from xentlib.training import TrainConfig

from . import (
    Arg,
    Row,
    choice,
    class_index,
    nonneg_real,
    open_probability,
    positive_int,
    rng,
    tensor,
)

_g = torch.Generator().manual_seed(0)
_z = torch.randn(8, generator=_g, dtype=torch.float64)
_group = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
_y = torch.tensor([0, 0, 1, 1, 0, 1, 1, 0])
_decisions = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0])
_x = torch.randn(8, 3, generator=_g)


def _non_integer(good):
    yield "non-integer labels", good.double() + 0.5


def _wider(good):
    # logits may be infinite (exact limits); only NaN is bad input
    yield from tensor(inf=False, neg_inf=False, empty=True)(good)


#: 0/1 tensors (labels, decisions, two-group labels): a value outside {0, 1}
#: is bad; integer-valued floats (0.0, 1.0) are fine.
_binary = (tensor(empty=True), class_index(2, dtype=False))
#: Group labels of the metrics, which allow any integers.
_labels = (tensor(empty=True), _non_integer)


def _fit(x, y, group, parity_weight, config, rng):
    return fairness.fit_fair_logistic(
        x, y, group, parity_weight, config=config, rng=rng
    )


def _metric_row(covers, func, **extra):
    args = {"decisions": Arg(_decisions, _binary)}
    args.update(extra)
    args["group"] = Arg(_group, _labels)
    return Row(covers, func, args)


ROWS = [
    Row(
        "xentlib.fairness.load_german_credit",
        fairness.load_german_credit,
        {
            "protected": Arg("age", (choice,)),
            "n_folds": Arg(3, (positive_int, lambda g: [("1", 1)])),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.fairness.demographic_parity_penalty",
        fairness.demographic_parity_penalty,
        {
            "input": Arg(_z, (_wider,)),
            "group": Arg(_group, _binary),
        },
    ),
    Row(
        "xentlib.fairness.fair_binary_cross_entropy",
        fairness.fair_binary_cross_entropy,
        {
            "input": Arg(_z, (_wider,)),
            "target": Arg(
                _y.double(),
                (tensor(empty=True), lambda g: [("2", g * 2)]),
            ),
            "group": Arg(_group, _binary),
            "parity_weight": Arg(2.0, (nonneg_real,)),
            "reduction": Arg("sum", (choice,)),
        },
    ),
    Row(
        "xentlib.fairness.fit_fair_logistic",
        _fit,
        {
            "x": Arg(_x, (tensor(empty=True),)),
            "y": Arg(_y, _binary),
            "group": Arg(_group, _binary),
            "parity_weight": Arg(1.0, (nonneg_real,)),
            "config": Arg(
                TrainConfig(epochs=3),
                (
                    lambda g: [
                        ("a dict", {}),
                        ("minibatches", TrainConfig(epochs=3, batch_size=4)),
                    ],
                ),
            ),
            "rng": Arg(0, (rng,)),
        },
    ),
    _metric_row("xentlib.fairness.selection_rates", fairness.selection_rates),
    _metric_row(
        "xentlib.fairness.demographic_parity_gap",
        fairness.demographic_parity_gap,
    ),
    _metric_row(
        "xentlib.fairness.equalized_odds_rates",
        fairness.equalized_odds_rates,
        target=Arg(_y, _binary),
    ),
    _metric_row(
        "xentlib.fairness.equalized_odds_gap",
        fairness.equalized_odds_gap,
        target=Arg(_y, _binary),
    ),
    Row(
        "xentlib.fairness.bootstrap_gap_interval",
        fairness.bootstrap_gap_interval,
        {
            "decisions": Arg(_decisions, _binary),
            "group": Arg(_group, _binary),
            "n_resamples": Arg(50, (positive_int,)),
            "level": Arg(0.9, (open_probability,)),
            "rng": Arg(0, (rng,)),
        },
    ),
]

EXEMPT = {
    "xentlib.fairness.load_adult": "takes no arguments",
    "xentlib.fairness.TabularData": "a data record that the loaders build",
    "xentlib.fairness.FairLogisticFit": "a result that fit_fair_logistic "
    "builds",
    "xentlib.fairness.SelectionRates": "a result that selection_rates builds",
    "xentlib.fairness.EqualizedOddsRates": "a result that "
    "equalized_odds_rates builds",
    "xentlib.fairness.GapInterval": "a result that bootstrap_gap_interval "
    "builds",
}

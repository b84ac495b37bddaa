"""Rows for xentlib.biology (chapter 5)."""

import torch

from xentlib import biology

from . import (
    Arg,
    Row,
    device,
    finite_real,
    nonneg_int,
    nonneg_real,
    positive_int,
    positive_real,
    probability,
    rng,
    tensor,
    unit_interval,
)

_gen = torch.Generator().manual_seed(0)
_x = torch.linspace(-8.0, 0.0, 12, dtype=torch.float64)
_y = torch.tensor([1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0], dtype=torch.float64)
_sets = torch.tensor(
    [[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 1]]
)
_prob = torch.softmax(torch.randn(4, 5, generator=_gen), dim=1)


def _a_string(good):
    yield "a string", "1"


def _zero(good):
    yield "0", 0.0


def _not_binary(good):
    bad = good.clone()
    bad.view(-1)[0] = 2
    yield "a 2", bad
    yield "a half", good * 0.5


def _weights(good):
    bad = good.clone()
    bad[0] = -1.0
    yield "a negative weight", bad
    yield "a scalar", torch.tensor(1.0)
    yield "three dimensions", good.reshape(1, 1, -1)


def _stems(good):
    yield from (("one base", "G"), ("an RNA base", "GAUC"), ("a number", 12))


def _threshold(good):
    yield from (("1.0", 1.0), ("-0.1", -0.1), ("NaN", float("nan")))
    yield "a string", "0.5"


def _empty_row(good):
    bad = good.clone()
    bad[0] = 0
    yield "a row without a compartment", bad


_rule = {
    "dg": Arg(_x, (tensor(rank=False, rows=False, inf=False, neg_inf=False),)),
    "threshold": Arg(-5.0, (finite_real,)),
    "scale": Arg(1.0, (positive_real,)),
}
_regression = {
    "x": Arg(_x, (tensor(),)),
    "y": Arg(_y, (tensor(), _not_binary)),
}
_coefficients = {
    "x": Arg(_x, (tensor(rows=False),)),
    "weight": Arg(-1.0, (finite_real, _zero)),
    "bias": Arg(-5.0, (finite_real,)),
}
_label_pair = {
    "pred": Arg(_sets.flip(0), (tensor(), _not_binary)),
    "target": Arg(_sets, (tensor(), _not_binary)),
}
_prob_arg = Arg(_prob, (tensor(rows=False), unit_interval))

ROWS = [
    Row(
        "xentlib.biology.stacking_free_energy",
        biology.stacking_free_energy,
        {
            "stem": Arg("GATTACA", (_stems,)),
            "temperature": Arg(37.0, (finite_real,)),
        },
    ),
    Row(
        "xentlib.biology.activity_probability",
        biology.activity_probability,
        _rule,
    ),
    Row(
        "xentlib.biology.sample_activity",
        biology.sample_activity,
        {**_rule, "rng": Arg(0, (rng,))},
    ),
    Row(
        "xentlib.biology.StabilityLogistic",
        biology.StabilityLogistic,
        {
            "center": Arg(-4.0, (finite_real,)),
            "spread": Arg(3.0, (positive_real,)),
        },
    ),
    Row(
        "xentlib.biology.logistic_fisher_information",
        biology.logistic_fisher_information,
        _coefficients,
    ),
    Row(
        "xentlib.biology.logistic_threshold_standard_error",
        biology.logistic_threshold_standard_error,
        _coefficients,
    ),
    Row(
        "xentlib.biology.fit_logistic_newton",
        biology.fit_logistic_newton,
        {
            **_regression,
            "sample_weight": Arg(
                torch.ones(12, dtype=torch.float64),
                (tensor(rank=False), _weights),
            ),
            "max_iter": Arg(50, (positive_int,)),
            "tol": Arg(1e-10, (nonneg_real,)),
        },
    ),
    Row(
        "xentlib.biology.bootstrap_thresholds",
        biology.bootstrap_thresholds,
        {
            **_regression,
            "n_boot": Arg(20, (positive_int,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.biology.simulate_localisation",
        biology.simulate_localisation,
        {
            "n_proteins": Arg(30, (positive_int,)),
            "dual_fraction": Arg(0.3, (probability, _a_string)),
            "ambiguous_fraction": Arg(0.2, (probability, _a_string)),
            "signal_features": Arg(2, (positive_int,)),
            "composition_features": Arg(3, (nonneg_int,)),
            "signal_strength": Arg(2.0, (nonneg_real,)),
            "composition_strength": Arg(1.0, (nonneg_real,)),
            "rng": Arg(0, (rng,)),
            "device": Arg("cpu", (device,)),
        },
    ),
    Row(
        "xentlib.biology.LocalisationMLP",
        biology.LocalisationMLP,
        {
            "n_features": Arg(23, (positive_int,)),
            "n_compartments": Arg(5, (positive_int,)),
            "hidden": Arg(8, (positive_int,)),
        },
    ),
    Row(
        "xentlib.biology.soft_targets",
        biology.soft_targets,
        {"labels": Arg(_sets, (tensor(rows=False), _not_binary, _empty_row))},
    ),
    Row(
        "xentlib.biology.top1_label_sets",
        biology.top1_label_sets,
        {"prob": _prob_arg},
    ),
    Row(
        "xentlib.biology.threshold_label_sets",
        biology.threshold_label_sets,
        {"prob": _prob_arg, "threshold": Arg(0.3, (_threshold,))},
    ),
    Row(
        "xentlib.biology.hamming_loss",
        biology.hamming_loss,
        _label_pair,
    ),
    Row(
        "xentlib.biology.exact_match_accuracy",
        biology.exact_match_accuracy,
        _label_pair,
    ),
]

EXEMPT = {
    "xentlib.biology.Hairpins": "a data record that load_hairpins builds",
    "xentlib.biology.LocalisationData": (
        "a data record that simulate_localisation builds"
    ),
    "xentlib.biology.LogisticFit": "a result record of fit_logistic_newton",
    "xentlib.biology.load_hairpins": "takes no arguments",
}

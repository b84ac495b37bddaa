"""Rows for xentlib.imbalance (chapter 6): the focal loss, the logit
corrections, the rare-event metrics and the data helpers."""

import torch

from xentlib import imbalance

from . import (
    Arg,
    Row,
    choice,
    nonneg_real,
    open_probability,
    positive_int,
    positive_real,
    rng,
    tensor,
    unit_interval,
)

_g = torch.Generator().manual_seed(0)
_logits = torch.randn(8, generator=_g)
_labels = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
_scores = torch.rand(8, generator=_g)


def _labels_kind(good):
    yield "label 2", torch.where(good == 1, 2.0, good)
    yield "label -1", torch.where(good == 1, -1.0, good)
    yield "no positives", torch.zeros_like(good)


def _alpha(good):
    yield from (("-0.1", -0.1), ("1.5", 1.5), ("NaN", float("nan")))
    yield from (("True", True), ("a string", "0.25"))


def _pos_weight(good):
    yield from (("0", 0.0), ("-2", -2.0), ("NaN", float("nan")))
    yield from (("+inf", float("inf")), ("a string", "49"), ("True", True))
    yield "a negative tensor entry", torch.tensor([2.0, -1.0])


def _number(good):
    yield from (("NaN", float("nan")), ("a string", "0.5"), ("None", None))


_logit_input = tensor(rank=False, rows=False, inf=False, neg_inf=False)
_score = tensor(inf=False, neg_inf=False, empty=True)

ROWS = [
    Row(
        "xentlib.imbalance.focal_loss",
        imbalance.focal_loss,
        {
            "input": Arg(_logits, (_logit_input,)),
            "target": Arg(_labels, (tensor(nan=True), unit_interval)),
            "alpha": Arg(0.25, (_alpha,)),
            "gamma": Arg(2.0, (nonneg_real,)),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.imbalance.weighted_bce_minimiser",
        imbalance.weighted_bce_minimiser,
        {
            "p": Arg(
                torch.tensor([0.01, 0.5]),
                (tensor(rank=False, rows=False), unit_interval),
            ),
            "pos_weight": Arg(49.0, (_pos_weight,)),
        },
    ),
    Row(
        "xentlib.imbalance.pos_weight_corrected_logits",
        imbalance.pos_weight_corrected_logits,
        {
            "input": Arg(_logits, (_logit_input,)),
            "pos_weight": Arg(49.0, (_pos_weight,)),
        },
    ),
    Row(
        "xentlib.imbalance.prior_shift_logits",
        imbalance.prior_shift_logits,
        {
            "input": Arg(_logits, (_logit_input,)),
            "source_prior": Arg(0.5, (open_probability,)),
            "target_prior": Arg(0.02, (open_probability,)),
        },
    ),
    Row(
        "xentlib.imbalance.focal_corrected_logits",
        imbalance.focal_corrected_logits,
        {
            "input": Arg(_logits, (_logit_input,)),
            "gamma": Arg(2.0, (nonneg_real,)),
            "alpha": Arg(0.25, (open_probability, _alpha)),
        },
    ),
    Row(
        "xentlib.imbalance.precision_recall_at",
        imbalance.precision_recall_at,
        {
            "prob": Arg(_scores, (_score,)),
            "target": Arg(_labels, (tensor(nan=False), _labels_kind)),
            "threshold": Arg(0.5, (_number,)),
        },
    ),
    Row(
        "xentlib.imbalance.precision_recall_curve",
        imbalance.precision_recall_curve,
        {
            "score": Arg(_scores, (_score,)),
            "target": Arg(_labels, (tensor(nan=False), _labels_kind)),
        },
    ),
    Row(
        "xentlib.imbalance.average_precision",
        imbalance.average_precision,
        {
            "score": Arg(_scores, (_score,)),
            "target": Arg(_labels, (tensor(nan=False), _labels_kind)),
        },
    ),
    Row(
        "xentlib.imbalance.simulate_binding_screen",
        imbalance.simulate_binding_screen,
        {
            "n_compounds": Arg(200, (positive_int,)),
            "n_descriptors": Arg(6, (positive_int,)),
            "positive_fraction": Arg(0.05, (open_probability,)),
            "noise": Arg(0.6, (positive_real,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.imbalance.subsample_positives",
        imbalance.subsample_positives,
        {
            "target": Arg(
                torch.tensor([0.0] * 20 + [1.0] * 5),
                (tensor(rows=False, nan=True), _labels_kind),
            ),
            "positive_fraction": Arg(0.1, (open_probability,)),
            "rng": Arg(0, (rng,)),
        },
    ),
]

EXEMPT = {
    "xentlib.imbalance.BindingScreen": (
        "a result record that simulate_binding_screen builds"
    ),
}

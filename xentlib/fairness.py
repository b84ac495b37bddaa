r"""Fairness of approval decisions: a demographic-parity penalty and group metrics.

A classifier approves (decision 1) or declines (decision 0) each person; a
protected attribute splits the people into groups. *Demographic parity* asks
that every group be approved at the same rate. The **parity gap** of decisions
:math:`\hat y \in \{0, 1\}` over groups :math:`a` is

.. math::

    \Delta_{\mathrm{DP}} = \max_a P(\hat y = 1 \mid A = a) - \min_a P(\hat y = 1 \mid A = a),

for two groups :math:`|P(\hat y = 1 \mid A = 1) - P(\hat y = 1 \mid A = 0)|`
(fairlearn's ``demographic_parity_difference``). A threshold decision is not
differentiable, so training penalises instead the squared gap of the mean
predicted probability :math:`p_i = \sigma(z_i)` between the two groups,

.. math::

    R(z) = \Bigl(\frac{1}{|G_1|}\sum_{i \in G_1} p_i - \frac{1}{|G_0|}\sum_{i \in G_0} p_i\Bigr)^2,

and minimises the binary cross-entropy plus :math:`\lambda R`. *Equalised odds*
(Hardt, Price & Srebro 2016) asks instead for equal true and false positive
rates in every group; :func:`equalized_odds_rates` measures them. With few
people per group a measured gap is noisy: :func:`bootstrap_gap_interval` puts a
bootstrap interval around it.

The data: :func:`load_adult` reads the UCI Adult census income data and
:func:`load_german_credit` the German credit data, both shipped in ``data/``.

Introduced in chapter 11.
"""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._validation import as_float_tensor, check_logits, check_reduction
from .datasets import data_path
from .losses import binary_cross_entropy
from .training import TrainConfig, fit

__all__ = [
    "EqualizedOddsRates",
    "GapInterval",
    "TabularData",
    "bootstrap_gap_interval",
    "demographic_parity_gap",
    "demographic_parity_penalty",
    "equalized_odds_gap",
    "equalized_odds_rates",
    "fair_binary_cross_entropy",
    "fit_fair_logistic",
    "load_adult",
    "load_german_credit",
    "selection_rates",
]


# --------------------------------------------------------------------------- data


@dataclass
class TabularData:
    """A tabular data set encoded for a linear model.

    Attributes
    ----------
    x : Tensor of shape (N, D), float32
        One-hot categorical columns and standardised numeric columns (means
        and standard deviations of the training rows). The protected attribute
        is not among the features.
    y : Tensor of shape (N,), float32
        The label, 1 for the favourable outcome (income above 50K; good credit).
    group : Tensor of shape (N,), int64
        The protected attribute: 1 for women, 0 for men.
    train : Tensor of shape (N,), bool
        True for the training rows (the rows the standardisation was fitted on).
    feature_names : list of str
        One name per column of ``x`` (``"age"``, ``"relationship=Wife"``, ...).
    """

    x: torch.Tensor
    y: torch.Tensor
    group: torch.Tensor
    train: torch.Tensor
    feature_names: list[str]


def _read_csv_gz(name: str) -> list[dict[str, str]]:
    with gzip.open(
        data_path(name), "rt", encoding="ascii", newline=""
    ) as handle:
        return list(csv.DictReader(handle))


def _encode(
    rows, numeric, log_numeric, categorical, train: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Standardised numeric columns (``log1p`` first for ``log_numeric``), then one-hot categoricals."""
    columns, names = [], []
    for name in numeric:
        values = np.array([float(r[name]) for r in rows])
        if name in log_numeric:
            values = np.log1p(values)  # money amounts are heavy-tailed
        mean, std = values[train].mean(), values[train].std()
        columns.append((values - mean) / (std if std > 0 else 1.0))
        names.append(name)
    for name in categorical:
        values = np.array([r[name] for r in rows])
        for level in sorted(set(values)):
            columns.append((values == level).astype(np.float64))
            names.append(f"{name}={level}")
    return np.stack(columns, axis=1), names


_ADULT_NUMERIC = (
    "age",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
)
_ADULT_CATEGORICAL = (
    "workclass",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "native_country",
)


def load_adult() -> TabularData:
    """Read the UCI Adult census income data (``data/adult.csv.gz``).

    45,222 people with no missing value: 30,162 from the original training
    file (``train`` True) and 15,060 from the original test file. The label is
    1 for an income above 50K dollars a year; ``group`` is 1 for women.

    Features: age, years of education, hours worked per week and the log of
    one plus the capital gain and loss (standardised with the training rows),
    and one-hot work class, marital status, occupation, relationship, race and
    native country. Left out: sex (the protected attribute), the census
    sampling weight ``fnlwgt`` (not a property of the person) and
    ``education`` (the same information as ``education_num``). See
    ``data/adult.md``.

    Introduced in chapter 11.

    Returns
    -------
    TabularData
    """
    rows = _read_csv_gz("adult.csv.gz")
    train = np.array([r["split"] == "train" for r in rows])
    x, names = _encode(
        rows,
        _ADULT_NUMERIC,
        ("capital_gain", "capital_loss"),
        _ADULT_CATEGORICAL,
        train,
    )
    return TabularData(
        x=torch.tensor(x, dtype=torch.float32),
        y=torch.tensor(
            [r["income"] == ">50K" for r in rows], dtype=torch.float32
        ),
        group=torch.tensor(
            [r["sex"] == "Female" for r in rows], dtype=torch.int64
        ),
        train=torch.from_numpy(train),
        feature_names=names,
    )


_GERMAN_NUMERIC = ("age", "credit_amount", "duration", "job")
_GERMAN_CATEGORICAL = (
    "housing",
    "saving_accounts",
    "checking_account",
    "purpose",
)


def load_german_credit(
    test_fraction: float = 0.3, seed: int = 0
) -> TabularData:
    """Read the German credit data (``data/german_credit.csv.gz``) with a random train/test split.

    1,000 applicants; the label is 1 for good credit risk (700 of them);
    ``group`` is 1 for women (310). Features: age, credit amount (log),
    duration and job skill level (standardised with the training rows), and
    one-hot housing, savings, checking account and purpose. Sex is left out.
    See ``data/german_credit.md``.

    Introduced in chapter 11.

    Parameters
    ----------
    test_fraction : float
        Fraction of the rows held out (``train`` False), in (0, 1).
    seed : int
        Seed of the random split.

    Returns
    -------
    TabularData
    """
    if (
        not isinstance(test_fraction, (int, float))
        or not 0 < test_fraction < 1
    ):
        raise ValueError(
            f"test_fraction must be a number in (0, 1); got {test_fraction!r}"
        )
    rows = _read_csv_gz("german_credit.csv.gz")
    n = len(rows)
    order = torch.randperm(
        n, generator=torch.Generator().manual_seed(seed)
    ).numpy()
    train = np.zeros(n, dtype=bool)
    train[order[: n - round(test_fraction * n)]] = True
    x, names = _encode(
        rows, _GERMAN_NUMERIC, ("credit_amount",), _GERMAN_CATEGORICAL, train
    )
    return TabularData(
        x=torch.tensor(x, dtype=torch.float32),
        y=torch.tensor([r["risk"] == "1" for r in rows], dtype=torch.float32),
        group=torch.tensor(
            [r["sex"] == "female" for r in rows], dtype=torch.int64
        ),
        train=torch.from_numpy(train),
        feature_names=names,
    )


# --------------------------------------------------------------------------- input checks


def _check_binary(x, name: str, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dim() != 1:
        raise ValueError(
            f"{name} must be a 1-D tensor of {what}; got shape"
            f" {tuple(x.shape)}"
        )
    if x.is_complex() or (x.numel() and not bool(((x == 0) | (x == 1)).all())):
        raise ValueError(f"{name} must hold 0/1 {what}; got other values")
    return x


def _check_group(group, n: int, binary: bool) -> torch.Tensor:
    if not isinstance(group, torch.Tensor):
        group = torch.as_tensor(np.asarray(group))
    if group.dim() != 1 or group.shape[0] != n:
        raise ValueError(
            f"group must have shape ({n},), one label per row; got"
            f" {tuple(group.shape)}"
        )
    if group.is_floating_point() or group.is_complex():
        if group.numel() and not bool((group == group.round()).all()):
            raise ValueError(
                "group must hold integer group labels; got non-integer values"
            )
    group = group.long()
    if (
        binary
        and group.numel()
        and not bool(((group == 0) | (group == 1)).all())
    ):
        raise ValueError(
            "group must hold 0/1 labels (two groups); got other values"
        )
    present = torch.unique(group)
    if present.numel() < 2 or (binary and present.numel() != 2):
        raise ValueError(
            "group must contain at least two groups to compare; got"
            f" {present.tolist()}"
        )
    return group


def _check_parity_weight(parity_weight) -> None:
    if (
        isinstance(parity_weight, bool)
        or not isinstance(parity_weight, (int, float))
        or not math.isfinite(parity_weight)
        or parity_weight < 0
    ):
        raise ValueError(
            "parity_weight must be a finite number >= 0; got"
            f" {parity_weight!r}"
        )


# --------------------------------------------------------------------------- training


def demographic_parity_penalty(
    input: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    r"""Squared gap of the mean predicted probability between two groups.

    .. math::

        R(z) = \bigl(\bar p_1 - \bar p_0\bigr)^2, \qquad
        \bar p_a = \frac{1}{|G_a|} \sum_{i \in G_a} \sigma(z_i),

    a differentiable stand-in for the demographic-parity gap of decisions.
    It is zero exactly when both groups get the same mean probability of
    approval, whatever each individual gets. Unlike a loss it is a property of
    the whole batch, so it has no per-row form (no ``reduction``).

    Introduced in chapter 11.

    Parameters
    ----------
    input : Tensor of shape (N,)
        Logits :math:`z` of the favourable outcome.
    group : Tensor of shape (N,)
        0/1 group labels; both groups must be present.

    Returns
    -------
    Tensor
        A scalar in :math:`[0, 1]`, in the dtype of ``input``.
    """
    if not isinstance(input, torch.Tensor):
        raise ValueError(
            "input must be a floating-point torch.Tensor of logits; got"
            f" {type(input).__name__}"
        )
    check_logits(input, "input")
    if input.dim() != 1:
        raise ValueError(
            "input must have shape (N,), one logit per row; got"
            f" {tuple(input.shape)}"
        )
    group = _check_group(group, input.shape[0], binary=True).to(input.device)
    return _parity_penalty(input, (group == 1).to(input.dtype))


def _parity_penalty(
    logits: torch.Tensor, in_group_one: torch.Tensor
) -> torch.Tensor:
    # Masked sums instead of boolean indexing: no host sync, cheap inside a training loop.
    p = torch.sigmoid(logits)
    gap = (p * in_group_one).sum() / in_group_one.sum() - (
        p * (1 - in_group_one)
    ).sum() / (1 - in_group_one).sum()
    return gap * gap


def fair_binary_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    group: torch.Tensor,
    parity_weight: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Binary cross-entropy from logits plus a weighted demographic-parity penalty.

    .. math::

        L_\lambda(z) = \frac{1}{N}\sum_{i=1}^{N} \ell(z_i, y_i) + \lambda\, R(z),

    with :math:`\ell` the binary cross-entropy of :func:`xentlib.binary_cross_entropy`
    and :math:`R` the :func:`demographic_parity_penalty`. With
    ``reduction="sum"`` both terms are multiplied by :math:`N`, so the sum is
    always :math:`N` times the mean.

    Introduced in chapter 11.

    Parameters
    ----------
    input : Tensor of shape (N,)
        Logits of the favourable outcome.
    target : Tensor of shape (N,)
        Labels (or soft targets) in [0, 1].
    group : Tensor of shape (N,)
        0/1 group labels; both groups must be present.
    parity_weight : float
        :math:`\lambda \ge 0`; 0 gives plain binary cross-entropy.
    reduction : {"mean", "sum"}
        ``"none"`` is refused: the penalty belongs to the batch, not to a row.

    Returns
    -------
    Tensor
        A scalar.
    """
    check_reduction(reduction)
    if reduction == "none":
        raise ValueError(
            "reduction must be 'mean' or 'sum' for fair_binary_cross_entropy;"
            " the parity penalty is a property of the batch, so there is no"
            " per-row loss ('none')"
        )
    _check_parity_weight(parity_weight)
    loss = binary_cross_entropy(
        input, target, reduction="mean"
    )  # validates input and target
    group = _check_group(group, input.shape[0], binary=True).to(input.device)
    loss = loss + parity_weight * _parity_penalty(
        input, (group == 1).to(loss.dtype)
    )
    return loss * input.shape[0] if reduction == "sum" else loss


def fit_fair_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    group: torch.Tensor,
    parity_weight: float = 0.0,
    *,
    epochs: int = 300,
    lr: float = 0.05,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    """A logistic regression trained on :func:`fair_binary_cross_entropy` by full-batch Adam.

    The model is ``nn.Linear(D, 1)`` followed by a flatten, so it maps ``(N, D)``
    features to ``(N,)`` logits. Training runs :func:`xentlib.training.fit` on
    the whole batch (the penalty compares group means, which a full batch
    estimates best), with the labels and groups packed as the target.

    Introduced in chapter 11.

    Parameters
    ----------
    x : Tensor of shape (N, D)
        Features (the model is created on their device and dtype).
    y : Tensor of shape (N,)
        0/1 labels.
    group : Tensor of shape (N,)
        0/1 group labels.
    parity_weight : float
        :math:`\\lambda`, the weight of the parity penalty.
    epochs, lr, weight_decay :
        Passed to :func:`~xentlib.training.fit` (Adam).
    seed : int
        Seeds the initial weights.

    Returns
    -------
    nn.Module
        The trained model, in evaluation mode.
    """
    x = as_float_tensor(x, "x")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, D); got {tuple(x.shape)}")
    y = _check_binary(y, "y", "labels")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"y must have one label per row of x ({x.shape[0]}); got"
            f" {y.shape[0]}"
        )
    group = _check_group(group, x.shape[0], binary=True)
    _check_parity_weight(parity_weight)
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], 1), nn.Flatten(0))
    with (
        torch.no_grad()
    ):  # seeded on the CPU, so the start is the same on every device
        bound = 1 / math.sqrt(x.shape[1])
        for p in model.parameters():
            p.copy_(
                torch.empty(p.shape).uniform_(
                    -bound, bound, generator=generator
                )
            )
    model = model.to(device=x.device, dtype=x.dtype)
    packed = torch.stack([y.to(x), group.to(x)], dim=1)

    def loss_fn(logits, target):
        # fair_binary_cross_entropy without its input checks (done once above);
        # softplus(z) - y z is the binary cross-entropy of logit z and label y
        bce = (F.softplus(logits) - target[:, 0] * logits).mean()
        return bce + parity_weight * _parity_penalty(logits, target[:, 1])

    fit(
        model,
        loss_fn,
        x,
        packed,
        config=TrainConfig(epochs=epochs, lr=lr, weight_decay=weight_decay),
    )
    return model.eval()


# --------------------------------------------------------------------------- metrics


def selection_rates(decisions, group) -> tuple[torch.Tensor, torch.Tensor]:
    """The fraction of positive decisions in each group.

    Introduced in chapter 11.

    Parameters
    ----------
    decisions : Tensor of shape (N,)
        0/1 (or boolean) decisions.
    group : Tensor of shape (N,)
        Integer group labels; at least two groups.

    Returns
    -------
    (groups, rates) : tuple of Tensors
        The sorted group labels and, for each, :math:`P(\\hat y = 1 \\mid A = a)`
        in float64, on the CPU.
    """
    decisions = (
        _check_binary(decisions, "decisions", "decisions")
        .detach()
        .cpu()
        .double()
    )
    group = _check_group(group, decisions.shape[0], binary=False).cpu()
    groups = torch.unique(group)
    rates = torch.stack([decisions[group == g].mean() for g in groups])
    return groups, rates


def demographic_parity_gap(decisions, group) -> float:
    r"""The demographic-parity gap of decisions: largest minus smallest group approval rate.

    .. math::

        \Delta_{\mathrm{DP}} = \max_a P(\hat y = 1 \mid A = a) - \min_a P(\hat y = 1 \mid A = a),

    equal to fairlearn's ``demographic_parity_difference``. Zero means every
    group is approved at the same rate.

    Introduced in chapter 11.

    Parameters
    ----------
    decisions : Tensor of shape (N,)
        0/1 (or boolean) decisions.
    group : Tensor of shape (N,)
        Integer group labels; at least two groups.

    Returns
    -------
    float
    """
    _, rates = selection_rates(decisions, group)
    return (rates.max() - rates.min()).item()


class EqualizedOddsRates(NamedTuple):
    """True and false positive rates per group (see :func:`equalized_odds_rates`)."""

    groups: torch.Tensor
    tpr: torch.Tensor
    fpr: torch.Tensor


def equalized_odds_rates(decisions, target, group) -> EqualizedOddsRates:
    r"""True and false positive rates of the decisions in each group.

    .. math::

        \mathrm{TPR}_a = P(\hat y = 1 \mid y = 1, A = a), \qquad
        \mathrm{FPR}_a = P(\hat y = 1 \mid y = 0, A = a).

    *Equalised odds* (Hardt, Price & Srebro 2016) holds when both are equal
    across groups; *equal opportunity* asks it of the TPR alone.

    Introduced in chapter 11.

    Parameters
    ----------
    decisions : Tensor of shape (N,)
        0/1 (or boolean) decisions.
    target : Tensor of shape (N,)
        0/1 true labels; every group needs at least one of each.
    group : Tensor of shape (N,)
        Integer group labels; at least two groups.

    Returns
    -------
    EqualizedOddsRates
        ``groups`` (sorted labels), ``tpr`` and ``fpr`` (float64, CPU), one entry per group.
    """
    decisions = (
        _check_binary(decisions, "decisions", "decisions")
        .detach()
        .cpu()
        .double()
    )
    target = _check_binary(target, "target", "labels").detach().cpu()
    if target.shape != decisions.shape:
        raise ValueError(
            f"target must have shape {tuple(decisions.shape)} like decisions;"
            f" got {tuple(target.shape)}"
        )
    group = _check_group(group, decisions.shape[0], binary=False).cpu()
    groups = torch.unique(group)
    tpr, fpr = [], []
    for g in groups:
        pos, neg = (group == g) & (target == 1), (group == g) & (target == 0)
        if not bool(pos.any()) or not bool(neg.any()):
            raise ValueError(
                f"target must hold both labels in every group; group {int(g)}"
                " lacks one"
            )
        tpr.append(decisions[pos].mean())
        fpr.append(decisions[neg].mean())
    return EqualizedOddsRates(groups, torch.stack(tpr), torch.stack(fpr))


def equalized_odds_gap(decisions, target, group) -> float:
    """The larger of the TPR gap and the FPR gap across groups.

    Equal to fairlearn's ``equalized_odds_difference`` (its default
    ``"worst_case"`` aggregation); zero means equalised odds hold exactly.

    Introduced in chapter 11.

    Returns
    -------
    float
    """
    rates = equalized_odds_rates(decisions, target, group)
    return max(
        (rates.tpr.max() - rates.tpr.min()).item(),
        (rates.fpr.max() - rates.fpr.min()).item(),
    )


class GapInterval(NamedTuple):
    """A measured parity gap with a bootstrap interval (see :func:`bootstrap_gap_interval`)."""

    gap: float
    difference: float
    low: float
    high: float
    samples: torch.Tensor


def bootstrap_gap_interval(
    decisions,
    group,
    n_resamples: int = 2000,
    level: float = 0.95,
    generator: torch.Generator | None = None,
) -> GapInterval:
    r"""The parity gap between two groups with a percentile bootstrap interval.

    The interval is for the *signed* difference of approval rates
    :math:`d = P(\hat y = 1 \mid A = 1) - P(\hat y = 1 \mid A = 0)`, whose
    absolute value is the gap :math:`\Delta_{\mathrm{DP}} = |d|`. (A percentile
    interval of :math:`|d|` itself would mislead: folding at zero piles the
    resamples up near zero, so its lower end hugs zero whatever the data.) Each
    resample draws, within each group, as many people as the group has, with
    replacement (a stratified bootstrap, so that no resample loses a group;
    for 0/1 decisions the count of approvals in such a resample is binomial and
    is drawn as such); the interval is the :math:`(1-\text{level})/2` and :math:`(1+\text{level})/2`
    quantiles of the resampled differences (Efron 1979). If it contains zero,
    the data cannot tell which group is approved more often.

    Introduced in chapter 11.

    Parameters
    ----------
    decisions : Tensor of shape (N,)
        0/1 (or boolean) decisions.
    group : Tensor of shape (N,)
        0/1 group labels; both groups must be present.
    n_resamples : int
        Number of bootstrap resamples.
    level : float
        Coverage of the interval, in (0, 1).
    generator : torch.Generator, optional
        A CPU generator, for repeatable intervals.

    Returns
    -------
    GapInterval
        ``gap`` and ``difference`` on the data as given, the interval ``low`` and
        ``high`` of the difference, and the resampled differences ``samples``
        (float64, CPU).
    """
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, int)
        or n_resamples < 1
    ):
        raise ValueError(
            f"n_resamples must be a positive integer; got {n_resamples!r}"
        )
    if (
        isinstance(level, bool)
        or not isinstance(level, (int, float))
        or not 0 < level < 1
    ):
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")
    decisions = (
        _check_binary(decisions, "decisions", "decisions")
        .detach()
        .cpu()
        .double()
    )
    group = _check_group(group, decisions.shape[0], binary=True).cpu()
    rates = []
    for g in (0, 1):
        members = decisions[group == g]
        # Resampling n decisions with replacement, a fraction r of them ones, gives
        # Binomial(n, r) ones: draw that count directly (same distribution, O(1) per resample).
        n = torch.full(
            (n_resamples,), float(len(members)), dtype=torch.float64
        )
        rates.append(
            torch.binomial(
                n,
                torch.full_like(n, members.mean().item()),
                generator=generator,
            )
            / n
        )
    samples = rates[1] - rates[0]
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.quantile(samples, q).tolist()
    difference = (
        decisions[group == 1].mean() - decisions[group == 0].mean()
    ).item()
    return GapInterval(abs(difference), difference, low, high, samples)

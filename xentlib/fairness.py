r"""Fairness of approval decisions: a parity penalty and group metrics.

A classifier approves (decision 1) or declines (decision 0) each person; a
protected attribute splits the people into groups. *Demographic parity*
asks that every group be approved at the same rate. The **parity gap** of
decisions :math:`\hat y \in \{0, 1\}` over groups :math:`a` is

.. math::

    \Delta_{\mathrm{DP}} = \max_a P(\hat y = 1 \mid A = a)
                         - \min_a P(\hat y = 1 \mid A = a),

for two groups :math:`|P(\hat y = 1 \mid A = 1) - P(\hat y = 1 \mid A =
0)|` (fairlearn's ``demographic_parity_difference``). A threshold decision
is not differentiable, so training penalises instead the squared gap of the
mean predicted probability :math:`p_i = \sigma(z_i)` between the two
groups,

.. math::

    R(z) = \bigl(\bar p_1 - \bar p_0\bigr)^2, \qquad
    \bar p_a = \frac{1}{|G_a|} \sum_{i \in G_a} p_i,

and minimises the binary cross-entropy plus :math:`\lambda R`. *Equalised
odds* (Hardt, Price & Srebro 2016) asks instead for equal true and false
positive rates in every group; :func:`equalized_odds_rates` measures them.
With few people per group a measured gap is noisy:
:func:`bootstrap_gap_interval` puts a bootstrap interval around it.

The data: :func:`load_adult` reads the UCI Adult census income data and
:func:`load_german_credit` the German credit data, both shipped in
``data/``.

Introduced in chapter 11.
"""

from __future__ import annotations

import csv
import gzip
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._validation import (
    check_finite,
    check_float_tensor,
    check_no_nan,
    check_reduction,
    check_unit_interval,
)
from .datasets import data_path
from .runtime import as_generator
from .training import History, TrainConfig, fit

__all__ = [
    "EqualizedOddsRates",
    "FairLogisticFit",
    "GapInterval",
    "SelectionRates",
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


# ------------------------------------------------------------------ data


@dataclass(frozen=True)
class TabularData:
    """A tabular data set encoded for a linear model.

    Attributes
    ----------
    x : Tensor of shape (N, D), float32
        One-hot categorical columns and standardised numeric columns (means
        and standard deviations of the training rows). The protected
        attribute is not among the features.
    y : Tensor of shape (N,), float32
        The label, 1 for the favourable outcome (income above 50K; good
        credit).
    group : Tensor of shape (N,), int64
        The protected attribute, 0 or 1 (see the loader for which is
        which).
    train : Tensor of shape (N,), bool
        True for the training rows (the rows the standardisation was fitted
        on).
    feature_names : tuple of str
        One name per column of ``x`` (``"age"``, ``"relationship=Wife"``).
    """

    x: torch.Tensor
    y: torch.Tensor
    group: torch.Tensor
    train: torch.Tensor
    feature_names: tuple[str, ...]


def _read_csv_gz(name: str) -> list[dict[str, str]]:
    with gzip.open(
        data_path(name), "rt", encoding="ascii", newline=""
    ) as handle:
        return list(csv.DictReader(handle))


def _encode(
    rows, numeric, log_numeric, categorical, train: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Standardised numeric columns (``log1p`` first for ``log_numeric``),
    then one-hot categoricals."""
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
    return np.stack(columns, axis=1), tuple(names)


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
    file (``train`` True) and 15,060 from the original test file. The label
    is 1 for an income above 50K dollars a year; ``group`` is 1 for women.

    Features: age, years of education, hours worked per week and the log of
    one plus the capital gain and loss (standardised with the training
    rows), and one-hot work class, marital status, occupation, relationship,
    race and native country. Left out: sex (the protected attribute), the
    census sampling weight ``fnlwgt`` (not a property of the person) and
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


_GERMAN_CATEGORICAL = (
    "housing",
    "saving_accounts",
    "checking_account",
    "purpose",
)
#: The age at and below which an applicant counts as young (group 1) when
#: age is the protected attribute: AIF360's convention for these data.
GERMAN_YOUNG_AGE = 25


def load_german_credit(
    protected: str = "sex", *, n_folds: int = 5, rng=None
) -> list[TabularData]:
    """Read the German credit data (``data/german_credit.csv.gz``) as the
    folds of a cross-validation.

    1,000 applicants; the label is 1 for good credit risk (700 of them).
    The protected attribute ``protected`` is left out of the features and
    becomes ``group``:

    * ``"sex"``: 1 for the 310 applicants recorded as women;
    * ``"age"``: 1 for the 190 applicants aged 25 or younger.

    Features: credit amount (log), duration, job skill level and, unless it
    is protected, age (standardised with the training rows), and one-hot
    housing, savings, checking account and purpose. See
    ``data/german_credit.md``.

    The rows are shuffled once and cut into ``n_folds`` folds of (nearly)
    equal size; element ``k`` of the result holds fold ``k`` out
    (``train`` False) and standardises with the other folds, so that every
    applicant is held out exactly once across the list.

    Introduced in chapter 11.

    Parameters
    ----------
    protected : {"sex", "age"}
        The protected attribute.
    n_folds : int
        Number of folds, at least 2.
    rng : int, torch.Generator or None
        The shuffle's randomness (see :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    list of TabularData
        ``n_folds`` splits of the same 1,000 rows.

    Examples
    --------
    >>> folds = load_german_credit("age", n_folds=4, rng=0)
    >>> [int((~f.train).sum()) for f in folds]
    [250, 250, 250, 250]
    """
    if protected not in ("sex", "age"):
        raise ValueError(
            f"protected must be 'sex' or 'age'; got {protected!r}"
        )
    if not _is_int(n_folds) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    generator = as_generator(rng)
    rows = _read_csv_gz("german_credit.csv.gz")
    n = len(rows)
    fold_of = torch.empty(n, dtype=torch.int64)
    fold_of[torch.randperm(n, generator=generator)] = (
        torch.arange(n) * n_folds // n
    )
    numeric = ("credit_amount", "duration", "job")
    if protected == "sex":
        numeric += ("age",)
        group = [r["sex"] == "female" for r in rows]
    else:
        group = [int(r["age"]) <= GERMAN_YOUNG_AGE for r in rows]
    y = torch.tensor([r["risk"] == "1" for r in rows], dtype=torch.float32)
    group = torch.tensor(group, dtype=torch.int64)
    folds = []
    for k in range(n_folds):
        train = (fold_of != k).numpy()
        x, names = _encode(
            rows, numeric, ("credit_amount",), _GERMAN_CATEGORICAL, train
        )
        folds.append(
            TabularData(
                x=torch.tensor(x, dtype=torch.float32),
                y=y,
                group=group,
                train=torch.from_numpy(train),
                feature_names=names,
            )
        )
    return folds


# ------------------------------------------------------------ input checks


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_tensor(x, name: str, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            raise TypeError
        return torch.as_tensor(array)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"{name} must be a tensor or array of {what}; got"
            f" {type(x).__name__}"
        ) from None


def _check_binary(x, name: str, what: str) -> torch.Tensor:
    x = _as_tensor(x, name, f"0/1 {what}")
    if x.dim() != 1:
        raise ValueError(
            f"{name} must be a 1-D tensor of {what}; got shape"
            f" {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} is empty; expected at least one entry")
    if x.is_complex() or not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must hold 0/1 {what}; got other values")
    return x


def _check_group(group, n: int, against: str, binary: bool) -> torch.Tensor:
    group = _as_tensor(group, "group", "integer group labels")
    if group.dim() != 1 or group.shape[0] != n:
        raise ValueError(
            f"group must have shape ({n},), one label per row of"
            f" {against}; got {tuple(group.shape)}"
        )
    if group.is_floating_point() or group.is_complex():
        check_finite(group, "group")
        if not bool((group == group.round()).all()):
            raise ValueError(
                "group must hold integer group labels; got non-integer values"
            )
    group = group.long()
    if binary and not bool(((group == 0) | (group == 1)).all()):
        raise ValueError(
            "group must hold 0/1 labels (two groups); got other values"
        )
    present = torch.unique(group)
    if present.numel() < 2:
        raise ValueError(
            "group must contain at least two groups to compare; got"
            f" {present.tolist()}"
        )
    return group


def _check_parity_weight(parity_weight) -> float:
    if not _is_real(parity_weight) or not 0 <= parity_weight < math.inf:
        raise ValueError(
            "parity_weight must be a finite number >= 0; got"
            f" {parity_weight!r}"
        )
    return float(parity_weight)


def _check_logit_vector(input) -> torch.Tensor:
    """Logits of shape (N,), N >= 1: infinities allowed, NaN not."""
    check_float_tensor(input, "input")
    if input.dim() != 1 or input.shape[0] == 0:
        raise ValueError(
            "input must have shape (N,) with N >= 1, one logit per row; got"
            f" {tuple(input.shape)}"
        )
    check_no_nan(input, "input")
    return input


# --------------------------------------------------------------- training


def demographic_parity_penalty(
    input: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    r"""Squared gap of the mean predicted probability between two groups.

    .. math::

        R(z) = \bigl(\bar p_1 - \bar p_0\bigr)^2, \qquad
        \bar p_a = \frac{1}{|G_a|} \sum_{i \in G_a} \sigma(z_i),

    a differentiable stand-in for the demographic-parity gap of decisions.
    It is zero exactly when both groups get the same mean probability of
    approval, whatever each individual gets. Unlike a loss it is a property
    of the whole batch, so it has no per-row form (no ``reduction``).
    Infinite logits are exact (probabilities 0 and 1, gradient 0).

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

    Examples
    --------
    >>> z = torch.tensor([0.0, 0.0, 2.0, -2.0])
    >>> demographic_parity_penalty(z, torch.tensor([0, 1, 0, 1]))
    tensor(0.1450)
    """
    _check_logit_vector(input)
    group = _check_group(group, input.shape[0], "input", binary=True)
    return _parity_penalty(input, (group == 1).to(input))


def _parity_penalty(
    logits: torch.Tensor, in_group_one: torch.Tensor
) -> torch.Tensor:
    # Masked sums instead of boolean indexing: no host sync, cheap inside a
    # training loop.
    p = torch.sigmoid(logits)
    gap = (p * in_group_one).sum() / in_group_one.sum() - (
        p * (1 - in_group_one)
    ).sum() / (1 - in_group_one).sum()
    return gap * gap


def _bce_rows(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``y softplus(-z) + (1 - y) softplus(z)``, with ``0 * inf = 0``.

    A term whose target weight is zero is left out rather than multiplied,
    so that a logit of -inf with target 0 (or +inf with target 1) costs
    exactly 0, with a zero gradient, where the product would give NaN.
    """
    zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
    positive = torch.where(target > 0, target * F.softplus(-logits), zero)
    negative = torch.where(target < 1, (1 - target) * F.softplus(logits), zero)
    return positive + negative


def fair_binary_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    group: torch.Tensor,
    parity_weight: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Binary cross-entropy from logits plus a weighted parity penalty.

    .. math::

        L_\lambda(z) = \frac{1}{N}\sum_{i=1}^{N} \ell(z_i, y_i)
                     + \lambda\, R(z),

    with :math:`\ell(z, y) = y\,\mathrm{softplus}(-z) + (1 - y)\,
    \mathrm{softplus}(z)` the binary cross-entropy of
    :func:`xentlib.binary_cross_entropy` and :math:`R` the
    :func:`demographic_parity_penalty`. With ``reduction="sum"`` both terms
    are multiplied by :math:`N`, so the sum is always :math:`N` times the
    mean. Infinite logits give the exact loss: 0 for a logit of
    :math:`-\infty` with target 0 or :math:`+\infty` with target 1 (and a
    zero gradient there), :math:`+\infty` for a confident wrong answer.

    Introduced in chapter 11.

    Parameters
    ----------
    input : Tensor of shape (N,)
        Logits of the favourable outcome (:math:`\pm\infty` allowed, NaN
        not).
    target : Tensor of shape (N,)
        Labels (or soft targets) in [0, 1].
    group : Tensor of shape (N,)
        0/1 group labels; both groups must be present.
    parity_weight : float
        :math:`\lambda \ge 0`; 0 gives plain binary cross-entropy.
    reduction : {"mean", "sum"}
        ``"none"`` is refused: the penalty belongs to the batch, not to a
        row.

    Returns
    -------
    Tensor
        A scalar, in the dtype of ``input``.

    Examples
    --------
    >>> z = torch.tensor([-math.inf, math.inf, 0.0, 0.0])
    >>> y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    >>> fair_binary_cross_entropy(z, y, torch.tensor([0, 0, 1, 1]), 0.0)
    tensor(0.3466)
    """
    check_reduction(reduction)
    if reduction == "none":
        raise ValueError(
            "reduction must be 'mean' or 'sum' for"
            " fair_binary_cross_entropy; the parity penalty is a property"
            " of the batch, so there is no per-row loss ('none')"
        )
    parity_weight = _check_parity_weight(parity_weight)
    _check_logit_vector(input)
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            "target must be a torch.Tensor of labels in [0, 1]; got"
            f" {type(target).__name__}"
        )
    if target.shape != input.shape:
        raise ValueError(
            f"target must have the same shape as input {tuple(input.shape)};"
            f" got {tuple(target.shape)}"
        )
    check_unit_interval(target, "target", what="labels")
    group = _check_group(group, input.shape[0], "input", binary=True)
    target = target.to(input)
    loss = _bce_rows(input, target).mean() + parity_weight * _parity_penalty(
        input, (group == 1).to(input)
    )
    return loss * input.shape[0] if reduction == "sum" else loss


#: How :func:`fit_fair_logistic` trains unless told otherwise: 100
#: full-batch Adam steps at learning rate 0.1 (the chapter's setting).
DEFAULT_FAIR_CONFIG = TrainConfig(epochs=100, lr=0.1)


@dataclass(frozen=True)
class FairLogisticFit:
    """What :func:`fit_fair_logistic` returns.

    Attributes
    ----------
    model : nn.Module
        ``nn.Linear(D, 1)`` followed by a flatten: ``(N, D)`` features to
        ``(N,)`` logits; in evaluation mode.
    history : History
        The training loss of each epoch.
    """

    model: nn.Module
    history: History


def fit_fair_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    group: torch.Tensor,
    parity_weight: float = 0.0,
    *,
    config: TrainConfig = DEFAULT_FAIR_CONFIG,
    rng=None,
) -> FairLogisticFit:
    r"""A logistic regression fitted to :func:`fair_binary_cross_entropy`.

    The model is ``nn.Linear(D, 1)`` followed by a flatten. Training runs
    :func:`xentlib.training.fit` on the whole training set as one batch
    (the penalty compares group means, which a minibatch would estimate
    with noise), with the labels and groups packed as the target. It stops
    with a :class:`FloatingPointError` naming the learning rate if the loss
    or a weight stops being finite.

    Introduced in chapter 11.

    Parameters
    ----------
    x : Tensor of shape (N, D)
        Finite features (the model is created on their device and dtype).
    y : Tensor of shape (N,)
        0/1 labels.
    group : Tensor of shape (N,)
        0/1 group labels; both groups present.
    parity_weight : float
        :math:`\lambda \ge 0`, the weight of the parity penalty.
    config : TrainConfig
        The optimiser's settings; ``batch_size`` must be None (full
        batch).
    rng : int, torch.Generator or None
        The initial weights' randomness (uniform in :math:`\pm 1/\sqrt D`,
        drawn on the CPU; see :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    FairLogisticFit
        The trained model (in evaluation mode) and its history.
    """
    x = check_float_tensor(x, "x", "features")
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"x must have shape (N, D) with N, D >= 1; got {tuple(x.shape)}"
        )
    check_finite(x, "x")
    y = _check_binary(y, "y", "labels")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"y must have one label per row of x ({x.shape[0]}); got"
            f" {y.shape[0]}"
        )
    group = _check_group(group, x.shape[0], "x", binary=True)
    parity_weight = _check_parity_weight(parity_weight)
    if not isinstance(config, TrainConfig):
        raise ValueError(
            f"config must be a TrainConfig; got {type(config).__name__}"
        )
    if config.batch_size is not None:
        raise ValueError(
            "config.batch_size must be None: the parity penalty compares"
            f" group means over the whole batch; got {config.batch_size}"
        )
    generator = as_generator(rng)
    model = nn.Sequential(nn.Linear(x.shape[1], 1), nn.Flatten(0))
    with torch.no_grad():  # drawn on the CPU: the same start on any device
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
        # fair_binary_cross_entropy without its input checks (done above)
        bce = (F.softplus(logits) - target[:, 0] * logits).mean()
        return bce + parity_weight * _parity_penalty(logits, target[:, 1])

    history = fit(model, loss_fn, x, packed, config=config)
    return FairLogisticFit(model.eval(), history)


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class SelectionRates:
    """Approval rates per group (see :func:`selection_rates`).

    Attributes
    ----------
    groups : Tensor of shape (G,)
        The sorted group labels.
    rates : Tensor of shape (G,), float64
        :math:`P(\\hat y = 1 \\mid A = a)` for each group, on the CPU.
    """

    groups: torch.Tensor
    rates: torch.Tensor


def _decisions(decisions) -> torch.Tensor:
    decisions = _check_binary(decisions, "decisions", "decisions")
    return decisions.detach().cpu().double()


def selection_rates(decisions, group) -> SelectionRates:
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
    SelectionRates

    Examples
    --------
    >>> selection_rates([1, 0, 1, 1], [0, 0, 1, 1]).rates
    tensor([0.5000, 1.0000], dtype=torch.float64)
    """
    decisions = _decisions(decisions)
    group = _check_group(
        group, decisions.shape[0], "decisions", binary=False
    ).cpu()
    groups = torch.unique(group)
    rates = torch.stack([decisions[group == g].mean() for g in groups])
    return SelectionRates(groups, rates)


def demographic_parity_gap(decisions, group) -> float:
    r"""The demographic-parity gap: largest minus smallest approval rate.

    .. math::

        \Delta_{\mathrm{DP}} = \max_a P(\hat y = 1 \mid A = a)
                             - \min_a P(\hat y = 1 \mid A = a),

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
    rates = selection_rates(decisions, group).rates
    return (rates.max() - rates.min()).item()


@dataclass(frozen=True)
class EqualizedOddsRates:
    """True and false positive rates per group (see
    :func:`equalized_odds_rates`); float64 tensors on the CPU, one entry
    per sorted group label."""

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
    """
    decisions = _decisions(decisions)
    target = _check_binary(target, "target", "labels").detach().cpu()
    if target.shape != decisions.shape:
        raise ValueError(
            f"target must have shape {tuple(decisions.shape)} like"
            f" decisions; got {tuple(target.shape)}"
        )
    group = _check_group(
        group, decisions.shape[0], "decisions", binary=False
    ).cpu()
    groups = torch.unique(group)
    tpr, fpr = [], []
    for g in groups:
        pos, neg = (group == g) & (target == 1), (group == g) & (target == 0)
        if not bool(pos.any()) or not bool(neg.any()):
            raise ValueError(
                "target must hold both labels in every group; group"
                f" {int(g)} lacks one"
            )
        tpr.append(decisions[pos].mean())
        fpr.append(decisions[neg].mean())
    return EqualizedOddsRates(groups, torch.stack(tpr), torch.stack(fpr))


def equalized_odds_gap(decisions, target, group) -> float:
    """The larger of the TPR gap and the FPR gap across groups.

    Equal to fairlearn's ``equalized_odds_difference`` (its default
    ``"worst_case"`` aggregation); zero means equalised odds hold exactly.
    Arguments as for :func:`equalized_odds_rates`.

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


@dataclass(frozen=True)
class GapInterval:
    """A measured parity gap with a bootstrap interval (see
    :func:`bootstrap_gap_interval`).

    Attributes
    ----------
    gap : float
        :math:`|d|` on the data as given.
    difference : float
        :math:`d`, group 1's approval rate minus group 0's.
    low, high : float
        The bootstrap interval of :math:`d`.
    samples : Tensor of shape (n_resamples,), float64
        The resampled differences.
    """

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
    rng=None,
) -> GapInterval:
    r"""The parity gap between two groups with a percentile bootstrap
    interval.

    The interval is for the *signed* difference of approval rates
    :math:`d = P(\hat y = 1 \mid A = 1) - P(\hat y = 1 \mid A = 0)`, whose
    absolute value is the gap :math:`\Delta_{\mathrm{DP}} = |d|`. (A
    percentile interval of :math:`|d|` itself would mislead: folding at
    zero piles the resamples up near zero, so its lower end hugs zero
    whatever the data.) Each resample draws, within each group, as many
    people as the group has, with replacement (a stratified bootstrap, so
    that no resample loses a group; for 0/1 decisions the number of
    approvals in such a resample is binomial and is drawn as such); the
    interval is the :math:`(1-\text{level})/2` and
    :math:`(1+\text{level})/2` quantiles of the resampled differences
    (Efron 1979). If it contains zero, the data cannot tell which group is
    approved more often.

    Introduced in chapter 11.

    Parameters
    ----------
    decisions : Tensor of shape (N,)
        0/1 (or boolean) decisions.
    group : Tensor of shape (N,)
        0/1 group labels; both groups must be present.
    n_resamples : int
        Number of bootstrap resamples, at least 1.
    level : float
        Coverage of the interval, in (0, 1).
    rng : int, torch.Generator or None
        The resamples' randomness (see
        :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    GapInterval
    """
    if not _is_int(n_resamples) or n_resamples < 1:
        raise ValueError(
            f"n_resamples must be a positive integer; got {n_resamples!r}"
        )
    if not _is_real(level) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")
    generator = as_generator(rng)
    decisions = _decisions(decisions)
    group = _check_group(
        group, decisions.shape[0], "decisions", binary=True
    ).cpu()
    rates = []
    for g in (0, 1):
        members = decisions[group == g]
        # Resampling n decisions with replacement, a fraction r of them
        # ones, gives Binomial(n, r) ones: draw that count directly.
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

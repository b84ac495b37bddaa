"""Calibration: do predicted probabilities match observed frequencies?

A model is calibrated when, among the examples it gives probability 0.8, about
80 % are positive (binary) or correctly classified (multi-class). The usual
summary is the expected calibration error (ECE) over ``M`` equal-width bins of
the confidence,

.. math::

    \\mathrm{ECE} = \\sum_{m=1}^{M} \\frac{n_m}{N}\\,
    \\bigl|\\,\\mathrm{freq}_m - \\mathrm{conf}_m\\bigr|,

where bin ``m`` holds confidences in :math:`((m-1)/M, m/M]` (the first bin
also holds 0), :math:`\\mathrm{conf}_m` is their mean and
:math:`\\mathrm{freq}_m` is the observed frequency in the bin.

Two readings of "confidence" are supported, chosen by the input's shape:

* ``(N,)`` probabilities of the positive class with 0/1 targets: the
  confidence is :math:`P(y=1)` and the frequency is the fraction of
  positives (the binary reliability diagram of chapters 5 and 6);
* ``(N, C)`` class probabilities with class-index targets: the confidence is
  the top probability and the frequency is the accuracy (top-label
  calibration, as in Guo et al. 2017; chapter 14).

:func:`fit_temperature` fits temperature scaling (Guo et al. 2017) by
minimising the cross-entropy of ``logits / T`` on held-out data.

Introduced in chapter 5; used in chapters 6 and 14.
"""

from __future__ import annotations

import math
import numbers

import torch

from ._validation import (
    as_float_tensor,
    check_distribution,
    check_unit_interval,
)

__all__ = [
    "expected_calibration_error",
    "fit_temperature",
    "reliability_curve",
]


def _as_target(target, scores: torch.Tensor, name: str) -> torch.Tensor:
    """``target`` as a tensor with one label per row of ``scores``."""
    try:
        target = torch.as_tensor(target, device=scores.device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            "target must be a tensor or array of labels; got"
            f" {type(target).__name__}"
        ) from err
    if target.shape != scores.shape[:1]:
        raise ValueError(
            f"target must have shape ({scores.shape[0]},), one label per row"
            f" of {name}; got {tuple(target.shape)}"
        )
    return target


def _as_class_target(target, scores: torch.Tensor, name: str) -> torch.Tensor:
    """Class indices in ``[0, C - 1]`` for the ``(N, C)`` ``scores``."""
    target = _as_target(target, scores, name)
    if (
        target.is_floating_point()
        or target.is_complex()
        or (target.dtype == torch.bool)
    ):
        raise ValueError(
            f"target must hold integer class indices; got dtype {target.dtype}"
        )
    if target.numel() and (
        int(target.min()) < 0 or int(target.max()) >= scores.shape[1]
    ):
        raise ValueError(
            f"target must hold class indices in [0, {scores.shape[1] - 1}];"
            f" got values in [{int(target.min())}, {int(target.max())}]"
        )
    return target.long()


def _confidence_and_outcome(prob, target) -> tuple[torch.Tensor, torch.Tensor]:
    prob = as_float_tensor(prob, "prob").detach()
    if prob.dim() not in (1, 2):
        raise ValueError(
            f"prob must have shape (N,) or (N, C); got {tuple(prob.shape)}"
        )
    if prob.dim() == 1:
        target = _as_target(target, prob, "prob")
        check_unit_interval(prob, "prob")
        if target.numel() and not bool(((target == 0) | (target == 1)).all()):
            raise ValueError(
                "target must hold 0/1 labels when prob is 1-D (binary"
                " calibration)"
            )
        return prob, target.to(prob.dtype)
    check_distribution(prob, "prob")
    target = _as_class_target(target, prob, "prob")
    confidence, predicted = prob.max(dim=1)
    return confidence, (predicted == target).to(prob.dtype)


def reliability_curve(
    prob, target, n_bins: int = 15
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin mean confidence, observed frequency and count (the
    reliability diagram).

    Parameters
    ----------
    prob : Tensor of shape (N,) or (N, C)
        Positive-class probabilities, or class probabilities (see the
        module docs).
    target : Tensor of shape (N,)
        0/1 labels, or class indices.
    n_bins : int
        Number of equal-width confidence bins on [0, 1]; 15 is customary.

    Returns
    -------
    confidence, frequency, count : Tensors of shape (n_bins,)
        Empty bins have count 0 and NaN confidence and frequency.
    """
    if (
        isinstance(n_bins, bool)
        or not isinstance(n_bins, numbers.Integral)
        or n_bins < 1
    ):
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    confidence, outcome = _confidence_and_outcome(prob, target)
    inner = torch.linspace(
        0, 1, n_bins + 1, dtype=confidence.dtype, device=confidence.device
    )[1:-1]
    index = torch.bucketize(confidence, inner)  # bin m holds ((m-1)/M, m/M]
    count = torch.bincount(index, minlength=n_bins).to(confidence.dtype)
    conf_sum = torch.zeros(
        n_bins, dtype=confidence.dtype, device=confidence.device
    ).index_add_(0, index, confidence)
    freq_sum = torch.zeros(
        n_bins, dtype=confidence.dtype, device=confidence.device
    ).index_add_(0, index, outcome)
    return conf_sum / count, freq_sum / count, count


def expected_calibration_error(prob, target, n_bins: int = 15) -> float:
    """The expected calibration error (see the module docs for the formula).

    Parameters are those of :func:`reliability_curve`. Returns a float in
    [0, 1].

    Examples
    --------
    >>> prob = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    >>> round(expected_calibration_error(prob, torch.tensor([0, 0, 1])), 4)
    0.3
    """
    confidence, frequency, count = reliability_curve(prob, target, n_bins)
    total = count.sum()
    if total == 0:
        raise ValueError(
            "prob is empty; calibration needs at least one example"
        )
    filled = count > 0
    return float(
        (
            count[filled]
            / total
            * (frequency[filled] - confidence[filled]).abs()
        ).sum()
    )


def fit_temperature(
    logits,
    target,
    bounds: tuple[float, float] = (0.05, 20.0),
    iterations: int = 60,
) -> float:
    r"""Temperature scaling: the :math:`T > 0` that minimises the
    cross-entropy of ``logits / T``.

    Guo et al. (2017) recalibrate a trained classifier by dividing all its
    logits by one number :math:`T`, fitted on held-out data by minimising

    .. math::

        L(T) = \frac{1}{N} \sum_{i=1}^{N} \Bigl( -\frac{z_{i y_i}}{T}
               + \log \sum_k e^{z_{ik} / T} \Bigr).

    In :math:`\beta = 1/T` this is convex (a log-sum-exp of functions linear in
    :math:`\beta`, minus a linear term), with derivative

    .. math::

        \frac{dL}{d\beta} = \frac{1}{N} \sum_i
        \bigl( \mathbb{E}_{p_i}[z_i] - z_{i y_i} \bigr),
        \qquad p_i = \mathrm{softmax}(\beta z_i),

    which increases with :math:`\beta`. So :math:`L` has a single minimum
    along :math:`\log T`, found here by bisection on the sign of that
    derivative in :math:`\log T` (in float64, to machine precision after the
    default 60 halvings). Dividing by :math:`T > 0` never changes the
    argmax, so accuracy is unchanged. Explained in chapter 14.

    Parameters
    ----------
    logits : Tensor or array of shape (N, C)
        The classifier's logits on a validation split (not the training data,
        where an overfitted model is right and confident everywhere).
    target : Tensor or array of shape (N,)
        Class indices in ``[0, C-1]``.
    bounds : (float, float)
        The search interval ``(T_min, T_max)``, ``0 < T_min < T_max``. If the
        minimum lies outside it, the nearer bound is returned (for example
        ``T_min`` when every validation example is already classified
        correctly, where :math:`L` keeps falling as :math:`T \to 0`).
    iterations : int
        Number of halvings of the interval in :math:`\log T`.

    Returns
    -------
    float
        The fitted temperature :math:`T`; use it as ``softmax(logits / T)``.
    """
    logits = as_float_tensor(logits, "logits").detach()
    if logits.dim() != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(
            "logits must have shape (N, C) with N, C >= 1; got"
            f" {tuple(logits.shape)}"
        )
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("logits must be finite; got NaN or infinite values")
    target = _as_class_target(target, logits, "logits")
    try:
        t_min, t_max = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds must be two numbers (T_min, T_max); got {bounds!r}"
        ) from None
    if not (0 < t_min < t_max < float("inf")):
        raise ValueError(
            f"bounds must satisfy 0 < T_min < T_max < inf; got {bounds!r}"
        )
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, int)
        or iterations < 1
    ):
        raise ValueError(
            f"iterations must be a positive integer; got {iterations!r}"
        )

    z = logits.to(torch.float64)
    z_true = z.gather(1, target.long().unsqueeze(1)).squeeze(1)

    def slope_in_beta(log_t: float) -> float:
        p = torch.softmax(z * math.exp(-log_t), dim=1)
        return float(((p * z).sum(1) - z_true).mean())

    lo, hi = math.log(t_min), math.log(t_max)
    if slope_in_beta(hi) >= 0:  # the loss still falls as T grows beyond T_max
        return t_max
    if slope_in_beta(lo) <= 0:  # ... or as T shrinks below T_min
        return t_min
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if (
            slope_in_beta(mid) > 0
        ):  # L rises with beta here: the minimum is at a larger T
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))

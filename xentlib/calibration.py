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

Introduced in chapter 5; used in chapters 6 and 14.
"""

from __future__ import annotations

import torch

from ._validation import as_float_tensor, check_distribution, check_unit_interval

__all__ = ["expected_calibration_error", "reliability_curve"]


def _confidence_and_outcome(prob, target) -> tuple[torch.Tensor, torch.Tensor]:
    prob = as_float_tensor(prob, "prob").detach()
    target = torch.as_tensor(target, device=prob.device)
    if prob.dim() == 1:
        check_unit_interval(prob, "prob")
        if target.shape != prob.shape:
            raise ValueError(f"target must have shape {tuple(prob.shape)} like prob; got {tuple(target.shape)}")
        if target.numel() and not bool(((target == 0) | (target == 1)).all()):
            raise ValueError("target must hold 0/1 labels when prob is 1-D (binary calibration)")
        return prob, target.to(prob.dtype)
    if prob.dim() == 2:
        check_distribution(prob, "prob")
        if target.shape != prob.shape[:1]:
            raise ValueError(f"target must have shape ({prob.shape[0]},) of class indices; got {tuple(target.shape)}")
        if target.is_floating_point():
            raise ValueError(f"target must hold integer class indices; got dtype {target.dtype}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= prob.shape[1]):
            raise ValueError(
                f"target must hold class indices in [0, {prob.shape[1] - 1}]; "
                f"got values in [{int(target.min())}, {int(target.max())}]"
            )
        confidence, predicted = prob.max(dim=1)
        return confidence, (predicted == target).to(prob.dtype)
    raise ValueError(f"prob must have shape (N,) or (N, C); got {tuple(prob.shape)}")


def reliability_curve(prob, target, n_bins: int = 15) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin mean confidence, observed frequency and count (the reliability diagram).

    Parameters
    ----------
    prob : Tensor of shape (N,) or (N, C)
        Positive-class probabilities, or class probabilities (see the module docs).
    target : Tensor of shape (N,)
        0/1 labels, or class indices.
    n_bins : int
        Number of equal-width confidence bins on [0, 1]; 15 is customary.

    Returns
    -------
    confidence, frequency, count : Tensors of shape (n_bins,)
        Empty bins have count 0 and NaN confidence and frequency.
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    confidence, outcome = _confidence_and_outcome(prob, target)
    inner = torch.linspace(0, 1, n_bins + 1, dtype=confidence.dtype, device=confidence.device)[1:-1]
    index = torch.bucketize(confidence, inner)  # bin m holds ((m-1)/M, m/M]
    count = torch.bincount(index, minlength=n_bins).to(confidence.dtype)
    conf_sum = torch.zeros(n_bins, dtype=confidence.dtype, device=confidence.device).index_add_(0, index, confidence)
    freq_sum = torch.zeros(n_bins, dtype=confidence.dtype, device=confidence.device).index_add_(0, index, outcome)
    return conf_sum / count, freq_sum / count, count


def expected_calibration_error(prob, target, n_bins: int = 15) -> float:
    """The expected calibration error (see the module docs for the formula).

    Parameters are those of :func:`reliability_curve`. Returns a float in [0, 1].
    """
    confidence, frequency, count = reliability_curve(prob, target, n_bins)
    total = count.sum()
    if total == 0:
        raise ValueError("prob is empty; calibration needs at least one example")
    filled = count > 0
    return float((count[filled] / total * (frequency[filled] - confidence[filled]).abs()).sum())

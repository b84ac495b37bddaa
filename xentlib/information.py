"""Information measures of discrete probability distributions.

Introduced in chapter 1 (surprise, entropy, cross-entropy) and chapter 2
(Kullback-Leibler and Jensen-Shannon divergences, Gibbs' inequality).

All functions take probability vectors along the **last** dimension, so a
tensor of shape ``(..., K)`` holds a batch of distributions over ``K``
outcomes, and they return one number per distribution, shape ``(...)``.
Inputs may be tensors, numpy arrays or lists; tensors keep their dtype and
device, everything else is computed in float64.

``base=None`` (the default) measures in nats (natural logarithm); ``base=2``
gives bits. The convention ``0 ln 0 = 0`` is used throughout, so outcomes of
probability zero under ``p`` contribute nothing; an outcome with ``q = 0 < p``
makes the cross-entropy and the KL divergence infinite, as it should.
"""

from __future__ import annotations

import math

import torch

from ._validation import (
    as_float_tensor,
    check_base,
    check_distribution,
    check_unit_interval,
)

__all__ = [
    "surprise",
    "entropy",
    "distribution_cross_entropy",
    "kl_divergence",
    "js_divergence",
]


def _check_outcomes(p: torch.Tensor, name: str) -> None:
    """A distribution needs at least one outcome (a last dimension of size 0
    is not one)."""
    if p.dim() > 0 and p.shape[-1] == 0:
        raise ValueError(
            f"{name} must have at least one outcome along its last dimension;"
            f" got shape {tuple(p.shape)}"
        )


def _in_base(x: torch.Tensor, base: float | None) -> torch.Tensor:
    return x if base is None else x / math.log(base)


def _pair(p, q) -> tuple[torch.Tensor, torch.Tensor]:
    p = as_float_tensor(p, "p")
    q = as_float_tensor(q, "q")
    if p.dim() == 0 or q.dim() == 0 or p.shape[-1] != q.shape[-1]:
        raise ValueError(
            "p and q must have the same number of outcomes (last dimension); "
            f"got p {tuple(p.shape)} and q {tuple(q.shape)}"
        )
    if p.shape != q.shape:
        try:
            shape = torch.broadcast_shapes(p.shape, q.shape)
        except RuntimeError:
            raise ValueError(
                "p and q must have broadcastable shapes with the outcomes"
                f" last; got p {tuple(p.shape)} and q {tuple(q.shape)}"
            ) from None
        p, q = p.expand(shape), q.expand(shape)
    dtype = torch.promote_types(p.dtype, q.dtype)
    return p.to(dtype), q.to(dtype)


def _checked_pair(p, q, base):
    """Validate two distributions and a base (a public function's boundary)."""
    base = check_base(base)
    p, q = _pair(p, q)
    _check_outcomes(p, "p")
    check_distribution(p, "p")
    check_distribution(q, "q")
    return p, q, base


def surprise(p, base: float | None = None) -> torch.Tensor:
    r"""Surprise (self-information) of outcomes with probability ``p``.

    .. math:: s(p) = -\log p

    Elementwise; ``p = 0`` gives ``inf`` and ``p = 1`` gives ``0``.
    Explained in chapter 1.

    Parameters
    ----------
    p : tensor or array_like
        Probabilities in [0, 1], any shape.
    base : float, optional
        Base of the logarithm; ``None`` for nats, ``2`` for bits.
    """
    base = check_base(base)
    p = as_float_tensor(p, "p")
    check_unit_interval(p, "p")
    return _in_base(-torch.log(p), base)


def entropy(p, base: float | None = None) -> torch.Tensor:
    r"""Shannon entropy of distributions along the last dimension.

    .. math:: H(P) = -\sum_i p_i \log p_i, \qquad 0 \log 0 = 0

    Agrees with :func:`scipy.stats.entropy` on normalised inputs.
    Explained in chapter 1.

    Parameters
    ----------
    p : tensor or array_like, shape ``(..., K)``
        Probability vectors (non-negative, summing to one along the last
        dimension).
    base : float, optional
        Base of the logarithm; ``None`` for nats, ``2`` for bits.

    Returns
    -------
    torch.Tensor, shape ``(...)``
    """
    base = check_base(base)
    p = as_float_tensor(p, "p")
    _check_outcomes(p, "p")
    check_distribution(p, "p")
    # 0.0 - x rather than -x: a certain outcome has entropy +0.0, not -0.0.
    return _in_base(0.0 - torch.special.xlogy(p, p).sum(-1), base)


def distribution_cross_entropy(
    p, q, base: float | None = None
) -> torch.Tensor:
    r"""Cross-entropy of a model distribution ``q`` under a true one ``p``.

    .. math:: H(P, Q) = -\sum_i p_i \log q_i

    This is the expected surprise of outcomes drawn from ``P`` when they are
    scored with ``Q``; it equals :math:`H(P) + \mathrm{KL}(P \| Q)`. For the
    loss computed from logits, use :func:`xentlib.cross_entropy`.
    Explained in chapters 1 and 2.

    Parameters
    ----------
    p, q : tensor or array_like, shape ``(..., K)``
        Probability vectors along the last dimension (broadcastable).
    base : float, optional
        Base of the logarithm; ``None`` for nats, ``2`` for bits.

    Returns
    -------
    torch.Tensor, shape ``(...)``
        ``inf`` where some outcome has ``q = 0 < p``.
    """
    p, q, base = _checked_pair(p, q, base)
    return _in_base(0.0 - torch.special.xlogy(p, q).sum(-1), base)


def kl_divergence(p, q, base: float | None = None) -> torch.Tensor:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(P \| Q)`, last axis.

    .. math:: \mathrm{KL}(P \| Q) = \sum_i p_i \log \frac{p_i}{q_i}

    Non-negative (Gibbs' inequality), zero exactly when ``P = Q``, infinite
    where ``q = 0 < p``, and not symmetric. Agrees with
    ``scipy.stats.entropy(p, q)``. Explained in chapter 2.

    Parameters
    ----------
    p, q : tensor or array_like, shape ``(..., K)``
        Probability vectors along the last dimension (broadcastable).
    base : float, optional
        Base of the logarithm; ``None`` for nats, ``2`` for bits.

    Returns
    -------
    torch.Tensor, shape ``(...)``
    """
    p, q, base = _checked_pair(p, q, base)
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)
    # The true value is >= 0; rounding can leave a few ulps below zero.
    return _in_base(kl.clamp_min(0.0), base)


def js_divergence(p, q, base: float | None = None) -> torch.Tensor:
    r"""Jensen-Shannon divergence along the last dimension.

    .. math::
        \begin{aligned}
        \mathrm{JS}(P, Q) &= \tfrac12 \mathrm{KL}(P \| M)
            + \tfrac12 \mathrm{KL}(Q \| M), \qquad M = \tfrac12 (P + Q) \\
        &= \tfrac12 \textstyle\sum_i p_i (\log p_i - \log m_i)
            + \tfrac12 \sum_i q_i (\log q_i - \log m_i)
        \end{aligned}

    Symmetric, finite (at most :math:`\log 2`, one bit) and zero exactly when
    ``P = Q``. Note that :func:`scipy.spatial.distance.jensenshannon` returns
    the *square root* of this quantity (the Jensen-Shannon distance).
    Used as a smoothness penalty in chapter 7.

    Computed in log space, :math:`\log m_i = \mathrm{logaddexp}(\log p_i,
    \log q_i) - \log 2`, with the logarithm of a probability of zero taken at
    the smallest positive normal number. The value is unchanged (the term
    is multiplied by that zero), but the gradient stays finite: the slope of
    :math:`p \log p` is infinite at :math:`p = 0`, and a softmax that
    underflows to an exact zero would multiply that infinity by zero and give
    NaN. Through a softmax, the gradient is then the limit from positive
    probabilities.

    Parameters
    ----------
    p, q : tensor or array_like, shape ``(..., K)``
        Probability vectors along the last dimension (broadcastable).
    base : float, optional
        Base of the logarithm; ``None`` for nats, ``2`` for bits.

    Returns
    -------
    torch.Tensor, shape ``(...)``
    """
    p, q, base = _checked_pair(p, q, base)
    tiny = torch.finfo(p.dtype).tiny
    log_p, log_q = p.clamp_min(tiny).log(), q.clamp_min(tiny).log()
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    js = 0.5 * ((p * (log_p - log_m)).sum(-1) + (q * (log_q - log_m)).sum(-1))
    return _in_base(js.clamp_min(0.0), base)

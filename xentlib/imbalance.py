"""Rare events and class imbalance: focal loss, prior-shift corrections and
rare-event metrics.

When one class is rare (binders in a screen, fraud, a disease), three remedies
are common: weighting the rare class in the cross-entropy (``pos_weight`` of
:func:`xentlib.binary_cross_entropy`), the focal loss of Lin et al. (2017),
and simply choosing a different decision threshold. This module provides

* :func:`simulate_binding_screen` - a seeded, *simulated* binding screen with
  about 2 % binders and a known Bayes probability :math:`P(y=1 \\mid x)`;
* :func:`subsample_positives` - a real data set made rare, by keeping every
  negative and a random few positives;
* :func:`focal_loss` - the binary focal loss, computed stably from logits;
* what each loss asks for at its optimum, and how to undo it:
  :func:`weighted_bce_minimiser`, :func:`pos_weight_corrected_logits`,
  :func:`prior_shift_logits` (Bayes' rule for a new class prior) and
  :func:`focal_corrected_logits`;
* threshold and ranking metrics for rare positives:
  :func:`precision_recall_at`, :func:`precision_recall_curve` and
  :func:`average_precision` (the area under the precision-recall curve, in the
  step-wise form scikit-learn uses).

Introduced in chapter 6.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._validation import (
    as_float_tensor,
    check_float_tensor,
    check_no_nan,
    check_reduction,
    check_unit_interval,
    compute_dtype,
    reduce_rows,
)
from .runtime import as_generator

__all__ = [
    "BindingScreen",
    "average_precision",
    "focal_corrected_logits",
    "focal_loss",
    "pos_weight_corrected_logits",
    "precision_recall_at",
    "precision_recall_curve",
    "prior_shift_logits",
    "simulate_binding_screen",
    "subsample_positives",
    "weighted_bce_minimiser",
]


# -------------------------------------------------------------------- data


@dataclass(frozen=True)
class BindingScreen:
    """A simulated binding screen (see :func:`simulate_binding_screen`).

    Attributes
    ----------
    descriptors : Tensor of shape (N, D), float32
        Standardised compound descriptors, the model's input.
    label : Tensor of shape (N,), float32
        1.0 for a binder (affinity above ``threshold``), else 0.0.
    affinity : Tensor of shape (N,), float64
        The measured affinity :math:`a = f(x) + \\varepsilon` (hidden from a
        model).
    probability : Tensor of shape (N,), float64
        The Bayes probability
        :math:`P(y=1 \\mid x) = \\Phi((f(x) - t)/\\sigma)`.
    threshold : float
        The hit threshold :math:`t` on the affinity.
    noise : float
        The assay noise :math:`\\sigma`.
    """

    descriptors: torch.Tensor
    label: torch.Tensor
    affinity: torch.Tensor
    probability: torch.Tensor
    threshold: float
    noise: float

    def __len__(self) -> int:
        return self.label.shape[0]


def _true_affinity(x: torch.Tensor) -> torch.Tensor:
    # Lipophilicity and aromaticity help (linear), size has an optimum (the
    # pocket), a donor helps only with a matching acceptor (interaction), and
    # charge saturates. The remaining descriptors are irrelevant.
    return (
        1.0 * x[:, 0]
        + 0.8 * x[:, 1]
        - 0.7 * x[:, 2] ** 2
        + 0.6 * x[:, 3] * x[:, 4]
        + 0.5 * torch.tanh(2.0 * x[:, 5])
    )


def simulate_binding_screen(
    n_compounds: int = 40_000,
    *,
    n_descriptors: int = 8,
    positive_fraction: float = 0.02,
    noise: float = 0.6,
    rng: int | torch.Generator | None = None,
) -> BindingScreen:
    r"""Simulate a binding screen in which a small fraction of compounds are
    binders.

    The data are **simulated**, not measured. Each compound has
    ``n_descriptors`` independent standard-normal descriptors :math:`x`
    (think of whitened physico-chemical descriptors: lipophilicity, aromatic
    rings, size, donors, acceptors, charge, ...). Its measured affinity is

    .. math::

        a &= f(x) + \varepsilon, \qquad
        \varepsilon \sim \mathcal{N}(0, \sigma^2), \\
        f(x) &= x_0 + 0.8\,x_1 - 0.7\,x_2^2 + 0.6\,x_3 x_4 + 0.5 \tanh(2 x_5),

    and descriptors beyond :math:`x_5` do not matter. As in a real screen, the
    top ``positive_fraction`` of affinities are called hits: the threshold
    :math:`t` lies halfway between the ``k``-th and ``(k+1)``-th largest
    affinity, ``k = round(positive_fraction * n_compounds)``, so exactly ``k``
    compounds are binders. Given the threshold, the probability that a
    compound with descriptors :math:`x` is a binder is known exactly,

    .. math:: P(y = 1 \mid x) = \Phi\!\left(\frac{f(x) - t}{\sigma}\right),

    the Bayes probability, which no model can beat.

    Parameters
    ----------
    n_compounds : int
        Number of compounds N (rows).
    n_descriptors : int
        Number of descriptors D, at least 6.
    positive_fraction : float
        Fraction of binders, in (0, 0.5].
    noise : float
        Assay noise :math:`\sigma > 0`; larger values make binders harder to
        recognise.
    rng : int, torch.Generator or None
        The randomness (see :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    BindingScreen
        CPU tensors; move them with ``.to(device)``. The rows are in random
        order, so any contiguous block is a random sample.
    """
    if (
        isinstance(n_compounds, bool)
        or not isinstance(n_compounds, numbers.Integral)
        or n_compounds < 2
    ):
        raise ValueError(
            "n_compounds must be an integer of at least 2; got"
            f" {n_compounds!r}"
        )
    if (
        isinstance(n_descriptors, bool)
        or not isinstance(n_descriptors, numbers.Integral)
        or n_descriptors < 6
    ):
        raise ValueError(
            "n_descriptors must be an integer of at least 6; got"
            f" {n_descriptors!r}"
        )
    if (
        not isinstance(positive_fraction, numbers.Real)
        or not 0 < positive_fraction <= 0.5
    ):
        raise ValueError(
            f"positive_fraction must be in (0, 0.5]; got {positive_fraction!r}"
        )
    if not isinstance(noise, numbers.Real) or not (0 < noise < math.inf):
        raise ValueError(f"noise must be a positive number; got {noise!r}")
    k = round(positive_fraction * n_compounds)
    if not 1 <= k < n_compounds:
        raise ValueError(
            "positive_fraction * n_compounds must round to at least one"
            f" binder; got {positive_fraction} * {n_compounds} ="
            f" {positive_fraction * n_compounds:g}"
        )
    gen = as_generator(rng)
    x = torch.randn(
        int(n_compounds),
        int(n_descriptors),
        generator=gen,
        dtype=torch.float64,
    )
    clean = _true_affinity(x)
    affinity = clean + float(noise) * torch.randn(
        int(n_compounds), generator=gen, dtype=torch.float64
    )
    top = torch.topk(affinity, k + 1).values
    threshold = float((top[k - 1] + top[k]) / 2)
    label = (affinity > threshold).to(torch.float32)
    probability = torch.special.ndtr((clean - threshold) / float(noise))
    return BindingScreen(
        descriptors=x.to(torch.float32),
        label=label,
        affinity=affinity,
        probability=probability,
        threshold=threshold,
        noise=float(noise),
    )


def subsample_positives(
    target: torch.Tensor,
    positive_fraction: float,
    rng: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Row indices that keep every negative and just enough positives to
    make them ``positive_fraction`` of the rows.

    A real data set with common positives becomes a rare-event one: with
    :math:`n_0` negatives, :math:`k = \\mathrm{round}(\\pi n_0 / (1 - \\pi))`
    positives drawn at random without replacement make a fraction
    :math:`\\pi` of the rows. Chapter 6 uses it on the UCI Adult data.

    Parameters
    ----------
    target : torch.Tensor, shape ``(N,)``
        0/1 labels, with enough positives for the requested fraction.
    positive_fraction : float
        The fraction of positives wanted, in (0, 1).
    rng : int, torch.Generator or None
        Which positives are kept, and the order of the rows (see
        :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    torch.Tensor, shape ``(M,)``, long
        Row indices in random order (on the CPU), so that any contiguous
        block is a random sample.

    Examples
    --------
    >>> y = torch.tensor([0.0] * 98 + [1.0] * 10)
    >>> kept = subsample_positives(y, 0.02, rng=0)
    >>> len(kept), int(y[kept].sum())
    (100, 2)
    """
    if not isinstance(target, torch.Tensor) or target.dim() != 1:
        got = (
            tuple(target.shape)
            if isinstance(target, torch.Tensor)
            else type(target).__name__
        )
        raise ValueError(
            f"target must be a tensor of 0/1 labels of shape (N,); got {got}"
        )
    labels = target.detach().cpu()
    if labels.numel() == 0 or not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("target must hold 0/1 labels, at least one")
    if (
        not isinstance(positive_fraction, numbers.Real)
        or isinstance(positive_fraction, bool)
        or not 0 < positive_fraction < 1
    ):
        raise ValueError(
            f"positive_fraction must be in (0, 1); got {positive_fraction!r}"
        )
    gen = as_generator(rng)
    positives = torch.nonzero(labels == 1).squeeze(1)
    negatives = torch.nonzero(labels == 0).squeeze(1)
    k = round(positive_fraction * len(negatives) / (1 - positive_fraction))
    if not 1 <= k <= len(positives):
        raise ValueError(
            f"positive_fraction {positive_fraction} asks for {k} positives"
            f" beside {len(negatives)} negatives; target has"
            f" {len(positives)}"
        )
    chosen = positives[torch.randperm(len(positives), generator=gen)[:k]]
    kept = torch.cat([negatives, chosen])
    return kept[torch.randperm(len(kept), generator=gen)]


# ------------------------------------------------------------------ losses


def _check_logits(input, name: str = "input") -> torch.Tensor:
    """Logits: a floating-point tensor without NaN (infinities allowed)."""
    check_float_tensor(input, name)
    check_no_nan(input, name)
    return input


def _finite_stand_in(x: torch.Tensor) -> torch.Tensor:
    # A logit of +-1e4 has sigmoid 1 or 0 exactly in every dtype, so it
    # gives the limits of the formulas at +-inf without inf - inf.
    return torch.where(torch.isinf(x), torch.sign(x) * 1e4, x)


def _check_gamma(gamma) -> float:
    if (
        isinstance(gamma, bool)
        or not isinstance(gamma, numbers.Real)
        or not (0 <= gamma < math.inf)
    ):
        raise ValueError(f"gamma must be a non-negative number; got {gamma!r}")
    return float(gamma)


def focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Binary focal loss (Lin et al. 2017) from logits.

    With :math:`p = \sigma(x)` the predicted probability of the positive class
    and :math:`p_t = p\,y + (1 - p)(1 - y)` the probability of the observed
    outcome, the loss is

    .. math::

        \mathrm{FL}(x, y) = -\alpha_t\,(1 - p_t)^{\gamma}\,\log p_t,
        \qquad \alpha_t = \alpha\,y + (1 - \alpha)(1 - y),

    (:math:`\alpha_t = 1` when ``alpha`` is None). The factor
    :math:`(1 - p_t)^\gamma` shrinks the loss of examples that are already
    classified well. For soft targets :math:`y \in [0, 1]` the cross-entropy
    term is :math:`y\,\mathrm{softplus}(-x) + (1 - y)\,\mathrm{softplus}(x)`,
    as in ``torchvision.ops.sigmoid_focal_loss``. Everything is computed from
    the logit: :math:`\log(1 - p_t)` with log-sigmoids, so no probability is
    rounded to 0 or 1 before its logarithm is taken. With ``gamma=0`` and
    ``alpha=None`` it is :func:`xentlib.binary_cross_entropy`. Explained in
    chapter 6.

    Parameters
    ----------
    input : torch.Tensor
        Logits of any shape, e.g. ``(N,)``; +-inf give the exact limits
        (0, or inf when the target disagrees), NaN is rejected.
    target : torch.Tensor
        Targets in [0, 1] of the same shape (usually 0/1 labels).
    alpha : float, optional
        Weight in [0, 1] of the positive class (``1 - alpha`` for the negative
        class); None applies no class weight. Lin et al. used 0.25 with
        ``gamma=2``.
    gamma : float
        Focusing parameter :math:`\gamma \ge 0`.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over all elements.

    Returns
    -------
    torch.Tensor
        A scalar, or the element-wise losses for ``reduction="none"``; in the
        dtype of ``input`` (half precision is computed in float32).
    """
    check_reduction(reduction)
    _check_logits(input)
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"target must be a torch.Tensor; got {type(target).__name__}"
        )
    if target.shape != input.shape:
        raise ValueError(
            f"target must have the same shape as input {tuple(input.shape)};"
            f" got {tuple(target.shape)}"
        )
    check_unit_interval(target, "target", what="values")
    gamma = _check_gamma(gamma)
    if alpha is not None:
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, numbers.Real)
            or not 0 <= alpha <= 1
        ):
            raise ValueError(f"alpha must be in [0, 1] or None; got {alpha!r}")
    dtype = compute_dtype(input.dtype)
    raw = input.to(dtype)
    x = _finite_stand_in(raw)
    y = target.to(device=x.device, dtype=dtype)
    ce = y * F.softplus(-x) + (1 - y) * F.softplus(x)
    if gamma == 0:
        loss = ce
    else:
        # 1 - p_t = y * sigmoid(-x) + (1 - y) * sigmoid(x), in log space.
        log_miss = torch.logaddexp(
            torch.log(y) + F.logsigmoid(-x), torch.log1p(-y) + F.logsigmoid(x)
        )
        loss = torch.exp(gamma * log_miss) * ce
    # An infinite logit on the side the target does not take costs inf.
    infinite = ((raw == math.inf) & (y < 1)) | ((raw == -math.inf) & (y > 0))
    if alpha is not None:
        weight = alpha * y + (1 - alpha) * (1 - y)
        loss = loss * weight
        infinite &= weight > 0
    loss = torch.where(infinite, math.inf, loss)
    return reduce_rows(loss, reduction).to(input.dtype)


# ------------------------------------------------ what each loss asks for


def _as_probability(p, name: str) -> torch.Tensor:
    p = as_float_tensor(p, name)
    check_unit_interval(p, name)
    return p


def _check_positive_weight(
    pos_weight, reference: torch.Tensor
) -> torch.Tensor:
    if isinstance(pos_weight, bool):
        raise ValueError(
            "pos_weight must be a positive number or tensor; got"
            f" {pos_weight!r}"
        )
    if isinstance(pos_weight, numbers.Real):
        pos_weight = torch.tensor(
            float(pos_weight), dtype=reference.dtype, device=reference.device
        )
    if not isinstance(pos_weight, torch.Tensor):
        raise ValueError(
            "pos_weight must be a positive number or tensor; got"
            f" {type(pos_weight).__name__}"
        )
    check_no_nan(pos_weight, "pos_weight")
    if pos_weight.numel() and not bool(
        ((pos_weight > 0) & torch.isfinite(pos_weight)).all()
    ):
        raise ValueError(
            "pos_weight must be positive and finite; got values in "
            f"[{pos_weight.min().item():.6g}, {pos_weight.max().item():.6g}]"
        )
    return pos_weight.to(device=reference.device, dtype=reference.dtype)


def weighted_bce_minimiser(p, pos_weight) -> torch.Tensor:
    r"""The prediction that minimises the expected binary cross-entropy with
    ``pos_weight``.

    If the positive class has probability :math:`p` and positives are weighted
    by :math:`\beta`, the expected loss of predicting :math:`q` is
    :math:`-\beta p \log q - (1 - p)\log(1 - q)`. Setting its derivative to
    zero gives

    .. math::

        \frac{q^*}{1 - q^*} = \beta\,\frac{p}{1 - p},
        \qquad q^* = \frac{\beta p}{\beta p + 1 - p},

    the true odds inflated by :math:`\beta` (equivalently
    :math:`\mathrm{logit}\, q^* = \mathrm{logit}\, p + \log\beta`).
    Explained in chapter 6; :func:`pos_weight_corrected_logits` undoes it.

    Parameters
    ----------
    p : Tensor or array of any shape
        True probabilities of the positive class, in [0, 1].
    pos_weight : float or Tensor
        :math:`\beta > 0`, broadcastable to ``p``.

    Returns
    -------
    torch.Tensor
        :math:`q^*`, the shape of ``p`` (broadcast with ``pos_weight``).
    """
    p = _as_probability(p, "p")
    beta = _check_positive_weight(pos_weight, p)
    return beta * p / (beta * p + 1 - p)


def pos_weight_corrected_logits(
    input: torch.Tensor, pos_weight
) -> torch.Tensor:
    r"""Undo the odds inflation of a model trained with ``pos_weight``:
    ``input - log(pos_weight)``.

    A model trained with binary cross-entropy whose positive term is weighted
    by :math:`\beta` estimates, at best,
    :math:`\mathrm{logit}\, p + \log\beta` (:func:`weighted_bce_minimiser`).
    Weighting positives by :math:`\beta` is the same as training under a
    class prior whose odds are :math:`\beta` times the true ones, so this is
    :func:`prior_shift_logits` from those odds back to the true ones:

    .. math:: z_{\text{corrected}} = z - \log\beta .

    ``torch.sigmoid`` of the result estimates the probability under the data's
    own class balance. Explained in chapter 6.

    Parameters
    ----------
    input : torch.Tensor
        Logits of the weighted model, any shape (+-inf stay as they are).
    pos_weight : float or Tensor
        The :math:`\beta > 0` used in training, broadcastable to ``input``
        (one per output, like ``pos_weight`` of the loss).

    Returns
    -------
    torch.Tensor
        Corrected logits, the shape and dtype of ``input``.
    """
    _check_logits(input)
    beta = _check_positive_weight(pos_weight, input)
    return input - torch.log(beta)


def _check_prior(value, name: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 < value < 1
    ):
        raise ValueError(
            f"{name} must be a probability strictly between 0 and 1; got"
            f" {value!r}"
        )
    return float(value)


def prior_shift_logits(
    input: torch.Tensor, source_prior: float, target_prior: float
) -> torch.Tensor:
    r"""Move binary logits from one class prior to another with Bayes' rule.

    If only the class prior changes (the class-conditional densities
    :math:`p(x \mid y)` stay the same), Bayes' rule gives
    :math:`p'(y \mid x) \propto p(y \mid x)\,\pi'_y / \pi_y` (Saerens, Latinne
    and Decaestecker 2002). For two classes, in logits:

    .. math::

        z' = z + \log\frac{\pi'}{1 - \pi'} - \log\frac{\pi}{1 - \pi},

    where :math:`\pi` is the positive-class prior the model was trained under
    and :math:`\pi'` the one wanted. Explained in chapter 6.

    Parameters
    ----------
    input : torch.Tensor
        Logits of any shape (+-inf stay as they are).
    source_prior : float
        :math:`\pi \in (0, 1)`, the positive fraction the logits reflect.
    target_prior : float
        :math:`\pi' \in (0, 1)`, the positive fraction to adjust to.

    Returns
    -------
    torch.Tensor
        Shifted logits, the shape and dtype of ``input``.
    """
    _check_logits(input)
    pi = _check_prior(source_prior, "source_prior")
    pi_new = _check_prior(target_prior, "target_prior")
    shift = (math.log(pi_new) - math.log1p(-pi_new)) - (
        math.log(pi) - math.log1p(-pi)
    )
    return input + shift


def _log_softplus(z: torch.Tensor) -> torch.Tensor:
    # log(log(1 + e^z)); below z = -30, log1p(e^z) = e^z to relative 1e-13.
    return torch.where(z < -30, z, torch.log(F.softplus(z.clamp(min=-30))))


def focal_corrected_logits(
    input: torch.Tensor, gamma: float = 2.0, alpha: float | None = None
) -> torch.Tensor:
    r"""Logits of the true probability at which a focal-loss prediction is
    optimal.

    The expected focal loss (:func:`focal_loss`) of predicting :math:`q` when
    the positive class has probability :math:`p` is
    :math:`p\,\ell_1(q) + (1 - p)\,\ell_0(q)` with
    :math:`\ell_1(q) = -\alpha_1 (1 - q)^\gamma \log q` and
    :math:`\ell_0(q) = -\alpha_0\, q^\gamma \log(1 - q)`
    (:math:`\alpha_1 = \alpha`, :math:`\alpha_0 = 1 - \alpha`, or both 1 when
    ``alpha`` is None). Setting the derivative to zero,
    :math:`p\,\ell_1'(q) + (1 - p)\,\ell_0'(q) = 0`, and solving for :math:`p`
    gives, with :math:`q = \sigma(z)` and
    :math:`L(z) = \log(e^{z} + \gamma\,\mathrm{softplus}(z))`,

    .. math::

        \mathrm{logit}\, p = \log\frac{\alpha_0}{\alpha_1}
            + (\gamma - 1)\,z + L(z) - L(-z).

    This maps a focal-loss model's logit :math:`z` back to the probability it
    would output at the loss's optimum (for :math:`\gamma = 0` and no
    ``alpha`` it is the identity). The map is increasing in :math:`z`, so
    rankings are unchanged. For rare events it shows the focal loss's bias: a
    true :math:`p \to 0` gets
    :math:`q \approx (\alpha_1 p / (\alpha_0(\gamma + 1)))^{1/(\gamma + 1)}`,
    far above :math:`p`. Explained in chapter 6.

    Parameters
    ----------
    input : torch.Tensor
        Logits of a model trained with the focal loss, any shape (+-inf
        stay as they are).
    gamma : float
        The :math:`\gamma \ge 0` used in training.
    alpha : float, optional
        The ``alpha`` used in training, in (0, 1), or None.

    Returns
    -------
    torch.Tensor
        Corrected logits, the shape and dtype of ``input``; apply
        ``torch.sigmoid`` for probabilities.
    """
    _check_logits(input)
    gamma = _check_gamma(gamma)
    if alpha is not None and (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not 0 < alpha < 1
    ):
        raise ValueError(
            f"alpha must be in (0, 1) or None to be undone; got {alpha!r}"
        )
    raw = input.to(compute_dtype(input.dtype))
    z = torch.where(torch.isinf(raw), 0.0, raw)
    if gamma == 0:
        corrected = z.clone()
    else:
        log_gamma = math.log(gamma)
        lz = torch.logaddexp(z, log_gamma + _log_softplus(z))
        lmz = torch.logaddexp(-z, log_gamma + _log_softplus(-z))
        corrected = (gamma - 1) * z + lz - lmz
    if alpha is not None:
        corrected = corrected + math.log((1 - alpha) / alpha)
    # The map increases to +-inf, so infinite logits stay as they are.
    corrected = torch.where(torch.isinf(raw), raw, corrected)
    return corrected.to(input.dtype)


# ----------------------------------------------------------------- metrics


def _score_and_labels(
    score, target, name: str = "score"
) -> tuple[torch.Tensor, torch.Tensor]:
    score = as_float_tensor(score, name).detach()
    if score.dim() != 1:
        raise ValueError(
            f"{name} must have shape (N,), one score per example; got"
            f" {tuple(score.shape)}"
        )
    check_no_nan(score, name)
    try:
        target = torch.as_tensor(target, device=score.device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            "target must be a tensor or array of 0/1 labels; got"
            f" {type(target).__name__}"
        ) from err
    if target.shape != score.shape:
        raise ValueError(
            f"target must have shape {tuple(score.shape)} like {name}; got"
            f" {tuple(target.shape)}"
        )
    if score.numel() == 0:
        raise ValueError(f"{name} is empty; expected at least one example")
    if not bool(((target == 0) | (target == 1)).all()):
        raise ValueError("target must hold 0/1 labels")
    target = target.to(torch.float64)
    if target.sum() == 0:
        raise ValueError(
            "target has no positives; precision and recall need at least one"
        )
    return score, target


def precision_recall_at(
    prob, target, threshold: float = 0.5
) -> tuple[float, float]:
    r"""Precision and recall of the rule "positive when ``prob >= threshold``".

    .. math::

        \text{precision} = \frac{TP}{TP + FP}, \qquad
        \text{recall} = \frac{TP}{TP + FN}.

    Parameters
    ----------
    prob : Tensor of shape (N,)
        Scores, usually positive-class probabilities.
    target : Tensor of shape (N,)
        0/1 labels, at least one positive.
    threshold : float
        The decision threshold.

    Returns
    -------
    precision, recall : float
        Precision is 0.0 when nothing is predicted positive (scikit-learn's
        default for that case).
    """
    score, target = _score_and_labels(prob, target, "prob")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or math.isnan(threshold)
    ):
        raise ValueError(f"threshold must be a number; got {threshold!r}")
    predicted = (score >= threshold).to(torch.float64)
    tp = float((predicted * target).sum())
    n_predicted = float(predicted.sum())
    precision = tp / n_predicted if n_predicted > 0 else 0.0
    return precision, tp / float(target.sum())


def precision_recall_curve(
    score, target
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Precision and recall at every distinct threshold, from the highest
    score down.

    For each distinct score :math:`s_k` (in decreasing order), the rule
    "positive when score :math:`\ge s_k`" has precision :math:`P_k` and recall
    :math:`R_k`. Tied scores enter together, so the curve does not depend on
    the order of ties.

    Parameters
    ----------
    score : Tensor of shape (N,)
        Scores (probabilities or logits; only their order matters).
    target : Tensor of shape (N,)
        0/1 labels, at least one positive.

    Returns
    -------
    precision, recall, thresholds : Tensors of shape (K,), float64
        ``K`` is the number of distinct scores; ``thresholds`` decreases and
        ``recall`` increases to 1. Unlike scikit-learn's function, the curve is
        listed from the highest threshold and gets no extra point at recall 0.
    """
    score, target = _score_and_labels(score, target)
    order = torch.argsort(score, descending=True, stable=True)
    s, t = score[order], target[order]
    tp = torch.cumsum(t, 0)
    # The last index of each run of tied scores.
    last = torch.nonzero(
        torch.cat(
            [s[1:] != s[:-1], torch.ones(1, dtype=torch.bool, device=s.device)]
        )
    ).squeeze(1)
    n_predicted = (last + 1).to(torch.float64)
    precision = tp[last] / n_predicted
    recall = tp[last] / tp[-1]
    return precision, recall, s[last].to(torch.float64)


def average_precision(score, target) -> float:
    r"""Average precision: the area under the step-wise precision-recall curve.

    .. math:: \mathrm{AP} = \sum_k (R_k - R_{k-1})\, P_k, \qquad R_0 = 0,

    over the distinct thresholds of :func:`precision_recall_curve`: the mean,
    over positives, of the precision at the rank where each is recovered. It
    is the "PR-AUC" of scikit-learn's ``average_precision_score`` (no
    interpolation). A random ranking scores about the positive fraction; a
    perfect one scores 1.

    Parameters
    ----------
    score : Tensor of shape (N,)
        Scores (probabilities or logits).
    target : Tensor of shape (N,)
        0/1 labels, at least one positive.

    Returns
    -------
    float
    """
    precision, recall, _ = precision_recall_curve(score, target)
    gain = torch.diff(
        recall,
        prepend=torch.zeros(1, dtype=recall.dtype, device=recall.device),
    )
    return float((gain * precision).sum())

r"""Classification in the sciences: DNA hairpin stability and protein
localisation.

Two problems in which the shape of the output decides what cross-entropy can
learn.

* **Hairpins** (a binary label that follows a physical variable). The book
  ships ``data/hairpins.csv.gz``: designed DNA hairpins whose folding free
  energies :math:`\Delta G` (kcal/mol, at 37 C and at 60 C) were computed
  offline by seqfold with the SantaLucia & Hicks (2004) nearest-neighbour
  parameters (see ``data/hairpins.md``). :func:`load_hairpins` reads it;
  :func:`stacking_free_energy` adds up the stacking terms of a stem from
  :data:`DNA_STACKS`, the heart of that model. A hairpin's "function" is
  drawn at run time from a noisy logistic rule on a stability,
  :math:`P(\mathrm{active}) = \sigma((\Delta G^{*} - \Delta G)/s)`
  (:func:`activity_probability`, :func:`sample_activity`); logistic
  regression on :math:`\Delta G` then recovers a threshold
  :math:`-b/w`, with a standard error from the Fisher information
  (:func:`logistic_fisher_information`,
  :func:`logistic_threshold_standard_error`) or a bootstrap
  (:func:`bootstrap_thresholds`, built on the batched Newton solver
  :func:`fit_logistic_newton`).
* **Protein localisation** (one label against a set of labels).
  :func:`simulate_localisation` draws a stylised proteome in which about a
  third of the proteins sit in two compartments and some sit in one but
  carry ambiguous signals; :class:`LocalisationMLP` is the small network
  trained on it with a softmax head (cross-entropy) or with independent
  sigmoids (binary cross-entropy). Label sets are compared with
  :func:`exact_match_accuracy` and :func:`hamming_loss`.

Introduced in chapter 5.
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

from ._validation import (
    as_float_tensor,
    check_finite,
    check_no_nan,
    check_unit_interval,
)
from .datasets import data_path
from .runtime import as_generator, resolve_device

__all__ = [
    "COMPARTMENTS",
    "DNA_STACKS",
    "DUAL_LOCALISATIONS",
    "GAS_CONSTANT_KCAL",
    "Hairpins",
    "LocalisationData",
    "LocalisationMLP",
    "LogisticFit",
    "StabilityLogistic",
    "activity_probability",
    "bootstrap_thresholds",
    "exact_match_accuracy",
    "fit_logistic_newton",
    "hamming_loss",
    "load_hairpins",
    "logistic_fisher_information",
    "logistic_threshold_standard_error",
    "sample_activity",
    "simulate_localisation",
    "soft_targets",
    "stacking_free_energy",
    "threshold_label_sets",
    "top1_label_sets",
]

#: The molar gas constant in kcal/(mol K); RT at 37 C is about 0.616
#: kcal/mol.
GAS_CONSTANT_KCAL = 1.987204259e-3

#: Nearest-neighbour stacking parameters of Watson-Crick DNA pairs at 1 M
#: NaCl (SantaLucia & Hicks 2004, Table 1): ``"XY/X'Y'"`` (top strand 5'-XY-3'
#: over its complement 3'-X'Y'-5') -> (dH in kcal/mol, dS in cal/(mol K)).
#: The six other stacks are these read from the other strand.
DNA_STACKS = {
    "AA/TT": (-7.9, -22.2),
    "AT/TA": (-7.2, -20.4),
    "TA/AT": (-7.2, -21.3),
    "CA/GT": (-8.5, -22.7),
    "GT/CA": (-8.4, -22.4),
    "CT/GA": (-7.8, -21.0),
    "GA/CT": (-8.2, -22.2),
    "CG/GC": (-10.6, -27.2),
    "GC/CG": (-9.8, -24.4),
    "GG/CC": (-8.0, -19.9),
}

_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
_HAIRPIN_FILE = "hairpins.csv.gz"
_HAIRPIN_INT_FIELDS = (
    "length",
    "flank5_len",
    "stem_len",
    "loop_len",
    "flank3_len",
    "stem_mismatches",
    "stem_gc",
)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_finite_real(value, name: str, unit: str = "") -> float:
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(
            f"{name} must be a finite number{unit}; got {value!r}"
        )
    return float(value)


# ------------------------------------------------------------------ hairpins


@dataclass(frozen=True)
class Hairpins:
    """The designed DNA hairpins of ``data/hairpins.csv.gz``, one entry per
    sequence.

    Attributes
    ----------
    id, sequence, structure : numpy arrays of str, shape (N,)
        Identifier, DNA sequence (5' to 3') and seqfold's minimum free
        energy structure at 37 C in dot-bracket notation.
    dg : numpy array of float64, shape (N,)
        Folding free energy of that structure, kcal/mol at 37 C (negative
        is stable; 0.0 where nothing folds).
    dg60 : numpy array of float64, shape (N,)
        The same at 60 C (of the structure that is best at 60 C).
    stack_dg : numpy array of float64, shape (N,)
        The part of ``dg`` due to stacks of two Watson-Crick pairs.
    length, flank5_len, stem_len, loop_len, flank3_len : numpy arrays of int
        The design: total length, flank, stem and loop lengths (nt).
    stem_mismatches, stem_gc : numpy arrays of int, shape (N,)
        Mismatched positions in the returning strand, and G/C bases in the
        stem.
    """

    id: np.ndarray
    sequence: np.ndarray
    structure: np.ndarray
    dg: np.ndarray
    dg60: np.ndarray
    stack_dg: np.ndarray
    length: np.ndarray
    flank5_len: np.ndarray
    stem_len: np.ndarray
    loop_len: np.ndarray
    flank3_len: np.ndarray
    stem_mismatches: np.ndarray
    stem_gc: np.ndarray

    def __len__(self) -> int:
        return len(self.dg)


def load_hairpins() -> Hairpins:
    """Read the book's DNA hairpin data set (``data/hairpins.csv.gz``).

    Returns
    -------
    Hairpins
        3,000 designed hairpins with their seqfold free energies; see
        ``data/hairpins.md`` for how they were made.

    Examples
    --------
    >>> hairpins = load_hairpins()
    >>> len(hairpins), hairpins.sequence[0][:10]
    (3000, 'GAGTAGTGAC')
    """
    with gzip.open(
        data_path(_HAIRPIN_FILE), "rt", encoding="ascii", newline=""
    ) as handle:
        rows = list(csv.DictReader(handle))

    def floats(key):
        return np.array([float(r[key]) for r in rows], dtype=np.float64)

    columns = {
        "id": np.array([r["id"] for r in rows]),
        "sequence": np.array([r["sequence"] for r in rows]),
        "structure": np.array([r["structure"] for r in rows]),
        "dg": floats("dg_kcal_per_mol"),
        "dg60": floats("dg60_kcal_per_mol"),
        "stack_dg": floats("stack_dg_kcal_per_mol"),
    }
    for name in _HAIRPIN_INT_FIELDS:
        columns[name] = np.array([int(r[name]) for r in rows], dtype=np.int64)
    return Hairpins(**columns)


def stacking_free_energy(stem: str, temperature: float = 37.0) -> float:
    r"""The stacking free energy of a perfectly paired DNA stem.

    A stem of :math:`n` base pairs holds :math:`n - 1` stacks of two
    neighbouring pairs; each contributes
    :math:`\Delta G = \Delta H - T \Delta S` from :data:`DNA_STACKS`:

    .. math::
        \Delta G_\text{stack}(T) = \sum_{i=1}^{n-1}
        \bigl(\Delta H_{s_i s_{i+1}} - T\, \Delta S_{s_i s_{i+1}}\bigr).

    Loops, mismatches and ends add further terms (chapter 5).

    Parameters
    ----------
    stem : str
        One strand of the stem, 5' to 3', of A, C, G and T (at least two
        bases); its partner is the reverse complement.
    temperature : float
        In degrees Celsius, above absolute zero.

    Returns
    -------
    float
        kcal/mol; negative is stabilising.

    Examples
    --------
    >>> round(stacking_free_energy("GC"), 3)  # one GC/CG stack at 37 C
    -2.232
    >>> round(stacking_free_energy("GCAT"), 2)
    -4.56
    """
    if not isinstance(stem, str) or len(stem) < 2:
        raise ValueError(
            f"stem must be a DNA string of at least two bases; got {stem!r}"
        )
    if set(stem) - set("ACGT"):
        raise ValueError(f"stem must hold only A, C, G and T; got {stem!r}")
    temperature = _check_finite_real(temperature, "temperature", " in C")
    if temperature <= -273.15:
        raise ValueError(
            "temperature must be above absolute zero (-273.15 C); got"
            f" {temperature!r}"
        )
    kelvin = temperature + 273.15
    total = 0.0
    for a, b in zip(stem, stem[1:]):
        key = f"{a}{b}/{_COMPLEMENT[a]}{_COMPLEMENT[b]}"
        if key not in DNA_STACKS:  # the same stack read from the partner
            key = f"{_COMPLEMENT[b]}{_COMPLEMENT[a]}/{b}{a}"
        dh, ds = DNA_STACKS[key]
        total += dh - kelvin * ds / 1000.0
    return total


def _check_rule(threshold, scale) -> None:
    _check_finite_real(threshold, "threshold", " in kcal/mol")
    _check_finite_real(scale, "scale", " in kcal/mol")
    if scale <= 0:
        raise ValueError(f"scale must be positive (kcal/mol); got {scale!r}")


def activity_probability(dg, threshold: float, scale: float) -> torch.Tensor:
    r"""Probability that a hairpin is active under the noisy stability rule.

    .. math::
        P(\mathrm{active} \mid \Delta G)
        = \sigma\!\left(\frac{\Delta G^{*} - \Delta G}{s}\right)

    The more negative (stable) the fold, the likelier the function; half of
    the hairpins at :math:`\Delta G = \Delta G^{*}` are active, and
    :math:`s` sets how sharp the switch is. With :math:`s = RT` this is the
    fraction of time a two-state molecule spends folded when it competes
    with an alternative state of free energy :math:`\Delta G^{*}`. Infinite
    free energies give the exact limits 1 and 0.

    Parameters
    ----------
    dg : Tensor or array, any shape
        Folding free energies in kcal/mol (no NaN).
    threshold : float
        :math:`\Delta G^{*}`, kcal/mol.
    scale : float
        :math:`s > 0`, kcal/mol.

    Returns
    -------
    Tensor, the shape of ``dg``
        Probabilities, on ``dg``'s device and in its floating dtype.

    Examples
    --------
    >>> activity_probability([-6.0, -5.0, -4.0], -5.0, 1.0)
    tensor([0.7311, 0.5000, 0.2689], dtype=torch.float64)
    """
    _check_rule(threshold, scale)
    dg = as_float_tensor(dg, "dg")
    check_no_nan(dg, "dg")
    return torch.sigmoid((threshold - dg) / scale)


def sample_activity(
    dg,
    threshold: float,
    scale: float,
    rng: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Draw 0/1 activity labels from :func:`activity_probability`.

    Parameters
    ----------
    dg, threshold, scale
        As in :func:`activity_probability`.
    rng : int, torch.Generator or None
        The randomness (see :func:`xentlib.runtime.as_generator`); the
        uniforms are drawn on the CPU and moved to ``dg``'s device, so a
        seed gives the same labels on any device.

    Returns
    -------
    Tensor, the shape of ``dg``
        0.0 / 1.0 labels in ``dg``'s dtype and device.

    Examples
    --------
    >>> sample_activity([-30.0, 30.0], -5.0, 1.0, rng=0)
    tensor([1., 0.], dtype=torch.float64)
    """
    prob = activity_probability(dg, threshold, scale)
    generator = as_generator(rng)
    u = torch.rand(prob.shape, generator=generator, dtype=torch.float64)
    return (u.to(device=prob.device, dtype=prob.dtype) < prob).to(prob.dtype)


class StabilityLogistic(nn.Module):
    r"""Logistic regression on one physical variable:
    :math:`\mathrm{logit} = w x + b`.

    Internally the input is standardised with fixed ``center`` and
    ``spread`` (so that gradient descent is well conditioned);
    :meth:`coefficients` returns :math:`(w, b)` in the units of ``x``, and
    :meth:`threshold` the decision boundary :math:`x^{*} = -b/w` where the
    predicted probability is one half. Parameters start at zero (the loss
    is convex, so the start does not matter).

    Parameters
    ----------
    center, spread : float
        Usually the mean and standard deviation of the training inputs;
        finite, ``spread > 0``.
    """

    def __init__(self, center: float, spread: float):
        super().__init__()
        center = _check_finite_real(center, "center")
        spread = _check_finite_real(spread, "spread")
        if not spread > 0:
            raise ValueError(f"spread must be positive; got {spread!r}")
        self.register_buffer("center", torch.tensor(center))
        self.register_buffer("spread", torch.tensor(spread))
        self.linear = nn.Linear(1, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N,) for inputs of shape (N,)."""
        z = (x - self.center.to(x.dtype)) / self.spread.to(x.dtype)
        return self.linear(z.unsqueeze(-1)).squeeze(-1)

    def coefficients(self) -> tuple[float, float]:
        """(w, b) of ``logit = w x + b`` in the units of ``x``."""
        a = self.linear.weight.detach().reshape(()).double().item()
        c = self.linear.bias.detach().reshape(()).double().item()
        w = a / self.spread.item()
        return w, c - w * self.center.item()

    def threshold(self) -> float:
        """The decision boundary :math:`-b/w`, in the units of ``x``."""
        w, b = self.coefficients()
        if w == 0:
            raise ValueError(
                "the fitted weight is zero, so there is no decision boundary;"
                " train the model first"
            )
        return -b / w


def _check_binary_regression(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = as_float_tensor(x, "x")
    if x.dim() != 1:
        raise ValueError(f"x must have shape (N,); got {tuple(x.shape)}")
    check_finite(x, "x")
    y = as_float_tensor(y, "y").to(device=x.device, dtype=x.dtype)
    if y.shape != x.shape:
        raise ValueError(
            f"y must have shape {tuple(x.shape)} like x; got {tuple(y.shape)}"
        )
    if y.numel() and not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold 0/1 labels")
    return x, y


def _check_coefficients(weight, bias) -> tuple[float, float]:
    weight = _check_finite_real(weight, "weight")
    bias = _check_finite_real(bias, "bias")
    if weight == 0:
        raise ValueError(
            f"weight must be a finite non-zero number; got {weight!r}"
        )
    return weight, bias


def logistic_fisher_information(x, weight: float, bias: float) -> torch.Tensor:
    r"""The Fisher information of a one-feature logistic regression.

    It is the Hessian of the summed binary cross-entropy with respect to
    :math:`\theta = (w, b)`, and does not depend on the labels (chapter 5
    writes it on the page):

    .. math::
        I(\theta) = \sum_i p_i (1 - p_i)
        \begin{pmatrix} x_i^2 & x_i \\ x_i & 1 \end{pmatrix},
        \qquad p_i = \sigma(w x_i + b).

    Parameters
    ----------
    x : Tensor or array, shape (N,)
        The training inputs (finite).
    weight, bias : float
        :math:`w \ne 0` and :math:`b`, finite.

    Returns
    -------
    Tensor, shape (2, 2)
        Ordered (w, b), float64 on the CPU.

    Examples
    --------
    >>> logistic_fisher_information([-1.0, 1.0], 1.0, 0.0)
    tensor([[0.3932, 0.0000],
            [0.0000, 0.3932]], dtype=torch.float64)
    """
    x = as_float_tensor(x, "x").detach().to(device="cpu", dtype=torch.float64)
    if x.dim() != 1 or x.numel() < 2:
        raise ValueError(
            f"x must have shape (N,) with N >= 2; got {tuple(x.shape)}"
        )
    check_finite(x, "x")
    weight, bias = _check_coefficients(weight, bias)
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    p = torch.sigmoid(weight * x + bias)
    return design.T @ (design * (p * (1 - p)).unsqueeze(1))


def logistic_threshold_standard_error(x, weight: float, bias: float) -> float:
    r"""Standard error of the threshold :math:`x^{*} = -b/w` of a fitted
    logistic regression.

    The covariance of the maximum-likelihood estimate
    :math:`(\hat w, \hat b)` is approximately the inverse Fisher information
    (:func:`logistic_fisher_information`). The delta method with
    :math:`\nabla x^{*} = (b/w^2,\, -1/w)` gives
    :math:`\mathrm{se}(x^{*})^2 = \nabla x^{*\top} I^{-1} \nabla x^{*}`.

    Parameters
    ----------
    x : Tensor or array, shape (N,)
        The training inputs (finite, not all equal).
    weight, bias : float
        The fitted :math:`w \ne 0` and :math:`b`, finite.

    Returns
    -------
    float
        The standard error of :math:`-b/w`, in the units of ``x``.

    Examples
    --------
    >>> x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    >>> round(logistic_threshold_standard_error(x, -1.0, 0.0), 3)
    0.257
    """
    info = logistic_fisher_information(x, weight, bias)
    weight, bias = float(weight), float(bias)
    covariance, status = torch.linalg.inv_ex(info)
    if status.item() != 0 or not bool(torch.isfinite(covariance).all()):
        raise ValueError(
            "weight and bias make the Fisher information singular: every"
            " probability is 0 or 1 (or x takes a single value), so the"
            " threshold has no finite standard error"
        )
    grad = torch.tensor([bias / weight**2, -1.0 / weight], dtype=torch.float64)
    return float(torch.sqrt(grad @ covariance @ grad))


@dataclass(frozen=True)
class LogisticFit:
    """Logistic regressions on one feature, fitted by
    :func:`fit_logistic_newton`.

    Attributes
    ----------
    coef : Tensor, shape (2,) or (B, 2)
        :math:`(w, b)` of each fit in the units of ``x``, float64. Where a
        fit did not converge this is its last finite iterate, which is not a
        maximum-likelihood estimate.
    converged : Tensor of bool, shape () or (B,)
        Whether each fit converged. Data that a threshold separates
        perfectly (or a resample that holds one class only) have no finite
        maximum: their fits are flagged False.
    n_iter : int
        Newton steps taken (by the slowest fit).
    """

    coef: torch.Tensor
    converged: torch.Tensor
    n_iter: int

    @property
    def threshold(self) -> torch.Tensor:
        """The decision boundaries :math:`-b/w`; NaN where a fit did not
        converge."""
        t = -self.coef[..., 1] / self.coef[..., 0]
        return torch.where(self.converged, t, torch.nan)


def fit_logistic_newton(
    x, y, sample_weight=None, max_iter: int = 50, tol: float = 1e-10
) -> LogisticFit:
    r"""Maximum-likelihood logistic regression on one feature by Newton's
    method, batched.

    Minimises :math:`\sum_i v_i\,[\mathrm{softplus}(w x_i + b) - y_i (w x_i
    + b)]` (the summed binary cross-entropy with sample weights
    :math:`v_i`) for :math:`B` weightings at once. Each Newton step solves
    a 2 x 2 system with the gradient :math:`\sum_i v_i (p_i - y_i)(x_i, 1)`
    and the Hessian :math:`\sum_i v_i p_i (1 - p_i)(x_i, 1)(x_i, 1)^\top`;
    the input is standardised inside for conditioning. Used for bootstraps
    (weights are resampling counts).

    The iteration converges quadratically, usually in well under ten steps
    when the classes overlap. Data that a threshold separates perfectly
    have no finite solution: the Hessian becomes singular or the steps
    never shrink, and such a fit is returned with ``converged`` False
    rather than raising.

    Parameters
    ----------
    x : Tensor or array, shape (N,)
        The feature (finite, not all equal).
    y : Tensor or array, shape (N,)
        0/1 labels.
    sample_weight : Tensor or array, shape (N,) or (B, N), optional
        Non-negative finite weights of each example in each fit; None fits
        once with unit weights.
    max_iter : int
        Most Newton steps (a positive integer).
    tol : float
        Stop a fit when none of its coefficients (of the standardised
        feature) moves by more; finite and non-negative.

    Returns
    -------
    LogisticFit
        ``coef`` of shape (2,) for one fit (unit weights or a 1-D
        ``sample_weight``), (B, 2) otherwise.

    Examples
    --------
    >>> x = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    >>> fit = fit_logistic_newton(x, torch.tensor([0, 0, 1, 0, 1, 1]))
    >>> bool(fit.converged), round(fit.threshold.item(), 3)
    (True, 2.5)
    >>> bool(fit_logistic_newton(x, x > 2).converged)  # separable
    False
    """
    x, y = _check_binary_regression(x, y)
    x, y = x.double(), y.double()
    if not _is_int(max_iter) or max_iter < 1:
        raise ValueError(
            f"max_iter must be a positive integer; got {max_iter!r}"
        )
    if not _is_real(tol) or not (0 <= tol < math.inf):
        raise ValueError(
            f"tol must be a finite non-negative number; got {tol!r}"
        )
    single = sample_weight is None
    if single:
        v = torch.ones(1, x.numel(), dtype=torch.float64, device=x.device)
    else:
        v = as_float_tensor(sample_weight, "sample_weight").to(
            device=x.device, dtype=torch.float64
        )
        if v.dim() == 1:
            single = True
            v = v.unsqueeze(0)
        if v.dim() != 2 or v.shape[1] != x.numel() or v.shape[0] == 0:
            raise ValueError(
                f"sample_weight must have shape ({x.numel()},) or (B,"
                f" {x.numel()}) with B >= 1; got {tuple(v.shape)}"
            )
        check_finite(v, "sample_weight")
        if bool((v < 0).any()):
            raise ValueError("sample_weight must be non-negative")
    center, spread = x.mean(), x.std()
    if not spread > 0:
        raise ValueError(
            "x must not be constant; a threshold needs inputs on both sides"
        )
    z = (x - center) / spread
    design = torch.stack([z, torch.ones_like(z)], dim=1)  # (N, 2)
    theta = torch.zeros(v.shape[0], 2, dtype=torch.float64, device=x.device)
    active = torch.ones(v.shape[0], dtype=torch.bool, device=x.device)
    converged = torch.zeros_like(active)
    steps = 0
    while bool(active.any()) and steps < max_iter:
        steps += 1
        p = torch.sigmoid(theta @ design.T)  # (B, N)
        grad = (v * (p - y)) @ design  # (B, 2)
        hess = torch.einsum("bn,ni,nj->bij", v * p * (1 - p), design, design)
        step, info = torch.linalg.solve_ex(hess, grad.unsqueeze(-1))
        step = step.squeeze(-1)
        # A singular Hessian or a non-finite step: no finite optimum here.
        ok = (info == 0) & torch.isfinite(step).all(dim=1)
        active &= ok
        theta = torch.where(active.unsqueeze(1), theta - step, theta)
        done = active & (step.abs().amax(dim=1) <= tol)
        converged |= done
        active &= ~done
    w = theta[:, 0] / spread
    b = theta[:, 1] - w * center
    coef = torch.stack([w, b], dim=1)
    if single:
        return LogisticFit(coef[0], converged[0], steps)
    return LogisticFit(coef, converged, steps)


def bootstrap_thresholds(
    x, y, n_boot: int, rng: int | torch.Generator | None = None
) -> torch.Tensor:
    """Thresholds :math:`-b/w` of logistic regressions refitted on bootstrap
    resamples.

    Each resample draws N examples with replacement (as multinomial counts
    from the CPU generator that ``rng`` gives), and
    :func:`fit_logistic_newton` fits all resamples at once. The spread of
    the result estimates the sampling error of the threshold without the
    normal approximation of :func:`logistic_threshold_standard_error`.

    Parameters
    ----------
    x, y : Tensor or array, shape (N,)
        Feature and 0/1 labels.
    n_boot : int
        Number of resamples.
    rng : int, torch.Generator or None
        The randomness of the resampling (see
        :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    Tensor, shape (n_boot,)
        float64, on ``x``'s device; NaN for a resample whose fit has no
        finite optimum (small samples can draw separable resamples).

    Examples
    --------
    >>> x = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    >>> y = torch.tensor([0, 0, 1, 0, 1, 0, 1, 1])
    >>> thresholds = bootstrap_thresholds(x, y, 200, rng=0)
    >>> thresholds.shape, bool(thresholds.isnan().any())
    (torch.Size([200]), True)
    """
    x, y = _check_binary_regression(x, y)
    if not _is_int(n_boot) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    generator = as_generator(rng)
    n = x.numel()
    if n < 2:
        raise ValueError(
            f"x must have at least two examples to resample; got {n}"
        )
    draws = torch.randint(n, (n_boot, n), generator=generator)
    counts = torch.zeros(n_boot, n, dtype=torch.float64).scatter_add_(
        1, draws, torch.ones(n_boot, n, dtype=torch.float64)
    )
    return fit_logistic_newton(x, y, counts.to(x.device)).threshold


# -------------------------------------------------------------- localisation

#: The compartments of the simulated proteome, in column order.
COMPARTMENTS = (
    "nucleus",
    "cytoplasm",
    "mitochondrion",
    "plasma membrane",
    "secreted",
)

#: Pairs of compartments (indices into :data:`COMPARTMENTS`) in which
#: simulated proteins can sit at once, after well-known kinds of dual
#: localisation: nucleo-cytoplasmic shuttling, cytosolic and mitochondrial
#: isoforms, peripheral membrane proteins, membrane proteins whose ectodomain
#: is shed, and proteins dual-targeted to the nucleus and mitochondria.
DUAL_LOCALISATIONS = ((0, 1), (1, 2), (1, 3), (3, 4), (0, 2))


@dataclass(frozen=True)
class LocalisationData:
    """A simulated proteome (see :func:`simulate_localisation`).

    Attributes
    ----------
    features : Tensor, shape (N, D)
        Per protein: ``signal_features`` targeting-signal scores for each
        compartment (in compartment order), then ``composition_features``
        composition scores.
    labels : Tensor, shape (N, K)
        0/1 indicators of the compartments a protein sits in (one or two
        ones).
    ambiguous : Tensor of bool, shape (N,)
        The proteins that sit in one compartment but carry weak signals for
        both compartments of a pair.
    profiles : Tensor, shape (K, C)
        The composition profile of each compartment (the matrix :math:`M`
        of :func:`simulate_localisation`), kept so that the Bayes-optimal
        predictions of the simulation can be computed.
    """

    features: torch.Tensor
    labels: torch.Tensor
    ambiguous: torch.Tensor
    profiles: torch.Tensor

    @property
    def is_dual(self) -> torch.Tensor:
        """Boolean mask, shape (N,), of the proteins in two compartments."""
        return self.labels.sum(dim=1) > 1

    def __len__(self) -> int:
        return self.labels.shape[0]


def simulate_localisation(
    n_proteins: int,
    *,
    dual_fraction: float = 1 / 3,
    ambiguous_fraction: float = 0.0,
    signal_features: int = 3,
    composition_features: int = 8,
    signal_strength: float = 2.0,
    composition_strength: float = 1.0,
    rng: int | torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> LocalisationData:
    r"""Simulate proteins, their compartments and feature vectors.

    A stylised stand-in for the features that localisation predictors
    compute from a sequence (targeting-signal scores, amino-acid
    composition). It is simulated, not real, because the book needs data
    that ship with it and a known truth: which proteins really sit in two
    compartments.

    Each protein is, with probability ``dual_fraction``, in both
    compartments of a pair of :data:`DUAL_LOCALISATIONS` (drawn uniformly);
    with probability ``ambiguous_fraction`` it is *ambiguous*: in one
    compartment of such a pair (either, with equal probability) but with
    signals that point to both; otherwise it is in a single compartment
    (drawn uniformly from :data:`COMPARTMENTS`). With :math:`m` the 0/1
    vector of the compartments whose signals a protein carries (its
    compartments, or the pair of an ambiguous protein):

    * the signal scores of compartment :math:`k` are
      :math:`a\cdot\text{signal\_strength}\cdot m_k + \varepsilon`, with
      :math:`a = 1/2` for ambiguous proteins and 1 otherwise: a protein in
      two compartments carries both targeting signals, as dual-targeted
      proteins do, and an ambiguous one carries a weak signal that reads as
      either;
    * the composition scores are :math:`\text{composition\_strength}\cdot
      M^\top (m / \sum_k m_k) + \varepsilon`: a mixture of per-compartment
      composition profiles :math:`M` (a :math:`K \times C` standard normal
      matrix drawn once per call);

    with independent standard normal noise :math:`\varepsilon`. An
    ambiguous protein's features do not tell which of its two
    compartments it sits in. Because :math:`M` is drawn per call, simulate
    one proteome and split it into training and test proteins.

    Parameters
    ----------
    n_proteins : int
        Number of proteins N.
    dual_fraction, ambiguous_fraction : float
        Probabilities of the two kinds of protein, in [0, 1], at most 1
        together.
    signal_features, composition_features : int
        Signal scores per compartment (at least 1) and composition scores
        (at least 0).
    signal_strength, composition_strength : float
        Signal sizes in units of the noise's standard deviation (finite,
        non-negative).
    rng : int, torch.Generator or None
        Everything is drawn on the CPU from this randomness (see
        :func:`xentlib.runtime.as_generator`), then moved to ``device``.
    device : str or torch.device
        Where the returned tensors live.

    Returns
    -------
    LocalisationData
        float32 features of shape
        (N, K * signal_features + composition_features), float32 labels of
        shape (N, K) and the boolean mask of ambiguous proteins.

    Examples
    --------
    >>> data = simulate_localisation(100, ambiguous_fraction=0.2, rng=0)
    >>> data.features.shape, data.labels.shape
    (torch.Size([100, 23]), torch.Size([100, 5]))
    >>> bool((data.labels[data.ambiguous].sum(1) == 1).all())
    True
    """
    _check_simulation(
        n_proteins,
        dual_fraction,
        ambiguous_fraction,
        signal_features,
        composition_features,
        signal_strength,
        composition_strength,
    )
    device = resolve_device(device)
    g = dict(generator=as_generator(rng))
    k, pairs = len(COMPARTMENTS), torch.tensor(DUAL_LOCALISATIONS)
    profiles = torch.randn(k, composition_features, **g)
    # The kind of each protein: dual, ambiguous or single.
    u = torch.rand(n_proteins, **g)
    dual = u < dual_fraction
    ambiguous = (u >= dual_fraction) & (u < dual_fraction + ambiguous_fraction)
    pair = torch.randint(len(pairs), (n_proteins,), **g)
    single = torch.randint(k, (n_proteins,), **g)
    # The compartments whose signals each protein carries.
    shown = torch.zeros(n_proteins, k)
    two = dual | ambiguous
    shown[two, pairs[pair[two], 0]] = 1.0
    shown[two, pairs[pair[two], 1]] = 1.0
    shown[~two, single[~two]] = 1.0
    # Targeting signals at full strength, at half for an ambiguous protein.
    strength = torch.where(ambiguous, 0.5, 1.0).unsqueeze(1)
    signals = signal_strength * strength * shown
    signals = signals.repeat_interleave(signal_features, dim=1)
    signals = signals + torch.randn(signals.shape, **g)
    # Composition: a mixture of the profiles of those compartments.
    mixture = shown / shown.sum(dim=1, keepdim=True)
    composition = composition_strength * mixture @ profiles
    composition = composition + torch.randn(composition.shape, **g)
    # An ambiguous protein sits in one compartment of its pair, either one.
    which = torch.randint(2, (n_proteins,), **g)
    labels = shown.clone()
    rows = ambiguous.nonzero().squeeze(1)
    labels[rows, pairs[pair[rows], 1 - which[rows]]] = 0.0
    features = torch.cat([signals, composition], dim=1)
    return LocalisationData(
        features.to(device),
        labels.to(device),
        ambiguous.to(device),
        profiles.to(device),
    )


def _check_simulation(
    n_proteins,
    dual_fraction,
    ambiguous_fraction,
    signal_features,
    composition_features,
    signal_strength,
    composition_strength,
) -> None:
    for name, value, low in (
        ("n_proteins", n_proteins, 1),
        ("signal_features", signal_features, 1),
        ("composition_features", composition_features, 0),
    ):
        if not _is_int(value) or value < low:
            raise ValueError(
                f"{name} must be an integer >= {low}; got {value!r}"
            )
    for name, value in (
        ("dual_fraction", dual_fraction),
        ("ambiguous_fraction", ambiguous_fraction),
    ):
        if not _is_real(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]; got {value!r}")
    if dual_fraction + ambiguous_fraction > 1.0:
        raise ValueError(
            "dual_fraction and ambiguous_fraction must sum to at most 1;"
            f" got {dual_fraction!r} + {ambiguous_fraction!r}"
        )
    for name, value in (
        ("signal_strength", signal_strength),
        ("composition_strength", composition_strength),
    ):
        if not _is_real(value) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{name} must be a non-negative number; got {value!r}"
            )


class LocalisationMLP(nn.Module):
    """A small multilayer perceptron from protein features to one logit per
    compartment.

    The same network serves both readings of its outputs: a softmax over
    the logits (one compartment, trained with cross-entropy) or an
    independent sigmoid per logit (a set of compartments, trained with
    binary cross-entropy). Only the loss differs.

    Parameters
    ----------
    n_features : int
        Input width D.
    n_compartments : int
        Output width K.
    hidden : int
        Hidden units.
    """

    def __init__(
        self,
        n_features: int,
        n_compartments: int = len(COMPARTMENTS),
        hidden: int = 32,
    ):
        super().__init__()
        for name, value in (
            ("n_features", n_features),
            ("n_compartments", n_compartments),
            ("hidden", hidden),
        ):
            if not _is_int(value) or value < 1:
                raise ValueError(
                    f"{name} must be a positive integer; got {value!r}"
                )
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_compartments),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, K) for features of shape (N, D)."""
        return self.net(x)


def _check_indicators(x, name: str) -> torch.Tensor:
    if not isinstance(x, (torch.Tensor, np.ndarray, list, tuple)):
        raise ValueError(
            f"{name} must be a tensor of 0/1 indicators; got"
            f" {type(x).__name__}"
        )
    try:
        x = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a tensor of 0/1 indicators") from err
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have shape (N, K) of 0/1 indicators; got"
            f" {tuple(x.shape)}"
        )
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must hold 0/1 indicators")
    return x


def soft_targets(labels) -> torch.Tensor:
    """Spread each protein's unit of probability evenly over its
    compartments.

    Parameters
    ----------
    labels : Tensor, shape (N, K)
        0/1 indicators, at least one 1 per row.

    Returns
    -------
    Tensor, shape (N, K)
        ``labels / labels.sum(1)``: one-hot rows stay one-hot, a protein in
        two compartments gets (1/2, 1/2). A floating tensor, ready as the
        probability target of :func:`xentlib.cross_entropy`.

    Examples
    --------
    >>> soft_targets(torch.tensor([[1, 1, 0], [0, 0, 1]]))
    tensor([[0.5000, 0.5000, 0.0000],
            [0.0000, 0.0000, 1.0000]])
    """
    labels = _check_indicators(labels, "labels")
    counts = labels.sum(dim=1, keepdim=True)
    if labels.shape[0] and bool((counts == 0).any()):
        raise ValueError(
            "labels must have at least one compartment (a 1) in every row"
        )
    if not labels.is_floating_point():
        labels = labels.to(torch.get_default_dtype())
    return labels / counts


def _check_prob(prob) -> torch.Tensor:
    prob = as_float_tensor(prob, "prob")
    if prob.dim() != 2 or prob.shape[1] == 0:
        raise ValueError(
            f"prob must have shape (N, K) with K >= 1; got {tuple(prob.shape)}"
        )
    check_unit_interval(prob, "prob")
    return prob


def top1_label_sets(prob) -> torch.Tensor:
    """Predicted label sets of a single-label classifier: the most probable
    class only.

    Parameters
    ----------
    prob : Tensor, shape (N, K)
        Class probabilities in [0, 1].

    Returns
    -------
    Tensor, shape (N, K)
        One-hot 0/1 indicators, in ``prob``'s dtype.

    Examples
    --------
    >>> top1_label_sets(torch.tensor([[0.2, 0.5, 0.3]]))
    tensor([[0., 1., 0.]])
    """
    prob = _check_prob(prob)
    out = torch.zeros_like(prob)
    return out.scatter_(1, prob.argmax(dim=1, keepdim=True), 1.0)


def threshold_label_sets(prob, threshold: float = 0.5) -> torch.Tensor:
    """Predicted label sets ``{k : p_k > threshold}`` as 0/1 indicators.

    Parameters
    ----------
    prob : Tensor, shape (N, K)
        Per-class probabilities in [0, 1] (independent sigmoids, or a
        softmax).
    threshold : float
        In [0, 1).

    Returns
    -------
    Tensor, shape (N, K)
        0/1 indicators in ``prob``'s dtype.

    Examples
    --------
    >>> threshold_label_sets(torch.tensor([[0.45, 0.4, 0.15]]), 0.3)
    tensor([[1., 1., 0.]])
    """
    prob = _check_prob(prob)
    if not _is_real(threshold) or not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1); got {threshold!r}")
    return (prob > threshold).to(prob.dtype)


def _check_label_pair(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    pred = _check_indicators(pred, "pred")
    target = _check_indicators(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred must have the shape of target {tuple(target.shape)}; got"
            f" {tuple(pred.shape)}"
        )
    if target.shape[0] == 0:
        raise ValueError(
            "target is empty; the metric needs at least one example"
        )
    return pred.to(target.device).bool(), target.bool()


def hamming_loss(pred, target) -> float:
    r"""Fraction of wrong label decisions:
    :math:`\frac{1}{NK}\sum_{i,k} [\hat y_{ik} \ne y_{ik}]`.

    Parameters
    ----------
    pred, target : Tensor, shape (N, K)
        Predicted and true 0/1 indicator matrices.

    Returns
    -------
    float
        In [0, 1]; 0 is perfect. Equals :func:`sklearn.metrics.hamming_loss`
        on indicator matrices.

    Examples
    --------
    >>> hamming_loss(torch.tensor([[1, 0, 0]]), torch.tensor([[1, 1, 0]]))
    0.3333333333333333
    """
    pred, target = _check_label_pair(pred, target)
    return (pred != target).double().mean().item()


def exact_match_accuracy(pred, target) -> float:
    r"""Fraction of examples whose whole predicted label set is right
    (subset accuracy).

    :math:`\frac{1}{N}\sum_i [\hat y_i = y_i]`, where a row counts only if
    all :math:`K` decisions agree. Equals
    :func:`sklearn.metrics.accuracy_score` on indicator matrices.

    Parameters
    ----------
    pred, target : Tensor, shape (N, K)
        Predicted and true 0/1 indicator matrices.

    Returns
    -------
    float
        In [0, 1]; 1 is perfect.

    Examples
    --------
    >>> exact_match_accuracy(
    ...     torch.tensor([[1, 0], [1, 1]]), torch.tensor([[1, 0], [0, 1]])
    ... )
    0.5
    """
    pred, target = _check_label_pair(pred, target)
    return (pred == target).all(dim=1).double().mean().item()

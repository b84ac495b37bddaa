"""Classification in the sciences: DNA hairpin stability and protein localisation.

Two problems in which the shape of the output decides what cross-entropy can learn.

* **Hairpins** (a binary label that follows a physical variable). The book ships
  ``data/hairpins.csv.gz``: designed DNA hairpins whose folding free energy
  :math:`\\Delta G` (kcal/mol at 37 C) was computed offline by seqfold with the
  SantaLucia & Hicks (2004) nearest-neighbour parameters (see
  ``data/hairpins.md``). :func:`load_hairpins` reads it. A hairpin's "function"
  is drawn at run time from a noisy logistic rule on its stability,
  :math:`P(\\mathrm{active}) = \\sigma((\\Delta G^{*} - \\Delta G)/s)`
  (:func:`activity_probability`, :func:`sample_activity`); logistic regression
  on :math:`\\Delta G` then recovers the threshold :math:`\\Delta G^{*} = -b/w`,
  with a standard error from the Fisher information
  (:func:`logistic_threshold_standard_error`) or a bootstrap
  (:func:`bootstrap_thresholds`, built on the batched Newton solver
  :func:`fit_logistic_newton`).
* **Protein localisation** (one label against a set of labels).
  :func:`simulate_localisation` draws a stylised proteome in which about a
  third of the proteins sit in two compartments; :class:`LocalisationMLP` is
  the small network trained on it with a softmax head (cross-entropy) or with
  independent sigmoids (binary cross-entropy). Label sets are compared with
  :func:`exact_match_accuracy` and :func:`hamming_loss`.

Introduced in chapter 5.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._validation import as_float_tensor, check_no_nan, check_unit_interval
from .datasets import data_path

__all__ = [
    "COMPARTMENTS",
    "DUAL_LOCALISATIONS",
    "GAS_CONSTANT_KCAL",
    "Hairpins",
    "LocalisationData",
    "LocalisationMLP",
    "StabilityLogistic",
    "activity_probability",
    "bootstrap_thresholds",
    "exact_match_accuracy",
    "fit_logistic_newton",
    "hamming_loss",
    "load_hairpins",
    "logistic_threshold_standard_error",
    "sample_activity",
    "simulate_localisation",
    "soft_targets",
    "threshold_label_sets",
    "top1_label_sets",
]

#: The molar gas constant in kcal/(mol K); RT at 37 C is about 0.616 kcal/mol.
GAS_CONSTANT_KCAL = 1.987204259e-3

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


# --------------------------------------------------------------------------- hairpins


@dataclass(frozen=True)
class Hairpins:
    """The designed DNA hairpins of ``data/hairpins.csv.gz``, one entry per sequence.

    Attributes
    ----------
    id, sequence, structure : numpy arrays of str, shape (N,)
        Identifier, DNA sequence (5' to 3') and seqfold's minimum free energy
        structure in dot-bracket notation.
    dg : numpy array of float64, shape (N,)
        Folding free energy of that structure, kcal/mol at 37 C (negative is
        stable; 0.0 where nothing folds).
    length, flank5_len, stem_len, loop_len, flank3_len, stem_mismatches, stem_gc : numpy arrays of int, shape (N,)
        The design: total length, flank, stem and loop lengths, mismatched
        positions in the returning strand, and G/C bases in the stem.
    """

    id: np.ndarray
    sequence: np.ndarray
    structure: np.ndarray
    dg: np.ndarray
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
    """
    with gzip.open(
        data_path(_HAIRPIN_FILE), "rt", encoding="ascii", newline=""
    ) as handle:
        rows = list(csv.DictReader(handle))
    columns = {
        "id": np.array([r["id"] for r in rows]),
        "sequence": np.array([r["sequence"] for r in rows]),
        "structure": np.array([r["structure"] for r in rows]),
        "dg": np.array(
            [float(r["dg_kcal_per_mol"]) for r in rows], dtype=np.float64
        ),
    }
    for name in _HAIRPIN_INT_FIELDS:
        columns[name] = np.array([int(r[name]) for r in rows], dtype=np.int64)
    return Hairpins(**columns)


def _check_rule(threshold, scale) -> None:
    for name, value in (("threshold", threshold), ("scale", scale)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not np.isfinite(value)
        ):
            raise ValueError(
                f"{name} must be a finite number in kcal/mol; got {value!r}"
            )
    if scale <= 0:
        raise ValueError(f"scale must be positive (kcal/mol); got {scale!r}")


def activity_probability(dg, threshold: float, scale: float) -> torch.Tensor:
    r"""Probability that a hairpin is active under the noisy stability rule.

    .. math:: P(\mathrm{active} \mid \Delta G) = \sigma\!\left(\frac{\Delta G^{*} - \Delta G}{s}\right)

    The more negative (stable) the fold, the likelier the function; half of
    the hairpins at :math:`\Delta G = \Delta G^{*}` are active, and :math:`s`
    sets how sharp the switch is. With :math:`s = RT` this is the fraction of
    time a two-state molecule spends folded when it competes with an
    alternative state of free energy :math:`\Delta G^{*}`.

    Parameters
    ----------
    dg : Tensor or array, shape (N,)
        Folding free energies in kcal/mol.
    threshold : float
        :math:`\Delta G^{*}`, kcal/mol.
    scale : float
        :math:`s > 0`, kcal/mol.

    Returns
    -------
    Tensor, shape (N,)
        Probabilities, on ``dg``'s device and in its floating dtype.
    """
    _check_rule(threshold, scale)
    dg = as_float_tensor(dg, "dg")
    check_no_nan(dg, "dg")
    return torch.sigmoid((threshold - dg) / scale)


def sample_activity(
    dg,
    threshold: float,
    scale: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw 0/1 activity labels from :func:`activity_probability`.

    Parameters
    ----------
    dg, threshold, scale
        As in :func:`activity_probability`.
    generator : torch.Generator, optional
        A CPU generator; the uniforms are drawn on the CPU and moved to
        ``dg``'s device, so a seed gives the same labels on any device.

    Returns
    -------
    Tensor, shape (N,)
        0.0 / 1.0 labels in ``dg``'s dtype and device.
    """
    prob = activity_probability(dg, threshold, scale)
    u = torch.rand(prob.shape, generator=generator, dtype=torch.float64).to(
        device=prob.device, dtype=prob.dtype
    )
    return (u < prob).to(prob.dtype)


class StabilityLogistic(nn.Module):
    r"""Logistic regression on one physical variable: :math:`\mathrm{logit} = w x + b`.

    Internally the input is standardised with fixed ``center`` and ``spread``
    (so that gradient descent is well conditioned); :meth:`coefficients`
    returns :math:`(w, b)` in the units of ``x``, and :meth:`threshold` the
    decision boundary :math:`x^{*} = -b/w` where the predicted probability is
    one half. Parameters start at zero (the loss is convex, so the start does
    not matter).

    Parameters
    ----------
    center, spread : float
        Usually the mean and standard deviation of the training inputs.
    """

    def __init__(self, center: float, spread: float):
        super().__init__()
        if not spread > 0:
            raise ValueError(f"spread must be positive; got {spread!r}")
        self.register_buffer("center", torch.tensor(float(center)))
        self.register_buffer("spread", torch.tensor(float(spread)))
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


def _check_binary_regression(
    x, y, name_x: str = "x"
) -> tuple[torch.Tensor, torch.Tensor]:
    x = as_float_tensor(x, name_x)
    if x.dim() != 1:
        raise ValueError(
            f"{name_x} must have shape (N,); got {tuple(x.shape)}"
        )
    check_no_nan(x, name_x)
    y = as_float_tensor(y, "y").to(device=x.device, dtype=x.dtype)
    if y.shape != x.shape:
        raise ValueError(
            f"y must have shape {tuple(x.shape)} like {name_x}; got"
            f" {tuple(y.shape)}"
        )
    if y.numel() and not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold 0/1 labels")
    return x, y


def logistic_threshold_standard_error(
    x, weight: float, bias: float
) -> tuple[float, torch.Tensor]:
    r"""Standard error of the threshold :math:`x^{*} = -b/w` of a fitted logistic regression.

    The covariance of the maximum-likelihood estimate :math:`(\hat w, \hat b)`
    is approximately the inverse Fisher information, which for logistic
    regression is also the Hessian of the summed cross-entropy:

    .. math::
        I = \sum_i p_i (1 - p_i) \begin{pmatrix} x_i^2 & x_i \\ x_i & 1 \end{pmatrix},
        \qquad p_i = \sigma(w x_i + b).

    The delta method with :math:`\nabla x^{*} = (b/w^2,\, -1/w)` gives
    :math:`\mathrm{se}(x^{*})^2 = \nabla x^{*\top} I^{-1} \nabla x^{*}`.

    Parameters
    ----------
    x : Tensor or array, shape (N,)
        The training inputs.
    weight, bias : float
        The fitted :math:`w \ne 0` and :math:`b`.

    Returns
    -------
    se : float
        The standard error of :math:`-b/w`, in the units of ``x``.
    covariance : Tensor, shape (2, 2)
        :math:`I^{-1}`, ordered (w, b), float64 on the CPU.
    """
    x = as_float_tensor(x, "x").detach().to(device="cpu", dtype=torch.float64)
    if x.dim() != 1 or x.numel() < 2:
        raise ValueError(
            f"x must have shape (N,) with N >= 2; got {tuple(x.shape)}"
        )
    check_no_nan(x, "x")
    if not np.isfinite(weight) or weight == 0:
        raise ValueError(
            f"weight must be a finite non-zero number; got {weight!r}"
        )
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    p = torch.sigmoid(weight * x + bias)
    info = design.T @ (design * (p * (1 - p)).unsqueeze(1))
    covariance = torch.linalg.inv(info)
    grad = torch.tensor([bias / weight**2, -1.0 / weight], dtype=torch.float64)
    return float(torch.sqrt(grad @ covariance @ grad)), covariance


def fit_logistic_newton(
    x, y, sample_weight=None, max_iter: int = 50, tol: float = 1e-10
) -> torch.Tensor:
    r"""Maximum-likelihood logistic regression on one feature by Newton's method, batched.

    Minimises :math:`\sum_i v_i\,[\mathrm{softplus}(w x_i + b) - y_i (w x_i + b)]`
    (the summed binary cross-entropy with sample weights :math:`v_i`) for
    :math:`B` weightings at once. Each Newton step solves a 2 x 2 system with
    the gradient :math:`\sum_i v_i (p_i - y_i)(x_i, 1)` and the Hessian
    :math:`\sum_i v_i p_i (1 - p_i)(x_i, 1)(x_i, 1)^\top`; the input is
    standardised inside for conditioning. Used for bootstraps (weights are
    resampling counts).

    Parameters
    ----------
    x : Tensor or array, shape (N,)
        The feature.
    y : Tensor or array, shape (N,)
        0/1 labels.
    sample_weight : Tensor or array, shape (N,) or (B, N), optional
        Non-negative weights of each example in each fit; None fits once with
        unit weights.
    max_iter : int
        Most Newton steps. The iteration converges quadratically, usually in
        well under ten steps when the classes overlap; data that a threshold
        separates perfectly have no finite solution, and the result then is
        not meaningful.
    tol : float
        Stop when no coefficient (of the standardised feature) moves by more.

    Returns
    -------
    Tensor, shape (2,) or (B, 2)
        :math:`(w, b)` of each fit in the units of ``x``, float64, on ``x``'s device.
    """
    x, y = _check_binary_regression(x, y)
    x, y = x.double(), y.double()
    if (
        isinstance(max_iter, bool)
        or not isinstance(max_iter, int)
        or max_iter < 1
    ):
        raise ValueError(
            f"max_iter must be a positive integer; got {max_iter!r}"
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
        if v.dim() != 2 or v.shape[1] != x.numel():
            raise ValueError(
                f"sample_weight must have shape ({x.numel()},) or (B,"
                f" {x.numel()}); got {tuple(v.shape)}"
            )
        check_no_nan(v, "sample_weight")
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
    for _ in range(max_iter):
        p = torch.sigmoid(theta @ design.T)  # (B, N)
        grad = (v * (p - y)) @ design  # (B, 2)
        hess = torch.einsum("bn,ni,nj->bij", v * p * (1 - p), design, design)
        step = torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
        theta = theta - step
        if not bool(
            step.abs().max() > tol
        ):  # also stops on NaN (separable data)
            break
    w = theta[:, 0] / spread
    b = theta[:, 1] - w * center
    out = torch.stack([w, b], dim=1)
    return out[0] if single else out


def bootstrap_thresholds(
    x, y, n_boot: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Thresholds :math:`-b/w` of logistic regressions refitted on bootstrap resamples.

    Each resample draws N examples with replacement (as multinomial counts
    from a CPU ``generator``), and :func:`fit_logistic_newton` fits all
    resamples at once. The spread of the result estimates the sampling error
    of the threshold without the normal approximation of
    :func:`logistic_threshold_standard_error`.

    Parameters
    ----------
    x, y : Tensor or array, shape (N,)
        Feature and 0/1 labels.
    n_boot : int
        Number of resamples.
    generator : torch.Generator, optional
        CPU generator for the resampling.

    Returns
    -------
    Tensor, shape (n_boot,)
        float64, on ``x``'s device.
    """
    x, y = _check_binary_regression(x, y)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    n = x.numel()
    draws = torch.randint(n, (n_boot, n), generator=generator)
    ones = torch.ones(n_boot, n, dtype=torch.float64)
    counts = torch.zeros(n_boot, n, dtype=torch.float64).scatter_add_(
        1, draws, ones
    )  # resampling counts
    wb = fit_logistic_newton(x, y, counts.to(x.device))
    return -wb[:, 1] / wb[:, 0]


# --------------------------------------------------------------------------- localisation

#: The compartments of the simulated proteome, in column order.
COMPARTMENTS = (
    "nucleus",
    "cytoplasm",
    "mitochondrion",
    "plasma membrane",
    "secreted",
)

#: Pairs of compartments (indices into :data:`COMPARTMENTS`) in which simulated
#: proteins can sit at once, after well-known kinds of dual localisation:
#: nucleo-cytoplasmic shuttling, cytosolic and mitochondrial isoforms, peripheral
#: membrane proteins, membrane proteins whose ectodomain is shed, and proteins
#: dual-targeted to the nucleus and mitochondria.
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
        0/1 indicators of the compartments a protein sits in (one or two ones).
    """

    features: torch.Tensor
    labels: torch.Tensor

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
    signal_features: int = 3,
    composition_features: int = 8,
    signal_strength: float = 2.0,
    composition_strength: float = 1.0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> LocalisationData:
    r"""Simulate proteins, their compartments and feature vectors.

    A stylised stand-in for the features that localisation predictors compute
    from a sequence (targeting-signal scores, amino-acid composition). It is
    simulated, not real, because the book needs data that ship with it and a
    known truth: which proteins really sit in two compartments.

    Each protein sits, with probability ``dual_fraction``, in one of the pairs
    of :data:`DUAL_LOCALISATIONS` (drawn uniformly), and otherwise in a single
    compartment (drawn uniformly from :data:`COMPARTMENTS`). With :math:`y` its
    0/1 indicator vector over the :math:`K` compartments:

    * the signal scores of compartment :math:`k` are
      :math:`\text{signal\_strength}\cdot y_k + \varepsilon`: a protein in two
      compartments carries both targeting signals, as dual-targeted proteins do;
    * the composition scores are :math:`\text{composition\_strength}\cdot
      M^\top (y / \sum_k y_k) + \varepsilon`: a mixture of per-compartment
      composition profiles :math:`M` (a :math:`K \times C` standard normal
      matrix drawn once per call);

    with independent standard normal noise :math:`\varepsilon`. Because
    :math:`M` is drawn per call, simulate one proteome and split it into
    training and test proteins.

    Parameters
    ----------
    n_proteins : int
        Number of proteins N.
    dual_fraction : float
        Probability that a protein sits in two compartments, in [0, 1].
    signal_features, composition_features : int
        Signal scores per compartment (at least 1) and composition scores (at least 0).
    signal_strength, composition_strength : float
        Signal sizes in units of the noise's standard deviation.
    generator : torch.Generator, optional
        A CPU generator; everything is drawn from it, then moved to ``device``.
    device : str or torch.device
        Where the returned tensors live.

    Returns
    -------
    LocalisationData
        float32 features of shape (N, K * signal_features + composition_features)
        and float32 labels of shape (N, K).
    """
    for name, value, low in (
        ("n_proteins", n_proteins, 1),
        ("signal_features", signal_features, 1),
        ("composition_features", composition_features, 0),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
        ):
            raise ValueError(
                f"{name} must be an integer >= {low}; got {value!r}"
            )
    if not 0.0 <= dual_fraction <= 1.0:
        raise ValueError(
            f"dual_fraction must be in [0, 1]; got {dual_fraction!r}"
        )
    for name, value in (
        ("signal_strength", signal_strength),
        ("composition_strength", composition_strength),
    ):
        if not np.isfinite(value) or value < 0:
            raise ValueError(
                f"{name} must be a non-negative number; got {value!r}"
            )
    k = len(COMPARTMENTS)
    g = dict(generator=generator)
    profiles = torch.randn(k, composition_features, **g)
    dual = torch.rand(n_proteins, **g) < dual_fraction
    pair = torch.randint(len(DUAL_LOCALISATIONS), (n_proteins,), **g)
    single = torch.randint(k, (n_proteins,), **g)
    labels = torch.zeros(n_proteins, k)
    pairs = torch.tensor(DUAL_LOCALISATIONS)
    labels[dual, pairs[pair[dual], 0]] = 1.0
    labels[dual, pairs[pair[dual], 1]] = 1.0
    labels[~dual, single[~dual]] = 1.0
    signals = signal_strength * labels.repeat_interleave(
        signal_features, dim=1
    )
    signals = signals + torch.randn(signals.shape, **g)
    mixture = labels / labels.sum(dim=1, keepdim=True)
    composition = composition_strength * mixture @ profiles + torch.randn(
        n_proteins, composition_features, **g
    )
    features = torch.cat([signals, composition], dim=1)
    return LocalisationData(features.to(device), labels.to(device))


class LocalisationMLP(nn.Module):
    """A small multilayer perceptron from protein features to one logit per compartment.

    The same network serves both readings of its outputs: a softmax over the
    logits (one compartment, trained with cross-entropy) or an independent
    sigmoid per logit (a set of compartments, trained with binary
    cross-entropy). Only the loss differs.

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
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_compartments),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, K) for features of shape (N, D)."""
        return self.net(x)


def _check_indicators(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have shape (N, K) of 0/1 indicators; got"
            f" {tuple(x.shape)}"
        )
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must hold 0/1 indicators")
    return x


def soft_targets(labels) -> torch.Tensor:
    """Spread each protein's unit of probability evenly over its compartments.

    Parameters
    ----------
    labels : Tensor, shape (N, K)
        0/1 indicators, at least one 1 per row.

    Returns
    -------
    Tensor, shape (N, K)
        ``labels / labels.sum(1)``: one-hot rows stay one-hot, a protein in two
        compartments gets (1/2, 1/2). A floating tensor, ready as the
        probability target of :func:`xentlib.cross_entropy`.
    """
    labels = _check_indicators(labels, "labels")
    counts = labels.sum(dim=1, keepdim=True)
    if labels.shape[0] and bool((counts == 0).any()):
        raise ValueError(
            "labels must have at least one compartment (a 1) in every row"
        )
    labels = (
        labels
        if labels.is_floating_point()
        else labels.to(torch.get_default_dtype())
    )
    return labels / counts


def top1_label_sets(prob) -> torch.Tensor:
    """Predicted label sets of a single-label classifier: the most probable class only.

    Parameters
    ----------
    prob : Tensor, shape (N, K)
        Class probabilities (or logits: the argmax is the same).

    Returns
    -------
    Tensor, shape (N, K)
        One-hot 0/1 indicators, in ``prob``'s dtype.
    """
    prob = as_float_tensor(prob, "prob")
    if prob.dim() != 2 or prob.shape[1] == 0:
        raise ValueError(
            f"prob must have shape (N, K) with K >= 1; got {tuple(prob.shape)}"
        )
    out = torch.zeros_like(prob)
    return out.scatter_(1, prob.argmax(dim=1, keepdim=True), 1.0)


def threshold_label_sets(prob, threshold: float = 0.5) -> torch.Tensor:
    """Predicted label sets ``{k : p_k > threshold}`` as 0/1 indicators.

    Parameters
    ----------
    prob : Tensor, shape (N, K)
        Per-class probabilities in [0, 1] (independent sigmoids, or a softmax).
    threshold : float
        In [0, 1).

    Returns
    -------
    Tensor, shape (N, K)
        0/1 indicators in ``prob``'s dtype.
    """
    prob = as_float_tensor(prob, "prob")
    if prob.dim() != 2:
        raise ValueError(
            f"prob must have shape (N, K); got {tuple(prob.shape)}"
        )
    check_unit_interval(prob, "prob")
    if not 0.0 <= threshold < 1.0:
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
    r"""Fraction of wrong label decisions: :math:`\frac{1}{NK}\sum_{i,k} [\hat y_{ik} \ne y_{ik}]`.

    Parameters
    ----------
    pred, target : Tensor, shape (N, K)
        Predicted and true 0/1 indicator matrices.

    Returns
    -------
    float
        In [0, 1]; 0 is perfect. Equals :func:`sklearn.metrics.hamming_loss`
        on indicator matrices.
    """
    pred, target = _check_label_pair(pred, target)
    return (pred != target).double().mean().item()


def exact_match_accuracy(pred, target) -> float:
    r"""Fraction of examples whose whole predicted label set is right (subset accuracy).

    :math:`\frac{1}{N}\sum_i [\hat y_i = y_i]`, where a row counts only if all
    :math:`K` decisions agree. Equals :func:`sklearn.metrics.accuracy_score`
    on indicator matrices.

    Parameters
    ----------
    pred, target : Tensor, shape (N, K)
        Predicted and true 0/1 indicator matrices.

    Returns
    -------
    float
        In [0, 1]; 1 is perfect.
    """
    pred, target = _check_label_pair(pred, target)
    return (pred == target).all(dim=1).double().mean().item()

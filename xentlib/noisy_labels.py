r"""Learning from noisy labels: transition matrices and loss corrections.

Class-dependent label noise is described by a row-stochastic transition
matrix :math:`T` with :math:`T_{ij} = P(\tilde y = j \mid y = i)`: the
probability that an example of true class :math:`i` carries the observed
(noisy) label :math:`j`. This module builds such matrices (pair flips,
symmetric noise, or noise shaped like a trained model's confusions),
corrupts labels with them, and implements the two loss corrections of
Patrini et al. (2017):

* the *forward* correction trains the model's clean-class probabilities
  :math:`p` through the noise, with the cross-entropy of the noisy label
  under :math:`T^\top p`;
* the *backward* correction applies :math:`T^{-1}` to the vector of
  per-class losses, which makes the loss on noisy labels an unbiased
  estimate of the loss on clean ones.

It also estimates :math:`T` from a model trained on the noisy labels,
either from anchor points or from a small split with clean labels, and
carries the training loop the chapter uses to follow clean test accuracy
epoch by epoch and to stop early.

Introduced in chapter 4.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import nn

from ._validation import (
    as_float_tensor,
    check_class_target,
    check_distribution,
    check_finite,
    check_logits,
    check_reduction,
    reduce_rows,
)
from .models import mlp
from .runtime import as_generator
from .training import History, TrainConfig, fit

__all__ = [
    "backward_corrected_cross_entropy",
    "confusion_transition_matrix",
    "corrupt_labels",
    "estimate_transition_matrix",
    "fit_and_evaluate",
    "forward_corrected_cross_entropy",
    "mlp_classifier",
    "pair_flip_transition_matrix",
    "symmetric_transition_matrix",
]


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_probability(value, name: str) -> float:
    if not _is_real(value) or not (0.0 <= value <= 1.0):
        raise ValueError(
            f"{name} must be a probability in [0, 1]; got {value!r}"
        )
    return float(value)


def _check_n_classes(n_classes) -> int:
    if (
        isinstance(n_classes, bool)
        or not isinstance(n_classes, numbers.Integral)
        or n_classes < 2
    ):
        raise ValueError(
            f"n_classes must be an integer >= 2; got {n_classes!r}"
        )
    return int(n_classes)


# ------------------------------------------------------ transition matrices


def pair_flip_transition_matrix(
    n_classes: int,
    noise: float,
    *,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> torch.Tensor:
    r"""The transition matrix of pair-flip noise: class :math:`k` becomes
    :math:`k+1 \bmod C`.

    .. math::
        T_{kk} = 1 - \eta, \qquad T_{k,\,(k+1) \bmod C} = \eta,

    all other entries zero, where :math:`\eta` is ``noise``. For
    :math:`\eta < 1/2` the true class keeps the majority of every class's
    labels.

    Parameters
    ----------
    n_classes : int
        Number of classes :math:`C \ge 2`.
    noise : float
        Flip probability :math:`\eta \in [0, 1]`.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(C, C)``, rows sum to one.

    Examples
    --------
    >>> pair_flip_transition_matrix(3, 0.25)
    tensor([[0.7500, 0.2500, 0.0000],
            [0.0000, 0.7500, 0.2500],
            [0.2500, 0.0000, 0.7500]], dtype=torch.float64)
    """
    n_classes = _check_n_classes(n_classes)
    noise = _check_probability(noise, "noise")
    eye = torch.eye(n_classes, dtype=dtype, device=device)
    return (1.0 - noise) * eye + noise * torch.roll(eye, shifts=1, dims=1)


def symmetric_transition_matrix(
    n_classes: int,
    noise: float,
    *,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> torch.Tensor:
    r"""The transition matrix of symmetric (uniform) noise.

    .. math::
        T_{kk} = 1 - \eta, \qquad T_{kj} = \eta / (C - 1) \quad (j \neq k).

    It is singular at :math:`\eta = (C-1)/C`, where every label is uniform
    whatever the true class.

    Parameters
    ----------
    n_classes : int
        Number of classes :math:`C \ge 2`.
    noise : float
        Probability :math:`\eta \in [0, 1]` that a label is replaced by one
        of the other classes, chosen uniformly.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(C, C)``, rows sum to one.

    Examples
    --------
    >>> symmetric_transition_matrix(3, 0.5)
    tensor([[0.5000, 0.2500, 0.2500],
            [0.2500, 0.5000, 0.2500],
            [0.2500, 0.2500, 0.5000]], dtype=torch.float64)
    """
    n_classes = _check_n_classes(n_classes)
    noise = _check_probability(noise, "noise")
    eye = torch.eye(n_classes, dtype=dtype, device=device)
    return (1.0 - noise) * eye + noise / (n_classes - 1) * (1 - eye)


def confusion_transition_matrix(
    confusion, noise: float, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""Noise that mislabels a class the way a trained model confuses it.

    ``confusion[i, j]`` counts the examples of true class :math:`i` that a
    model predicted as :math:`j` (a confusion matrix). Every class keeps
    :math:`1 - \eta` of its labels, and its wrong labels are spread over
    the other classes in proportion to the model's mistakes:

    .. math::
        T_{ii} = 1 - \eta, \qquad
        T_{ij} = \eta\, \frac{n_{ij}}{\sum_{k \ne i} n_{ik}} \quad (j \ne i).

    An annotator who confuses a 7 with a 1 more often than with a 6 is
    modelled by the confusions of a classifier that does the same.
    Introduced in chapter 4.

    Parameters
    ----------
    confusion : tensor or array, shape (C, C)
        Non-negative counts (or rates), true classes in rows. With
        ``noise > 0`` every class must have been confused at least once.
    noise : float
        :math:`\eta \in [0, 1]`, the share of each class's labels that are
        wrong.
    dtype : torch.dtype
        Of the returned tensor (on the CPU).

    Returns
    -------
    torch.Tensor
        Shape ``(C, C)``, rows sum to one.

    Examples
    --------
    >>> confusion_transition_matrix([[8, 1, 1], [0, 9, 1], [3, 0, 7]], 0.2)
    tensor([[0.8000, 0.1000, 0.1000],
            [0.0000, 0.8000, 0.2000],
            [0.2000, 0.0000, 0.8000]], dtype=torch.float64)
    """
    counts = as_float_tensor(confusion, "confusion").detach()
    if counts.dim() != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(
            "confusion must be a square (C, C) matrix of counts; got shape"
            f" {tuple(counts.shape)}"
        )
    if counts.shape[0] < 2:
        raise ValueError(
            "confusion must cover at least two classes; got shape"
            f" {tuple(counts.shape)}"
        )
    check_finite(counts, "confusion")
    if bool((counts < 0).any()):
        raise ValueError("confusion must hold non-negative counts")
    noise = _check_probability(noise, "noise")
    counts = counts.to(device="cpu", dtype=torch.float64)
    eye = torch.eye(counts.shape[0], dtype=torch.float64)
    off = counts * (1 - eye)
    totals = off.sum(dim=1, keepdim=True)
    if noise > 0 and bool((totals == 0).any()):
        missing = int((totals.squeeze(1) == 0).nonzero()[0])
        raise ValueError(
            f"confusion has no off-diagonal count in row {missing}: class"
            f" {missing} was never mistaken for another class, so its noise"
            " cannot follow the model's confusions"
        )
    shares = off / totals.clamp_min(torch.finfo(torch.float64).tiny)
    return ((1.0 - noise) * eye + noise * shares).to(dtype)


def _checked_transition_matrix(
    T, name: str = "T", n_classes: int | None = None
) -> torch.Tensor:
    """``T`` as a float tensor after checking it is square and
    row-stochastic."""
    T = as_float_tensor(T, name)
    if T.dim() != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(
            f"{name} must be a square (C, C) transition matrix; got shape"
            f" {tuple(T.shape)}"
        )
    if n_classes is not None and T.shape[0] != n_classes:
        raise ValueError(
            f"{name} must have shape ({n_classes}, {n_classes}) to match"
            f" the {n_classes} classes of input; got {tuple(T.shape)}"
        )
    if T.shape[0] == 0:
        raise ValueError(
            f"{name} must have at least one class; got shape {tuple(T.shape)}"
        )
    try:
        check_distribution(T, name, dim=1)
    except ValueError as err:
        raise ValueError(
            f"{err} ({name} must be row-stochastic: T[i, j] = P(noisy label"
            " j | true class i))"
        ) from None
    return T


def corrupt_labels(
    target: torch.Tensor,
    T,
    rng: int | torch.Generator | None = None,
) -> torch.Tensor:
    r"""Draw a noisy label for each true label from the rows of ``T``.

    Each example's noisy label is drawn independently,
    :math:`\tilde y_n \sim \mathrm{Categorical}(T_{y_n, :})`, so an example
    of class :math:`i` is relabelled :math:`j` with probability exactly
    :math:`T_{ij}`.

    Parameters
    ----------
    target : torch.Tensor
        Clean class indices, shape ``(N,)``, values in ``[0, C-1]``.
    T : tensor or array, shape (C, C)
        Row-stochastic transition matrix.
    rng : int, torch.Generator or None
        The randomness (see :func:`xentlib.runtime.as_generator`); the
        draws are made on the CPU and moved to ``target``'s device, so a
        seed gives the same labels on any device.

    Returns
    -------
    torch.Tensor
        Noisy class indices, shape ``(N,)``, dtype ``torch.long``, on
        ``target``'s device.

    Examples
    --------
    >>> clean = torch.tensor([0, 1, 2, 0])
    >>> corrupt_labels(clean, torch.eye(3), rng=0)
    tensor([0, 1, 2, 0])
    """
    T = _checked_transition_matrix(T)
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            "target must be a torch.Tensor of class indices; got"
            f" {type(target).__name__}"
        )
    if target.dim() != 1:
        raise ValueError(
            "target must have shape (N,), one class index per example; got"
            f" {tuple(target.shape)}"
        )
    y = check_class_target(target, target.shape[0], T.shape[0])
    generator = as_generator(rng)
    if y.numel() == 0:
        return y.clone()
    rows = T.detach().to(device="cpu", dtype=torch.float64)[y.cpu()]
    noisy = torch.multinomial(rows, 1, generator=generator).squeeze(1)
    return noisy.to(target.device)


# ---------------------------------------------------------- corrected losses


def _check_logits_and_target(input, target) -> torch.Tensor:
    if not isinstance(input, torch.Tensor):
        raise ValueError(
            "input must be a torch.Tensor of logits; got"
            f" {type(input).__name__}"
        )
    if input.dim() != 2:
        raise ValueError(
            f"input must have shape (N, C) of logits; got {tuple(input.shape)}"
        )
    check_logits(input, "input")
    if (
        isinstance(target, torch.Tensor)
        and target.dim() == 1
        and target.shape[0] != input.shape[0]
    ):
        raise ValueError(
            "input and target must have one row per example each; got"
            f" {input.shape[0]} rows of input and {target.shape[0]} targets"
        )
    if input.numel() and bool((input == -math.inf).all(dim=1).any()):
        raise ValueError(
            "input has a row whose logits are all -inf; at least one class"
            " must be possible"
        )
    return check_class_target(target, input.shape[0], input.shape[1])


def forward_corrected_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, T, reduction: str = "mean"
) -> torch.Tensor:
    r"""Cross-entropy of noisy labels under the model pushed through the
    noise.

    The model's softmax :math:`p = \mathrm{softmax}(z)` estimates the
    *clean* class probabilities; the probability it then gives a noisy
    label :math:`\tilde y` is
    :math:`(T^\top p)_{\tilde y} = \sum_j p_j T_{j\tilde y}`, and the loss
    is

    .. math::
        \ell(z, \tilde y) = -\ln \sum_j T_{j\tilde y}\, p_j
        = -\operatorname{logsumexp}_j \bigl(\log\mathrm{softmax}(z)_j
          + \ln T_{j\tilde y}\bigr),

    computed in the second form, so that tiny probabilities never
    underflow (zero entries of :math:`T` are :math:`-\infty` inside the
    log-sum-exp). With :math:`T = I` it is the plain cross-entropy. A
    logit of :math:`-\infty` (a class ruled out) is exact: a noisy label
    that no possible class can produce costs :math:`+\infty`. Explained in
    chapter 4.

    Parameters
    ----------
    input : torch.Tensor
        Logits, shape ``(N, C)``.
    target : torch.Tensor
        Noisy class indices, shape ``(N,)``.
    T : tensor or array, shape (C, C)
        Row-stochastic transition matrix,
        :math:`T_{ij} = P(\tilde y = j \mid y = i)`.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the ``(N,)`` row losses.

    Returns
    -------
    torch.Tensor
        In the dtype of ``input``.

    Examples
    --------
    >>> z = torch.tensor([[2.0, 0.0]])
    >>> T = pair_flip_transition_matrix(2, 0.3)
    >>> forward_corrected_cross_entropy(z, torch.tensor([1]), T)
    tensor(1.0565)
    """
    check_reduction(reduction)
    y = _check_logits_and_target(input, target)
    T = _checked_transition_matrix(T, n_classes=input.shape[1])
    y = y.to(input.device)
    log_T = torch.log(T.to(device=input.device, dtype=input.dtype))
    log_p = torch.log_softmax(input, dim=1)
    # Column y_n of log T, one per row: (N, C).
    rows = -torch.logsumexp(log_p + log_T[:, y].T, dim=1)
    return reduce_rows(rows, reduction)


def backward_corrected_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, T, reduction: str = "mean"
) -> torch.Tensor:
    r"""Cross-entropy corrected with :math:`T^{-1}`: unbiased for the clean
    loss.

    Let :math:`\boldsymbol\ell(z) = (-\ln p_1, \dots, -\ln p_C)` be the
    losses the model would pay for each possible label. The corrected loss
    of a noisy label :math:`\tilde y` is

    .. math::
        \ell^{\leftarrow}(z, \tilde y)
        = \bigl(T^{-1} \boldsymbol\ell(z)\bigr)_{\tilde y}
        = \sum_j (T^{-1})_{\tilde y j}\,
          \bigl(-\log\mathrm{softmax}(z)_j\bigr).

    Its expectation over the noise is the clean loss, for any logits:
    :math:`\sum_{\tilde y} T_{y\tilde y} (T^{-1}\boldsymbol\ell)_{\tilde y}
    = \ell_y`. The price is that :math:`T^{-1}` has negative entries, so
    the corrected loss is unbounded below and its variance grows with the
    condition number of :math:`T`. With :math:`T = I` it is the plain
    cross-entropy. A class with logit :math:`-\infty` and weight zero in
    :math:`T^{-1}` contributes nothing (not :math:`0 \cdot \infty`).
    Explained in chapter 4.

    Parameters
    ----------
    input : torch.Tensor
        Logits, shape ``(N, C)``.
    target : torch.Tensor
        Noisy class indices, shape ``(N,)``.
    T : tensor or array, shape (C, C)
        Row-stochastic, invertible transition matrix.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the ``(N,)`` row losses.

    Returns
    -------
    torch.Tensor
        In the dtype of ``input``.

    Examples
    --------
    >>> z = torch.tensor([[2.0, 0.0]])
    >>> T = pair_flip_transition_matrix(2, 0.3)
    >>> backward_corrected_cross_entropy(z, torch.tensor([1]), T)
    tensor(3.6269)
    """
    check_reduction(reduction)
    y = _check_logits_and_target(input, target)
    T = _checked_transition_matrix(T, n_classes=input.shape[1])
    T64 = T.detach().to(device="cpu", dtype=torch.float64)
    cond = torch.linalg.cond(T64).item()
    if not cond < 1e10:  # also catches inf and nan
        raise ValueError(
            "T must be invertible for the backward correction; got a matrix"
            f" with condition number {cond:.3g}"
        )
    T_inv = torch.linalg.inv(T64).to(device=input.device, dtype=input.dtype)
    weights = T_inv[y.to(input.device)]  # (N, C): row y_n of T^-1
    losses = -torch.log_softmax(input, dim=1)  # the loss of every label
    terms = torch.where(weights != 0, weights * losses, 0.0)
    undefined = (terms == math.inf).any(1) & (terms == -math.inf).any(1)
    if bool(undefined.any()):
        raise ValueError(
            "input has -inf logits in classes that T^-1 weighs with"
            " opposite signs; the backward-corrected loss is inf - inf,"
            " undefined"
        )
    return reduce_rows(terms.sum(dim=1), reduction)


# ---------------------------------------------------------------- estimating T


def estimate_transition_matrix(
    noisy_prob,
    clean_target: torch.Tensor | None = None,
    *,
    quantile: float = 0.97,
) -> torch.Tensor:
    r"""Estimate :math:`T` from a model's noisy-label probabilities.

    ``noisy_prob[n]`` is a model's estimate of
    :math:`P(\tilde y \mid x_n)`, from a model trained on the noisy labels.
    Because :math:`P(\tilde y = j \mid x) = \sum_i P(y = i \mid x)\,
    T_{ij}`, two estimates follow:

    * **anchor points** (``clean_target`` is None; Patrini et al. 2017): an
      example that surely belongs to class :math:`i`,
      :math:`P(y = i \mid x) = 1`, has
      :math:`P(\tilde y = j \mid x) = T_{ij}`. For each class :math:`i` the
      example whose :math:`\hat p_i` sits at the ``quantile`` of all
      :math:`\hat p_i` is taken as the anchor (1.0 takes the maximum; a
      slightly lower quantile skips outliers), and row :math:`i` of
      :math:`\hat T` is its predicted distribution;
    * **a clean split** (``clean_target`` given): averaging
      :math:`\hat p(\tilde y \mid x)` over the examples whose clean label
      is :math:`i` estimates row :math:`i`,
      :math:`\hat T_{ij} = \frac{1}{|S_i|}\sum_{n \in S_i} \hat p_j(x_n)`.

    Either way each row of :math:`\hat T` is a probability vector, to the
    precision of ``noisy_prob`` (compute the probabilities in float64 if
    the estimate is to be used as a float64 matrix). Explained in chapter
    4.

    Parameters
    ----------
    noisy_prob : tensor or array, shape (N, C)
        Predicted noisy-label probabilities (rows sum to one).
    clean_target : torch.Tensor, optional
        Clean class indices of the same examples, shape ``(N,)``; every
        class must occur.
    quantile : float
        In ``[0, 1]``; used by the anchor-point estimate only.

    Returns
    -------
    torch.Tensor
        :math:`\hat T`, shape ``(C, C)``, in the dtype and on the device of
        ``noisy_prob``.

    Examples
    --------
    >>> prob = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> estimate_transition_matrix(prob, quantile=1.0)
    tensor([[0.9000, 0.1000],
            [0.2000, 0.8000]])
    >>> estimate_transition_matrix(prob, torch.tensor([0, 0, 1]))
    tensor([[0.7500, 0.2500],
            [0.2000, 0.8000]])
    """
    prob = as_float_tensor(noisy_prob, "noisy_prob").detach()
    if prob.dim() != 2 or prob.shape[0] == 0:
        raise ValueError(
            "noisy_prob must have shape (N, C) with N >= 1; got"
            f" {tuple(prob.shape)}"
        )
    check_distribution(prob, "noisy_prob", dim=1)
    n, c = prob.shape
    if clean_target is not None:
        y = check_class_target(clean_target, n, c, name="clean_target").to(
            prob.device
        )
        counts = torch.bincount(y, minlength=c)
        if bool((counts == 0).any()):
            missing = int((counts == 0).nonzero()[0])
            raise ValueError(
                "clean_target must contain every class to estimate each row"
                f" of T; class {missing} is missing"
            )
        sums = torch.zeros(
            c, c, dtype=prob.dtype, device=prob.device
        ).index_add_(0, y, prob)
        return sums / counts.to(prob.dtype).unsqueeze(1)
    quantile = _check_probability(quantile, "quantile")
    # The anchor of class i: the example of rank round(quantile * (N - 1))
    # in increasing p_i; column i of ``order`` sorts the examples by p_i.
    order = prob.argsort(dim=0, stable=True)
    anchors = order[round(quantile * (n - 1))]  # (C,)
    return prob[anchors].clone()


# ------------------------------------------------- model and training loop


def mlp_classifier(
    in_features: int, n_classes: int, hidden: int = 256, depth: int = 2
) -> nn.Sequential:
    """A multilayer perceptron ``in_features -> hidden (x depth, ReLU) ->
    n_classes`` returning logits (:func:`xentlib.models.mlp`).

    Examples
    --------
    >>> mlp_classifier(64, 10, hidden=32)(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """
    n_classes = _check_n_classes(n_classes)
    return mlp(in_features, n_classes, hidden=hidden, depth=depth)


def fit_and_evaluate(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    target: torch.Tensor,
    evaluate: Callable[[nn.Module], float],
    *,
    config: TrainConfig,
    restore_best: str | None = None,
    rng: int | torch.Generator | None = None,
    progress: str | None = None,
) -> History:
    """Train with :func:`xentlib.training.fit` and evaluate the model after
    every epoch.

    After each epoch ``evaluate(model)`` is called and its value logged as
    ``History.logs["evaluation"]``. Chapter 4 uses it to watch clean test
    accuracy while a network memorises noisy labels, and to stop a model at
    its best held-out noisy-label loss.

    Parameters
    ----------
    model, loss_fn, inputs, target, config, rng, progress
        As in :func:`xentlib.training.fit` (``target`` is required).
    evaluate : callable
        ``evaluate(model) -> float``, called after every epoch; it must
        return a finite number.
    restore_best : {None, "min", "max"}
        If given, the parameters of the epoch with the smallest (``"min"``)
        or largest (``"max"``) evaluation are loaded back into ``model`` at
        the end (early stopping without stopping); the first such epoch
        wins ties.

    Returns
    -------
    History
        The mean training loss of each epoch, and ``logs["evaluation"]``.

    Raises
    ------
    FloatingPointError
        When training diverges (see :func:`xentlib.training.fit`).

    Examples
    --------
    >>> x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    >>> y = (x[:, 0] > 0).long()
    >>> _ = torch.manual_seed(0)
    >>> model = mlp_classifier(3, 2, hidden=8)
    >>> history = fit_and_evaluate(
    ...     model, torch.nn.functional.cross_entropy, x, y,
    ...     lambda m: 0.5, config=TrainConfig(epochs=3), rng=0)
    >>> history.logs["evaluation"]
    [0.5, 0.5, 0.5]
    """
    if not callable(evaluate):
        raise ValueError(
            f"evaluate must be callable; got {type(evaluate).__name__}"
        )
    if restore_best not in (None, "min", "max"):
        raise ValueError(
            f"restore_best must be None, 'min' or 'max'; got {restore_best!r}"
        )
    if progress is not None and not isinstance(progress, str):
        raise ValueError(
            "progress must be a label (str) or None; got"
            f" {type(progress).__name__}"
        )
    if target is None:
        raise ValueError("target must be a tensor of labels; got None")
    best: dict = {}

    def after_epoch(epoch: int, model: nn.Module) -> dict:
        score = evaluate(model)
        if isinstance(score, torch.Tensor) and score.numel() == 1:
            score = score.item()
        if not _is_real(score) or not math.isfinite(score):
            raise ValueError(
                "evaluate must return a finite number; got"
                f" {score!r} after epoch {epoch + 1}"
            )
        signed = score if restore_best == "min" else -score
        if restore_best is not None and (
            "signed" not in best or signed < best["signed"]
        ):
            best["signed"] = signed
            best["state"] = {
                k: v.detach().clone() for k, v in model.state_dict().items()
            }
        return {"evaluation": float(score)}

    history = fit(
        model,
        loss_fn,
        inputs,
        target,
        config=config,
        rng=rng,
        on_epoch_end=after_epoch,
        progress=progress,
    )
    if "state" in best:
        model.load_state_dict(best["state"])
    return history

"""Learning from noisy labels: transition matrices and loss corrections.

Class-dependent label noise is described by a row-stochastic transition matrix
:math:`T` with :math:`T_{ij} = P(\\tilde y = j \\mid y = i)`: the probability
that an example of true class :math:`i` carries the observed (noisy) label
:math:`j`. This module builds such matrices, corrupts labels with them, and
implements the two loss corrections of Patrini et al. (2017):

* the *forward* correction trains the model's clean-class probabilities
  :math:`p` through the noise, with the cross-entropy of the noisy label under
  :math:`T^\\top p`;
* the *backward* correction applies :math:`T^{-1}` to the vector of per-class
  losses, which makes the loss on noisy labels an unbiased estimate of the loss
  on clean ones.

It also estimates :math:`T` from a model trained on the noisy labels, either
from anchor points or from a small split with clean labels, and carries the
small training loop the chapter uses to follow clean test accuracy epoch by
epoch.

Introduced in chapter 4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._validation import (
    as_float_tensor,
    check_class_target,
    check_distribution,
    check_logits,
    check_reduction,
    reduce_rows,
)
from .models import mlp
from .training import TrainConfig, fit

__all__ = [
    "backward_corrected_cross_entropy",
    "corrupt_labels",
    "estimate_transition_matrix",
    "fit_and_evaluate",
    "forward_corrected_cross_entropy",
    "mlp_classifier",
    "pair_flip_transition_matrix",
    "symmetric_transition_matrix",
]


# ----------------------------------------------------------------------------
# Transition matrices
# ----------------------------------------------------------------------------


def _check_noise_model(num_classes, noise) -> None:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or num_classes < 2
    ):
        raise ValueError(
            f"num_classes must be an integer >= 2; got {num_classes!r}"
        )
    if (
        isinstance(noise, bool)
        or not isinstance(noise, (int, float))
        or not (0.0 <= noise <= 1.0)
    ):
        raise ValueError(
            f"noise must be a probability in [0, 1]; got {noise!r}"
        )


def pair_flip_transition_matrix(
    num_classes: int,
    noise: float,
    *,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> torch.Tensor:
    r"""The transition matrix of pair-flip noise: class :math:`k` becomes :math:`k+1 \bmod C`.

    .. math::
        T_{kk} = 1 - \eta, \qquad T_{k,\,(k+1) \bmod C} = \eta,

    all other entries zero, where :math:`\eta` is ``noise``. For
    :math:`\eta < 1/2` the true class keeps the majority of every class's
    labels.

    Parameters
    ----------
    num_classes : int
        Number of classes :math:`C \ge 2`.
    noise : float
        Flip probability :math:`\eta \in [0, 1]`.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(C, C)``, rows sum to one.
    """
    _check_noise_model(num_classes, noise)
    T = (1.0 - noise) * torch.eye(num_classes, dtype=dtype, device=device)
    return T + noise * torch.roll(
        torch.eye(num_classes, dtype=dtype, device=device), shifts=1, dims=1
    )


def symmetric_transition_matrix(
    num_classes: int,
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
    num_classes : int
        Number of classes :math:`C \ge 2`.
    noise : float
        Probability :math:`\eta \in [0, 1]` that a label is replaced by one of
        the other classes, chosen uniformly.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(C, C)``, rows sum to one.
    """
    _check_noise_model(num_classes, noise)
    eye = torch.eye(num_classes, dtype=dtype, device=device)
    return (1.0 - noise) * eye + noise / (num_classes - 1) * (1 - eye)


def _checked_transition_matrix(
    T, name: str = "T", num_classes: int | None = None
) -> torch.Tensor:
    """``T`` as a float tensor after checking it is square and row-stochastic."""
    T = as_float_tensor(T, name)
    if T.dim() != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(
            f"{name} must be a square (C, C) transition matrix; got shape"
            f" {tuple(T.shape)}"
        )
    if num_classes is not None and T.shape[0] != num_classes:
        raise ValueError(
            f"{name} must have shape ({num_classes}, {num_classes}) to match"
            f" the {num_classes} classes of input; got {tuple(T.shape)}"
        )
    if T.shape[0] == 0:
        raise ValueError(
            f"{name} must have at least one class; got shape {tuple(T.shape)}"
        )
    try:
        check_distribution(T, name, dim=1)
    except ValueError as err:
        raise ValueError(
            f"{err} ({name} must be row-stochastic: T[i, j] = P(noisy label j"
            " | true class i))"
        ) from None
    return T


def corrupt_labels(
    target: torch.Tensor, T, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Draw a noisy label for each true label from the rows of ``T``.

    Each example's noisy label is drawn independently,
    :math:`\tilde y_n \sim \mathrm{Categorical}(T_{y_n, :})`, so an example of
    class :math:`i` is relabelled :math:`j` with probability exactly
    :math:`T_{ij}`.

    Parameters
    ----------
    target : torch.Tensor
        Clean class indices, shape ``(N,)``, values in ``[0, C-1]``.
    T : tensor or array, shape (C, C)
        Row-stochastic transition matrix.
    generator : torch.Generator, optional
        A CPU generator; the draws are made on the CPU and moved to
        ``target``'s device, so a seed gives the same labels on any device.

    Returns
    -------
    torch.Tensor
        Noisy class indices, shape ``(N,)``, dtype ``torch.long``, on
        ``target``'s device.
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
    if y.numel() == 0:
        return y.clone()
    rows = T.detach().to(device="cpu", dtype=torch.float64)[y.cpu()]
    noisy = torch.multinomial(rows, 1, generator=generator).squeeze(1)
    return noisy.to(target.device)


# ----------------------------------------------------------------------------
# Corrected losses
# ----------------------------------------------------------------------------


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
    return check_class_target(target, input.shape[0], input.shape[1])


def forward_corrected_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, T, reduction: str = "mean"
) -> torch.Tensor:
    r"""Cross-entropy of noisy labels under the model pushed through the noise.

    The model's softmax :math:`p = \mathrm{softmax}(z)` estimates the *clean*
    class probabilities; the probability it then gives a noisy label
    :math:`\tilde y` is :math:`(T^\top p)_{\tilde y} = \sum_j p_j T_{j\tilde y}`,
    and the loss is

    .. math::
        \ell(z, \tilde y) = -\ln \sum_j T_{j\tilde y}\, p_j
                          = -\operatorname{logsumexp}_j \bigl(\log\mathrm{softmax}(z)_j + \ln T_{j\tilde y}\bigr),

    computed in the second form, so that tiny probabilities never underflow
    (zero entries of :math:`T` are :math:`-\infty` inside the log-sum-exp). With
    :math:`T = I` it is the plain cross-entropy. Explained in chapter 4.

    Parameters
    ----------
    input : torch.Tensor
        Logits, shape ``(N, C)``.
    target : torch.Tensor
        Noisy class indices, shape ``(N,)``.
    T : tensor or array, shape (C, C)
        Row-stochastic transition matrix, :math:`T_{ij} = P(\tilde y = j \mid y = i)`.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the ``(N,)`` row losses.

    Returns
    -------
    torch.Tensor
        In the dtype of ``input``.
    """
    check_reduction(reduction)
    y = _check_logits_and_target(input, target)
    T = _checked_transition_matrix(T, num_classes=input.shape[1])
    y = y.to(input.device)
    log_T = torch.log(T.to(device=input.device, dtype=input.dtype))
    log_p = torch.log_softmax(input, dim=1)
    # Column y_n of log T, one per row: (N, C).
    rows = -torch.logsumexp(log_p + log_T[:, y].T, dim=1)
    return reduce_rows(rows, reduction)


def backward_corrected_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, T, reduction: str = "mean"
) -> torch.Tensor:
    r"""Cross-entropy corrected with :math:`T^{-1}`: unbiased for the clean loss.

    Let :math:`\boldsymbol\ell(z) = (-\ln p_1, \dots, -\ln p_C)` be the losses
    the model would pay for each possible label. The corrected loss of a noisy
    label :math:`\tilde y` is

    .. math::
        \ell^{\leftarrow}(z, \tilde y) = \bigl(T^{-1} \boldsymbol\ell(z)\bigr)_{\tilde y}
        = \sum_j (T^{-1})_{\tilde y j}\, \bigl(-\log\mathrm{softmax}(z)_j\bigr).

    Its expectation over the noise is the clean loss, for any logits:
    :math:`\sum_{\tilde y} T_{y\tilde y} (T^{-1}\boldsymbol\ell)_{\tilde y}
    = \ell_y`. The price is that :math:`T^{-1}` has negative entries, so the
    corrected loss is unbounded below and its variance grows with the
    condition number of :math:`T`. With :math:`T = I` it is the plain
    cross-entropy. Explained in chapter 4.

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
    """
    check_reduction(reduction)
    y = _check_logits_and_target(input, target)
    T = _checked_transition_matrix(T, num_classes=input.shape[1])
    T64 = T.detach().to(device="cpu", dtype=torch.float64)
    cond = torch.linalg.cond(T64).item()
    if not cond < 1e10:  # also catches inf and nan
        raise ValueError(
            "T must be invertible for the backward correction; got a matrix"
            f" with condition number {cond:.3g}"
        )
    T_inv = torch.linalg.inv(T64).to(device=input.device, dtype=input.dtype)
    losses = -torch.log_softmax(
        input, dim=1
    )  # (N, C): the loss for every possible label
    rows = (T_inv[y.to(input.device)] * losses).sum(dim=1)
    return reduce_rows(rows, reduction)


# ----------------------------------------------------------------------------
# Estimating T
# ----------------------------------------------------------------------------


def estimate_transition_matrix(
    noisy_prob,
    clean_target: torch.Tensor | None = None,
    *,
    quantile: float = 0.97,
) -> torch.Tensor:
    r"""Estimate :math:`T` from a model's noisy-label probabilities.

    ``noisy_prob[n]`` is a model's estimate of :math:`P(\tilde y \mid x_n)`,
    from a model trained on the noisy labels. Because
    :math:`P(\tilde y = j \mid x) = \sum_i P(y = i \mid x)\, T_{ij}`, two
    estimates follow:

    * **anchor points** (``clean_target`` is None; Patrini et al. 2017): an
      example that surely belongs to class :math:`i`,
      :math:`P(y = i \mid x) = 1`, has :math:`P(\tilde y = j \mid x) = T_{ij}`.
      For each class :math:`i` the example whose :math:`\hat p_i` sits at the
      ``quantile`` of all :math:`\hat p_i` is taken as the anchor (1.0 takes
      the maximum; a slightly lower quantile skips outliers), and row
      :math:`i` of :math:`\hat T` is its predicted distribution;
    * **a clean split** (``clean_target`` given): averaging
      :math:`\hat p(\tilde y \mid x)` over the examples whose clean label is
      :math:`i` estimates row :math:`i`,
      :math:`\hat T_{ij} = \frac{1}{|S_i|}\sum_{n \in S_i} \hat p_j(x_n)`.

    Either way each row of :math:`\hat T` is a probability vector, to the
    precision of ``noisy_prob`` (compute the probabilities in float64 if the
    estimate is to be used as a float64 matrix). Explained in chapter 4.

    Parameters
    ----------
    noisy_prob : tensor or array, shape (N, C)
        Predicted noisy-label probabilities (rows sum to one).
    clean_target : torch.Tensor, optional
        Clean class indices of the same examples, shape ``(N,)``; every class
        must occur.
    quantile : float
        In ``[0, 1]``; used by the anchor-point estimate only.

    Returns
    -------
    torch.Tensor
        :math:`\hat T`, shape ``(C, C)``, in the dtype and on the device of
        ``noisy_prob``.
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
    if (
        isinstance(quantile, bool)
        or not isinstance(quantile, (int, float))
        or not (0.0 <= quantile <= 1.0)
    ):
        raise ValueError(f"quantile must be in [0, 1]; got {quantile!r}")
    # The anchor of class i: the example of rank round(quantile * (N - 1)) in increasing p_i.
    rank = round(quantile * (n - 1))
    order = prob.argsort(
        dim=0, stable=True
    )  # (N, C): column i sorts the examples by p_i
    anchors = order[rank]  # (C,)
    return prob[anchors].clone()


# ----------------------------------------------------------------------------
# Model and training loop of the chapter
# ----------------------------------------------------------------------------


def mlp_classifier(
    in_features: int, num_classes: int, hidden: int = 256, depth: int = 2
) -> nn.Sequential:
    """A multilayer perceptron ``in_features -> hidden (x depth, ReLU) -> num_classes`` returning logits (:func:`xentlib.models.mlp`)."""
    return mlp(in_features, num_classes, hidden=hidden, depth=depth)


def fit_and_evaluate(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    target: torch.Tensor,
    evaluate: Callable[[nn.Module], float],
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    restore_best: str | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> tuple[list[float], list[float]]:
    """Train with Adam through :func:`xentlib.training.fit` and evaluate the model after every epoch.

    After each epoch ``evaluate(model)`` is called
    (the model is in evaluation mode when :func:`xentlib.training.predict` is
    used) and its value kept. Chapter 4 uses it to watch clean test accuracy
    while a network memorises noisy labels, and to stop a model at its best
    held-out noisy-label loss.

    Parameters
    ----------
    model, loss_fn, inputs, target, epochs, lr, batch_size, weight_decay, generator, progress, desc
        As in :func:`xentlib.training.fit` (Adam only; ``target`` is required).
    evaluate : callable
        ``evaluate(model) -> float``, called after every epoch.
    restore_best : {None, "min", "max"}
        If given, the parameters of the epoch with the smallest (``"min"``) or
        largest (``"max"``) evaluation are loaded back into ``model`` at the
        end (early stopping without stopping); the first such epoch wins ties.

    Returns
    -------
    losses, scores : list of float
        The mean training loss and the evaluation of each epoch.
    """
    if restore_best not in (None, "min", "max"):
        raise ValueError(
            f"restore_best must be None, 'min' or 'max'; got {restore_best!r}"
        )
    scores: list[float] = []
    best: dict = {}

    def after_epoch(epoch: int, model: nn.Module) -> None:
        score = float(evaluate(model))
        scores.append(score)
        signed = score if restore_best == "min" else -score
        if restore_best is not None and (
            "signed" not in best or signed < best["signed"]
        ):
            best["signed"] = signed
            best["state"] = {
                k: v.detach().clone() for k, v in model.state_dict().items()
            }

    losses = fit(
        model,
        loss_fn,
        inputs,
        target,
        config=TrainConfig(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
        ),
        rng=generator,
        progress=(desc or "") if progress else None,
        on_epoch_end=after_epoch,
    ).loss
    if "state" in best:
        model.load_state_dict(best["state"])
    return losses, scores

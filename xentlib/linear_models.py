r"""Logistic and softmax regression fitted by gradient descent.

Introduced in chapter 3. Both models are linear in the features and trained
with cross-entropy plus an L2 penalty on the weights (never on the
intercept):

* logistic regression, :math:`p(y = 1 \mid x) = \sigma(w^\top x + b)`, with
  the objective

  .. math::
      J(w, b) = \frac{1}{N} \sum_{i=1}^N
                \bigl[\mathrm{softplus}(z_i) - y_i z_i\bigr]
                + \frac{\lambda}{2} \lVert w \rVert^2,
      \qquad z_i = w^\top x_i + b,

  whose gradient is :math:`\nabla_w J = \frac1N X^\top (\hat y - y) +
  \lambda w` and :math:`\partial J / \partial b = \frac1N \sum_i (\hat y_i -
  y_i)`;
* softmax regression, :math:`p(y = k \mid x) = \mathrm{softmax}(W x + b)_k`,
  with :math:`J(W, b) = \frac1N \sum_i -\ln p_{i, y_i} + \frac{\lambda}{2}
  \lVert W \rVert_F^2` and :math:`\nabla_W J = \frac1N (P - Y)^\top X +
  \lambda W`, where :math:`Y` is one-hot.

scikit-learn's ``LogisticRegression(C=C)`` minimises
:math:`C \sum_i \ell_i + \tfrac12 \lVert w \rVert^2`; dividing by
:math:`C N` shows that it has the same minimiser as :math:`J` with
:math:`\lambda = 1/(C N)`.

The fitting functions run plain full-batch gradient descent with the
analytic gradients and, by default, the step :math:`1/L`, where :math:`L`
is a bound on the largest eigenvalue of the Hessian
(:func:`gradient_lipschitz_bound`): with that step every iteration lowers
the objective. They compute the gradient by its formula rather than by
autograd (no :class:`torch.nn.Module`, no optimiser), which is why they do
not go through :func:`xentlib.training.fit`; chapter 3 checks that the two
routes take the same steps.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._validation import (
    check_class_target,
    check_finite,
    check_float_tensor,
    check_unit_interval,
)
from .losses import binary_cross_entropy, cross_entropy
from .runtime import as_generator

__all__ = [
    "LinearModelFit",
    "fit_logistic_regression",
    "fit_softmax_regression",
    "gradient_lipschitz_bound",
    "logistic_regression_gradient",
    "logistic_regression_loss",
    "softmax_regression_gradient",
    "softmax_regression_loss",
    "standardised_split",
]

_MODELS = ("logistic", "softmax")

#: How often (in steps) gradient descent checks that it has not diverged.
_CHECK_EVERY = 100


# ---------------------------------------------------------------------------
# Input checks (at the public boundary only)
# ---------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_features(features) -> torch.Tensor:
    x = check_float_tensor(features, "features", "features")
    if x.dim() != 2:
        raise ValueError(
            f"features must have shape (N, D); got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError("features must hold at least one example; got N = 0")
    check_finite(x, "features")
    return x


def _check_l2(l2) -> float:
    if not _is_real(l2) or not 0 <= l2 < math.inf:
        raise ValueError(
            f"l2 must be a finite non-negative number; got {l2!r}"
        )
    return float(l2)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def _check_binary_target(target, n: int, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"target must be a torch.Tensor of shape ({n},); got"
            f" {type(target).__name__}"
        )
    if tuple(target.shape) != (n,):
        raise ValueError(
            f"target must have shape ({n},), one label per row of features;"
            f" got {tuple(target.shape)}"
        )
    if target.is_complex():
        raise ValueError("target must be real; got a complex tensor")
    y = target.to(device=x.device, dtype=x.dtype)
    check_unit_interval(y, "target", "labels (0/1 classes or probabilities)")
    return y


def _check_parameter(
    value, name: str, shape: tuple, x: torch.Tensor, why: str = ""
) -> torch.Tensor:
    check_float_tensor(value, name, f"shape {shape}")
    if tuple(value.shape) != shape:
        why = f" ({why})" if why else ""
        raise ValueError(
            f"{name} must have shape {shape}{why}; got {tuple(value.shape)}"
        )
    if value.device != x.device:
        raise ValueError(
            f"{name} must be on the device of features ({x.device}); got"
            f" {value.device}"
        )
    check_finite(value, name)
    return value


def _check_weight_rows(weight, d: int, what: str) -> None:
    """``weight`` is a floating tensor whose last dimension has size d."""
    if (
        not isinstance(weight, torch.Tensor)
        or not weight.is_floating_point()
        or weight.dim() == 0
        or weight.shape[-1] != d
    ):
        got = (
            f"{tuple(weight.shape)} ({weight.dtype})"
            if isinstance(weight, torch.Tensor)
            else type(weight).__name__
        )
        raise ValueError(
            f"weight must be a floating-point tensor of shape {what}; got"
            f" {got}"
        )


# ---------------------------------------------------------------------------
# Logistic regression
# ---------------------------------------------------------------------------


def logistic_regression_loss(
    features: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    l2: float = 0.0,
) -> torch.Tensor:
    r"""Mean binary cross-entropy of a logistic regression plus an L2 penalty.

    .. math::
        J(w, b) = \frac{1}{N} \sum_{i=1}^N
                  \bigl[\mathrm{softplus}(z_i) - y_i z_i\bigr]
                  + \frac{\lambda}{2} \lVert w \rVert^2,
        \qquad z_i = w^\top x_i + b,

    which is :math:`-\frac1N \sum_i [y_i \ln \sigma(z_i) + (1 - y_i) \ln(1 -
    \sigma(z_i))]` plus the penalty, computed from the logits so that it is
    finite for any weights. Differentiable by autograd. Explained in
    chapter 3.

    Parameters
    ----------
    features : torch.Tensor
        Inputs :math:`X` of shape ``(N, D)``.
    target : torch.Tensor
        Labels of shape ``(N,)`` in [0, 1] (0/1 classes, or probabilities).
    weight : torch.Tensor
        Weights of shape ``(D,)``, or a batch of weight vectors ``(..., D)``
        (for example a grid of them, to draw the loss surface).
    bias : torch.Tensor, optional
        Intercept of shape ``()`` (or ``weight.shape[:-1]`` for a batch);
        None for a model without intercept.
    l2 : float
        Penalty strength :math:`\lambda \ge 0`; the intercept is not
        penalised.

    Returns
    -------
    torch.Tensor
        The objective, a scalar (or of shape ``weight.shape[:-1]``).

    Examples
    --------
    >>> x = torch.tensor([[1.0], [-1.0]])
    >>> y = torch.tensor([1.0, 0.0])
    >>> logistic_regression_loss(x, y, torch.zeros(1))  # ln 2 at w = 0
    tensor(0.6931)
    """
    x = _check_features(features)
    n, d = x.shape
    y = _check_binary_target(target, n, x)
    _check_weight_rows(weight, d, f"({d},) or (..., {d})")
    _check_parameter(weight, "weight", tuple(weight.shape), x)
    if bias is not None:
        _check_parameter(
            bias, "bias", tuple(weight.shape[:-1]), x, "weight.shape[:-1]"
        )
    lam = _check_l2(l2)
    logits = weight @ x.T  # (..., N)
    if bias is not None:
        logits = logits + bias.unsqueeze(-1)
    data = binary_cross_entropy(
        logits, y.expand_as(logits), reduction="none"
    ).mean(-1)
    return data + 0.5 * lam * (weight * weight).sum(-1)


def logistic_regression_gradient(
    features: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    l2: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Analytic gradient of :func:`logistic_regression_loss`.

    With :math:`\hat y_i = \sigma(w^\top x_i + b)`,

    .. math::
        \nabla_w J = \frac1N X^\top (\hat y - y) + \lambda w, \qquad
        \frac{\partial J}{\partial b} = \frac1N \sum_{i=1}^N
        (\hat y_i - y_i).

    Parameters
    ----------
    features : torch.Tensor
        Inputs of shape ``(N, D)``.
    target : torch.Tensor
        Labels of shape ``(N,)`` in [0, 1].
    weight : torch.Tensor
        Weights of shape ``(D,)``.
    bias : torch.Tensor, optional
        Intercept of shape ``()``; None for a model without intercept.
    l2 : float
        Penalty strength :math:`\lambda \ge 0` on the weights.

    Returns
    -------
    grad_weight : torch.Tensor
        Shape ``(D,)``.
    grad_bias : torch.Tensor or None
        Shape ``()``, or None when ``bias`` is None.
    """
    x = _check_features(features)
    n, d = x.shape
    y = _check_binary_target(target, n, x)
    _check_parameter(weight, "weight", (d,), x)
    if bias is not None:
        _check_parameter(bias, "bias", (), x)
    lam = _check_l2(l2)
    z = x @ weight if bias is None else x @ weight + bias
    residual = (torch.sigmoid(z) - y) / n
    grad_w = x.T @ residual + lam * weight
    return grad_w, (residual.sum() if bias is not None else None)


# ---------------------------------------------------------------------------
# Softmax regression
# ---------------------------------------------------------------------------


def _check_classes(
    target, n: int, n_classes: int, x: torch.Tensor, why: str
) -> torch.Tensor:
    """Class indices, one per row of features, fewer than ``n_classes``."""
    if isinstance(target, torch.Tensor) and tuple(target.shape) != (n,):
        raise ValueError(
            f"target must have shape ({n},), one class index per row of"
            f" features; got {tuple(target.shape)}"
        )
    try:
        y = check_class_target(target, n, n_classes)
    except ValueError as err:
        raise ValueError(f"{err} ({why})") from None
    return y.to(x.device)


def _check_softmax_parameters(x: torch.Tensor, weight, bias) -> int:
    d = x.shape[1]
    _check_weight_rows(weight, d, f"(C, {d}), one row per class")
    if weight.dim() != 2:
        raise ValueError(
            f"weight must have shape (C, {d}), one row per class; got"
            f" {tuple(weight.shape)}"
        )
    _check_parameter(weight, "weight", tuple(weight.shape), x)
    if weight.shape[0] < 2:
        raise ValueError(
            "weight must have at least two rows (classes); got"
            f" {weight.shape[0]}"
        )
    if bias is not None:
        _check_parameter(
            bias, "bias", (weight.shape[0],), x, "one per row of weight"
        )
    return weight.shape[0]


def softmax_regression_loss(
    features: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    l2: float = 0.0,
) -> torch.Tensor:
    r"""Mean cross-entropy of a softmax regression plus an L2 penalty.

    .. math::
        J(W, b) = \frac1N \sum_{i=1}^N
                  \Bigl[-z_{i y_i} + \ln \sum_{k=1}^C e^{z_{ik}}\Bigr]
                  + \frac{\lambda}{2} \lVert W \rVert_F^2,
        \qquad z_i = W x_i + b,

    computed with :func:`xentlib.cross_entropy` (log-sum-exp, analytic
    backward). Explained in chapter 3.

    Parameters
    ----------
    features : torch.Tensor
        Inputs of shape ``(N, D)``.
    target : torch.Tensor
        Integer class indices of shape ``(N,)`` in ``[0, C-1]``.
    weight : torch.Tensor
        Weights of shape ``(C, D)`` (the layout of :class:`torch.nn.Linear`).
    bias : torch.Tensor, optional
        Intercepts of shape ``(C,)``; None for a model without intercepts.
    l2 : float
        Penalty strength :math:`\lambda \ge 0` on the weights.

    Returns
    -------
    torch.Tensor
        The objective, a scalar.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> softmax_regression_loss(x, torch.tensor([0, 2]), torch.zeros(3, 2))
    tensor(1.0986)
    """
    x = _check_features(features)
    n_classes = _check_softmax_parameters(x, weight, bias)
    y = _check_classes(
        target, x.shape[0], n_classes, x, f"weight has {n_classes} rows"
    )
    lam = _check_l2(l2)
    logits = F.linear(x, weight, bias)
    return cross_entropy(logits, y) + 0.5 * lam * (weight * weight).sum()


def softmax_regression_gradient(
    features: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    l2: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Analytic gradient of :func:`softmax_regression_loss`.

    With :math:`P = \mathrm{softmax}(X W^\top + b)` row by row and the
    one-hot targets :math:`Y`, both of shape ``(N, C)``,

    .. math::
        \nabla_W J = \frac1N (P - Y)^\top X + \lambda W, \qquad
        \nabla_b J = \frac1N \sum_{i=1}^N (p_i - y_i).

    Parameters
    ----------
    features : torch.Tensor
        Inputs of shape ``(N, D)``.
    target : torch.Tensor
        Integer class indices of shape ``(N,)``.
    weight : torch.Tensor
        Weights of shape ``(C, D)``.
    bias : torch.Tensor, optional
        Intercepts of shape ``(C,)``; None for a model without intercepts.
    l2 : float
        Penalty strength :math:`\lambda \ge 0` on the weights.

    Returns
    -------
    grad_weight : torch.Tensor
        Shape ``(C, D)``.
    grad_bias : torch.Tensor or None
        Shape ``(C,)``, or None when ``bias`` is None.
    """
    x = _check_features(features)
    n_classes = _check_softmax_parameters(x, weight, bias)
    y = _check_classes(
        target, x.shape[0], n_classes, x, f"weight has {n_classes} rows"
    )
    lam = _check_l2(l2)
    onehot = F.one_hot(y, n_classes).to(x.dtype)
    residual = (
        torch.softmax(F.linear(x, weight, bias), dim=1) - onehot
    ) / x.shape[0]
    grad_w = residual.T @ x + lam * weight
    return grad_w, (residual.sum(0) if bias is not None else None)


# ---------------------------------------------------------------------------
# Step size
# ---------------------------------------------------------------------------


def gradient_lipschitz_bound(
    features: torch.Tensor,
    *,
    model: str = "logistic",
    l2: float = 0.0,
    fit_intercept: bool = True,
) -> float:
    r"""An upper bound :math:`L` on the curvature of the regression objective.

    The Hessian of the logistic objective (on the weights) is
    :math:`\frac1N \tilde X^\top \mathrm{diag}(\hat y_i (1 - \hat y_i))
    \tilde X + \lambda I`, where :math:`\tilde X` is ``features`` with a
    column of ones appended when there is an intercept. Since
    :math:`\hat y (1 - \hat y) \le 1/4`, every eigenvalue is at most

    .. math:: L = \frac{\lambda_{\max}(\tilde X^\top \tilde X)}{4 N}
              + \lambda .

    For softmax regression the per-example curvature
    :math:`\mathrm{diag}(p) - p p^\top` has eigenvalues at most :math:`1/2`,
    so the factor is :math:`1/2` instead of :math:`1/4`. The gradient is then
    :math:`L`-Lipschitz, and a gradient step of size :math:`1/L` never
    increases the objective.

    Parameters
    ----------
    features : torch.Tensor
        Inputs of shape ``(N, D)``.
    model : {"logistic", "softmax"}
    l2 : float
        Penalty strength :math:`\lambda \ge 0`.
    fit_intercept : bool
        Whether the model has an intercept (a column of ones).

    Returns
    -------
    float

    Examples
    --------
    >>> x = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    >>> bound = gradient_lipschitz_bound(x, fit_intercept=False)
    >>> round(bound, 12)  # largest eigenvalue of X^T X is 2; 2 / (4 N)
    0.25
    """
    x = _check_features(features)
    if model not in _MODELS:
        raise ValueError(f"model must be one of {_MODELS}; got {model!r}")
    lam = _check_l2(l2)
    _check_bool(fit_intercept, "fit_intercept")
    return _lipschitz(x, model, lam, fit_intercept)


def _lipschitz(
    x: torch.Tensor, model: str, lam: float, fit_intercept: bool
) -> float:
    x, _ = _augmented(x, fit_intercept)
    # the largest eigenvalue of X^T X is the squared spectral norm of X
    top = torch.linalg.matrix_norm(x, ord=2).item() ** 2
    factor = 0.25 if model == "logistic" else 0.5
    return factor * top / x.shape[0] + lam


# ---------------------------------------------------------------------------
# Gradient descent
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearModelFit:
    """What :func:`fit_logistic_regression` and
    :func:`fit_softmax_regression` return.

    Attributes
    ----------
    weight : torch.Tensor
        ``(D,)`` for logistic regression, ``(C, D)`` for softmax regression.
    bias : torch.Tensor or None
        ``()`` or ``(C,)``; None without intercept.
    losses : torch.Tensor
        The objective at every iterate, ``losses[t] = J(theta_t)``, shape
        ``(steps + 1,)``.
    lr : float
        The step size used.
    path : torch.Tensor or None
        With ``record_path=True``, every iterate: shape ``(steps + 1, D)``
        (plus a last column for the bias) for logistic regression.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    losses: torch.Tensor
    lr: float
    path: torch.Tensor | None = None

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """``X w + b`` (shape ``(N,)``) or ``X W^T + b`` (shape ``(N, C)``).

        ``features`` has shape ``(N, D)``, on the device of the weights.
        """
        x = _check_features(features)
        if x.shape[1] != self.weight.shape[-1]:
            raise ValueError(
                f"features must have {self.weight.shape[-1]} columns; got"
                f" {x.shape[1]}"
            )
        if x.device != self.weight.device:
            raise ValueError(
                f"features must be on the device of the weights "
                f"({self.weight.device}); got {x.device}"
            )
        x = x.to(self.weight.dtype)
        if self.weight.dim() == 1:
            z = x @ self.weight
            return z if self.bias is None else z + self.bias
        return F.linear(x, self.weight, self.bias)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted classes, shape ``(N,)``: ``logit > 0`` or the argmax."""
        z = self.logits(features)
        return (z > 0).long() if z.dim() == 1 else z.argmax(dim=1)


def _check_fit_options(steps, lr) -> None:
    if not _is_int(steps) or steps < 0:
        raise ValueError(
            f"steps must be a non-negative integer; got {steps!r}"
        )
    if lr is not None and (not _is_real(lr) or not 0 < lr < math.inf):
        raise ValueError(
            f"lr must be a finite positive number, or None for 1/L; got {lr!r}"
        )


def _augmented(
    x: torch.Tensor, fit_intercept: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features with a column of ones (when fitting an intercept) and the
    penalty mask (1 for a weight, 0 for the intercept)."""
    d = x.shape[1]
    mask = torch.ones(d + int(fit_intercept), dtype=x.dtype, device=x.device)
    if fit_intercept:
        ones = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
        x = torch.cat([x, ones], dim=1)
        mask[-1] = 0.0
    return x, mask


def _check_converging(losses: torch.Tensor, upto: int, start: int, lr):
    """Stop with a clear error when the objective stopped being finite."""
    window = losses[start : upto + 1]
    finite = torch.isfinite(window)
    if not bool(finite.all()):
        step = start + int((~finite).nonzero()[0])
        raise FloatingPointError(
            f"gradient descent diverged: the objective became "
            f"{window[step - start].item()} at step {step}. Lower the "
            f"learning rate (lr={lr:g}), or pass lr=None for the safe "
            "step 1/L"
        )


@torch.no_grad()
def fit_logistic_regression(
    features: torch.Tensor,
    target: torch.Tensor,
    *,
    l2: float = 0.0,
    fit_intercept: bool = True,
    steps: int = 1000,
    lr: float | None = None,
    init: torch.Tensor | None = None,
    record_path: bool = False,
) -> LinearModelFit:
    r"""Fit a logistic regression by full-batch gradient descent.

    Minimises :func:`logistic_regression_loss` with the updates
    :math:`\theta \leftarrow \theta - \eta \nabla J(\theta)`, using the
    analytic gradient of :func:`logistic_regression_gradient`, from
    ``init`` (zeros by default). Deterministic: there is no randomness.
    Chapter 3 writes this loop out on the page.

    Parameters
    ----------
    features : torch.Tensor
        Inputs of shape ``(N, D)``; standardise them first for fast
        convergence.
    target : torch.Tensor
        Labels of shape ``(N,)`` in [0, 1].
    l2 : float
        Penalty strength :math:`\lambda`; ``1 / (C N)`` reproduces
        scikit-learn's ``LogisticRegression(C=C)``.
    fit_intercept : bool
        Fit an (unpenalised) intercept.
    steps : int
        Number of gradient steps.
    lr : float, optional
        Step size :math:`\eta`; None uses :math:`1/L` from
        :func:`gradient_lipschitz_bound`, which guarantees that every step
        lowers the objective.
    init : torch.Tensor, optional
        Starting point: shape ``(D,)``, or ``(D + 1,)`` with the intercept
        last when ``fit_intercept``.
    record_path : bool
        Keep every iterate in ``path``.

    Returns
    -------
    LinearModelFit

    Raises
    ------
    FloatingPointError
        When the objective stops being finite (a step ``lr`` far too
        large); the message names the step and the learning rate.

    Examples
    --------
    >>> x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    >>> y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    >>> fit = fit_logistic_regression(x, y, l2=0.1, steps=200)
    >>> fit.predict(x).tolist()
    [0, 0, 1, 1]
    """
    x = _check_features(features)
    n, d = x.shape
    y = _check_binary_target(target, n, x)
    lam = _check_l2(l2)
    _check_bool(fit_intercept, "fit_intercept")
    _check_bool(record_path, "record_path")
    _check_fit_options(steps, lr)
    xa, mask = _augmented(x, fit_intercept)
    if init is None:
        theta = torch.zeros(xa.shape[1], dtype=x.dtype, device=x.device)
    else:
        theta = _check_parameter(init, "init", (xa.shape[1],), x)
        theta = theta.detach().clone().to(x.dtype)
    eta = (
        float(lr)
        if lr is not None
        else 1.0 / _lipschitz(x, "logistic", lam, fit_intercept)
    )
    losses = torch.empty(steps + 1, dtype=x.dtype, device=x.device)
    path = (
        torch.empty(steps + 1, xa.shape[1], dtype=x.dtype, device=x.device)
        if record_path
        else None
    )
    penalty = 0.5 * lam * mask
    checked = 0
    for t in range(steps + 1):
        z = xa @ theta
        losses[t] = (F.softplus(z) - y * z).mean() + (
            penalty * theta * theta
        ).sum()
        if path is not None:
            path[t] = theta
        if t % _CHECK_EVERY == 0 or t == steps:
            _check_converging(losses, t, checked, eta)
            checked = t
        if t == steps:
            break
        grad = xa.T @ ((torch.sigmoid(z) - y) / n) + lam * mask * theta
        theta = theta - eta * grad
    weight, bias = (theta[:d], theta[d]) if fit_intercept else (theta, None)
    return LinearModelFit(
        weight=weight, bias=bias, losses=losses, lr=eta, path=path
    )


def _resolve_n_classes(n_classes, target, n: int) -> int:
    if n_classes is None:
        if (
            not isinstance(target, torch.Tensor)
            or target.is_floating_point()
            or target.is_complex()
            or target.dtype == torch.bool
            or target.numel() == 0
        ):
            return 2  # the target check reports the problem
        return max(int(target.max().item()) + 1, 2)
    if not _is_int(n_classes) or n_classes < 2:
        raise ValueError(
            f"n_classes must be an integer of at least 2; got {n_classes!r}"
        )
    return int(n_classes)


@torch.no_grad()
def fit_softmax_regression(
    features: torch.Tensor,
    target: torch.Tensor,
    *,
    n_classes: int | None = None,
    l2: float = 0.0,
    fit_intercept: bool = True,
    steps: int = 1000,
    lr: float | None = None,
) -> LinearModelFit:
    r"""Fit a softmax regression by full-batch gradient descent from zero.

    Minimises :func:`softmax_regression_loss` with the analytic gradient
    :math:`\frac1N (P - Y)^\top X + \lambda W`. Starting from zero keeps the
    weights and intercepts summing to zero over the classes (each gradient
    does), which picks one representative of the softmax's shift
    invariance.

    Parameters
    ----------
    features : torch.Tensor
        Inputs of shape ``(N, D)``; standardise them first.
    target : torch.Tensor
        Integer class indices of shape ``(N,)``.
    n_classes : int, optional
        Number of classes :math:`C`; defaults to ``target.max() + 1``.
    l2 : float
        Penalty strength :math:`\lambda` on the weights (``1 / (C N)`` for
        scikit-learn's ``C``).
    fit_intercept : bool
        Fit unpenalised intercepts.
    steps : int
        Number of gradient steps.
    lr : float, optional
        Step size; None uses :math:`1/L` from
        :func:`gradient_lipschitz_bound`.

    Returns
    -------
    LinearModelFit
        ``weight`` of shape ``(C, D)``, ``bias`` of shape ``(C,)`` or None.

    Raises
    ------
    FloatingPointError
        When the objective stops being finite (the message names the step
        and the learning rate).
    """
    x = _check_features(features)
    n, d = x.shape
    n_classes = _resolve_n_classes(n_classes, target, n)
    y = _check_classes(target, n, n_classes, x, f"n_classes = {n_classes}")
    lam = _check_l2(l2)
    _check_bool(fit_intercept, "fit_intercept")
    _check_fit_options(steps, lr)
    eta = (
        float(lr)
        if lr is not None
        else 1.0 / _lipschitz(x, "softmax", lam, fit_intercept)
    )
    xa, mask = _augmented(x, fit_intercept)
    theta = torch.zeros(n_classes, xa.shape[1], dtype=x.dtype, device=x.device)
    onehot = F.one_hot(y, n_classes).to(x.dtype)
    losses = torch.empty(steps + 1, dtype=x.dtype, device=x.device)
    checked = 0
    for t in range(steps + 1):
        z = xa @ theta.T
        log_p = torch.log_softmax(z, dim=1)
        losses[t] = (
            -(onehot * log_p).sum() / n
            + 0.5 * lam * (mask * theta * theta).sum()
        )
        if t % _CHECK_EVERY == 0 or t == steps:
            _check_converging(losses, t, checked, eta)
            checked = t
        if t == steps:
            break
        grad = ((log_p.exp() - onehot) / n).T @ xa + lam * mask * theta
        theta = theta - eta * grad
    weight, bias = (
        (theta[:, :d], theta[:, d]) if fit_intercept else (theta, None)
    )
    return LinearModelFit(
        weight=weight.contiguous(), bias=bias, losses=losses, lr=eta
    )


# ---------------------------------------------------------------------------
# Data preparation
# ---------------------------------------------------------------------------


def _as_matrix(features) -> torch.Tensor:
    try:
        x = torch.as_tensor(features, dtype=torch.float64, device="cpu")
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            "features must be an array of numbers of shape (N, D); got"
            f" {type(features).__name__}"
        ) from err
    if x.dim() != 2:
        raise ValueError(
            f"features must have shape (N, D); got shape {tuple(x.shape)}"
        )
    check_finite(x, "features")
    return x


def _as_labels(target, n: int) -> torch.Tensor:
    try:
        y = torch.as_tensor(target, device="cpu")
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            "target must be an array of integer labels; got"
            f" {type(target).__name__}"
        ) from err
    if tuple(y.shape) != (n,):
        raise ValueError(
            f"target must have shape ({n},), one label per row of features;"
            f" got {tuple(y.shape)}"
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(
            f"target must hold integer class labels; got dtype {y.dtype}"
        )
    return y.long()


def _stratified_test_counts(counts: torch.Tensor, n_test: int) -> list[int]:
    """Test examples per class: proportional to the class sizes, rounded
    so that they add up to ``n_test`` (largest remainders first)."""
    share = counts.double() * n_test / counts.sum()
    take = share.floor().long()
    order = torch.argsort(share - take, descending=True, stable=True)
    take[order[: n_test - int(take.sum())]] += 1
    return take.tolist()


def standardised_split(
    features,
    target,
    *,
    test_size: float = 0.25,
    rng: int | torch.Generator | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a data set into stratified train and test parts and standardise
    the features.

    Each class sends its share of ``test_size`` (rounded so that the test
    part has ``ceil(test_size * N)`` examples) to the test part, chosen at
    random. The mean and standard deviation of each feature come from the
    training part only (scikit-learn's ``StandardScaler``), so that nothing
    about the test examples leaks into training; a constant feature is left
    unscaled. Chapter 3 uses it for several splits of the same data.

    Parameters
    ----------
    features : array-like
        Shape ``(N, D)``, finite numbers.
    target : array-like
        Integer labels of shape ``(N,)``; the split keeps their proportions.
    test_size : float
        Fraction of examples held out, in (0, 1); both parts must be
        non-empty.
    rng : int, torch.Generator or None
        The split's randomness (see :func:`xentlib.runtime.as_generator`).
    device : str or torch.device
        Where the returned tensors live.
    dtype : torch.dtype
        Floating dtype of the features.

    Returns
    -------
    x_train, x_test : torch.Tensor
        Standardised features, shapes ``(N_train, D)`` and ``(N_test, D)``.
    y_train, y_test : torch.Tensor
        Labels as ``torch.long``, shapes ``(N_train,)`` and ``(N_test,)``.

    Examples
    --------
    >>> x = torch.arange(8.0).reshape(8, 1)
    >>> y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> x_train, x_test, y_train, y_test = standardised_split(x, y, rng=0)
    >>> sorted(y_test.tolist()), round(x_train.mean().item(), 12)
    ([0, 1], 0.0)
    """
    x = _as_matrix(features)
    n = x.shape[0]
    y = _as_labels(target, n)
    if not _is_real(test_size) or not 0 < test_size < 1:
        raise ValueError(
            f"test_size must be a fraction in (0, 1); got {test_size!r}"
        )
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise ValueError(
            f"test_size must leave at least one example in each part; got"
            f" {test_size!r} of {n} examples"
        )
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating-point torch.dtype; got {dtype!r}"
        )
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must name a torch device; got {device!r}"
        ) from err
    order = torch.randperm(n, generator=as_generator(rng))
    classes, codes = torch.unique(y, return_inverse=True)
    counts = torch.bincount(codes, minlength=len(classes))
    quota = _stratified_test_counts(counts, n_test)
    # in the shuffled order, each class's first `quota` examples go to test
    position = torch.empty(n, dtype=torch.long)
    position[order] = torch.arange(n)
    by_class = torch.argsort(codes * n + position)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts[codes[by_class]]
    in_test = rank < torch.tensor(quota)[codes]
    train, test = order[~in_test[order]], order[in_test[order]]
    mean = x[train].mean(0)
    scale = x[train].std(0, unbiased=False)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))

    def prepare(rows):
        z = (x[rows] - mean) / scale
        return z.to(device=device, dtype=dtype)

    return (
        prepare(train),
        prepare(test),
        y[train].to(device),
        y[test].to(device),
    )

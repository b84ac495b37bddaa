"""Cross-entropy losses computed from logits.

Introduced in chapter 1 (why logits and log-sum-exp) and chapter 3 (the
gradient ``softmax - target``). The signatures and semantics follow
:func:`torch.nn.functional.cross_entropy` and
:func:`torch.nn.functional.binary_cross_entropy_with_logits`, so a reader who
knows those can use these; the differences are that these validate their
inputs (a wrong shape, a class index out of range or a probability target that
is not a distribution raises :class:`ValueError`), and that
:func:`cross_entropy` has an explicit, analytic backward.

Half-precision inputs (float16, bfloat16) are computed in float32 and the
result is returned in the input's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import (
    check_class_indices,
    check_distribution,
    check_logits,
    check_no_nan,
    check_reduction,
    check_unit_interval,
    compute_dtype,
    reduce_rows,
)

__all__ = ["cross_entropy", "binary_cross_entropy"]


class _SoftmaxCrossEntropy(torch.autograd.Function):
    r"""Row losses :math:`\ell_i = -\sum_k t_{ik} \log \mathrm{softmax}(z_i)_k`.

    ``logits`` and ``targets`` have shape ``(M, C)``; the output has shape
    ``(M,)``, in float32 for half-precision logits. The targets ``t`` are
    non-negative class masses (a one-hot or smoothed target, already
    multiplied by any class weights), so the gradient is the analytic

    .. math:: \partial \ell_i / \partial z_{ik} = (\textstyle\sum_j t_{ij})\, p_{ik} - t_{ik}

    which for an unweighted target that sums to one is ``softmax - target``.
    The backward is written with differentiable operations on the saved
    inputs, so double backward works too.
    """

    @staticmethod
    def forward(
        ctx, logits: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        z = logits.to(compute_dtype(logits.dtype))
        logp = torch.log_softmax(z, dim=-1)
        t = targets.to(z.dtype)
        # 0 * log 0 = 0: a class of zero target mass contributes nothing even if
        # its logit is -inf (a masked class).
        terms = torch.where(
            t != 0, t * logp, torch.zeros((), dtype=z.dtype, device=z.device)
        )
        ctx.save_for_backward(logits, targets)
        # Rows stay in the compute dtype so that a half-precision mean is summed in float32.
        return 0.0 - terms.sum(-1)  # +0.0, never -0.0, for a perfect row

    @staticmethod
    def backward(ctx, grad_rows: torch.Tensor):
        logits, targets = ctx.saved_tensors
        z = logits.to(compute_dtype(logits.dtype))
        t = targets.to(z.dtype)
        g = grad_rows.to(z.dtype).unsqueeze(-1)
        grad_logits = grad_targets = None
        if ctx.needs_input_grad[0]:
            p = torch.softmax(z, dim=-1)
            grad_logits = ((t.sum(-1, keepdim=True) * p - t) * g).to(
                logits.dtype
            )
        if ctx.needs_input_grad[1]:
            logp = torch.log_softmax(z, dim=-1)
            grad_targets = (-logp * g).to(targets.dtype)
        return grad_logits, grad_targets


def _classes_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C); (C,) -> (1, C); (N, C) unchanged."""
    if x.dim() == 1:
        return x.unsqueeze(0)
    if x.dim() == 2:
        return x
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    r"""Cross-entropy between logits and class indices or class probabilities.

    For a row with logits :math:`z` over :math:`C` classes and predicted
    probabilities :math:`p = \mathrm{softmax}(z)`, the loss against class
    :math:`y` is :math:`-\log p_y = -z_y + \log \sum_k e^{z_k}`, computed with
    log-sum-exp so that no exponential overflows. Against a probability
    target :math:`t` it is :math:`-\sum_k t_k \log p_k`.

    Same semantics as :func:`torch.nn.functional.cross_entropy`:

    * ``weight`` (shape ``(C,)``) multiplies the loss of each class. With class
      indices and ``reduction="mean"``, the sum of row losses is divided by the
      sum of the weights of the rows' target classes; with probability
      targets it is divided by the number of rows.
    * ``label_smoothing`` :math:`\varepsilon` mixes the target with the uniform
      distribution: :math:`(1-\varepsilon)\,t + \varepsilon / C`.
    * Rows whose index target equals ``ignore_index`` contribute zero loss and
      are left out of the mean's normaliser.

    The backward is the analytic gradient
    :math:`\partial \ell / \partial z_k = p_k - t_k` (times each row's weight,
    divided by the normaliser for ``reduction="mean"``), implemented as a
    custom :class:`torch.autograd.Function`. Explained in chapters 1 and 3.

    Parameters
    ----------
    input : torch.Tensor
        Logits of shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
    target : torch.Tensor
        Either integer class indices of shape ``()``, ``(N,)`` or
        ``(N, d1, ...)`` with values in ``[0, C-1]`` (or ``ignore_index``),
        or floating class probabilities of the same shape as ``input`` that
        sum to one over the class dimension.
    weight : torch.Tensor, optional
        Non-negative per-class weights of shape ``(C,)``.
    ignore_index : int
        Index target to ignore (only with class-index targets).
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns one loss per row, shape ``()``, ``(N,)`` or
        ``(N, d1, ...)``.
    label_smoothing : float
        Amount :math:`\varepsilon \in [0, 1]` of uniform smoothing.

    Returns
    -------
    torch.Tensor
        A scalar, or the per-row losses for ``reduction="none"``; in the
        dtype of ``input``.

    Examples
    --------
    >>> import torch, xentlib
    >>> logits = torch.tensor([[2.0, 0.5, -1.0]])
    >>> xentlib.cross_entropy(logits, torch.tensor([0]))
    tensor(0.2413)
    """
    check_reduction(reduction)
    if not isinstance(input, torch.Tensor):
        raise ValueError(
            "input must be a torch.Tensor of logits; got"
            f" {type(input).__name__}"
        )
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"target must be a torch.Tensor; got {type(target).__name__}"
        )
    if input.dim() == 0:
        raise ValueError(
            "input must have a class dimension: shape (C,), (N, C) or (N, C,"
            " d1, ...); got a scalar"
        )
    check_logits(input, "input")
    if isinstance(label_smoothing, bool) or not (
        0.0 <= float(label_smoothing) <= 1.0
    ):
        raise ValueError(
            f"label_smoothing must be in [0, 1]; got {label_smoothing!r}"
        )
    eps = float(label_smoothing)
    class_dim = 0 if input.dim() == 1 else 1
    n_classes = input.shape[class_dim]
    if n_classes == 0:
        raise ValueError(
            "input must have at least one class; got a class dimension of"
            " size 0"
        )
    dtype = compute_dtype(input.dtype)

    if weight is not None:
        if not isinstance(weight, torch.Tensor) or weight.shape != (
            n_classes,
        ):
            got = (
                tuple(weight.shape)
                if isinstance(weight, torch.Tensor)
                else type(weight).__name__
            )
            raise ValueError(
                f"weight must be a tensor of shape ({n_classes},), one weight"
                f" per class; got {got}"
            )
        check_no_nan(weight, "weight")
        if bool((weight < 0).any()):
            raise ValueError("weight must be non-negative")
        w = weight.to(device=input.device, dtype=dtype)
    else:
        w = None

    logits = _classes_last(input)
    row_shape = input.shape[:class_dim] + input.shape[class_dim + 1 :]

    if target.is_floating_point():
        if target.shape != input.shape:
            raise ValueError(
                "target of class probabilities must have the same shape as"
                f" input {tuple(input.shape)}; got {tuple(target.shape)}"
            )
        check_distribution(target, "target", dim=class_dim)
        t = _classes_last(target).to(device=input.device)
        if t.dtype != dtype:
            t = t.to(dtype)
        if eps > 0:
            t = (1 - eps) * t + eps / n_classes
        if w is not None:
            t = t * w
        normaliser = logits.shape[0]
    else:
        if target.is_complex() or target.dtype == torch.bool:
            raise ValueError(
                "target must hold integer class indices or float"
                f" probabilities; got dtype {target.dtype}"
            )
        if target.shape != row_shape:
            raise ValueError(
                f"target of class indices must have shape {tuple(row_shape)}"
                f" for input of shape {tuple(input.shape)}; got"
                f" {tuple(target.shape)}"
            )
        y = target.reshape(-1).to(device=input.device, dtype=torch.long)
        keep = check_class_indices(y, n_classes, ignore_index)
        y_safe = torch.where(keep, y, torch.zeros_like(y))
        row_w = (
            w[y_safe]
            if w is not None
            else torch.ones(y.shape, dtype=dtype, device=input.device)
        )
        row_w = row_w * keep.to(dtype)
        t = torch.zeros(logits.shape, dtype=dtype, device=input.device)
        t.scatter_(1, y_safe.unsqueeze(1), ((1 - eps) * row_w).unsqueeze(1))
        if eps > 0:
            smooth = (
                w
                if w is not None
                else torch.ones(n_classes, dtype=dtype, device=input.device)
            )
            t = t + (eps / n_classes) * smooth * keep.to(dtype).unsqueeze(1)
        normaliser = row_w.sum()

    rows = _SoftmaxCrossEntropy.apply(logits, t)
    if reduction == "none":
        return rows.reshape(row_shape).to(input.dtype)
    total = rows.sum()
    if reduction == "sum":
        return total.to(input.dtype)
    return (total / normaliser).to(input.dtype)


def binary_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Binary cross-entropy between logits and targets in [0, 1].

    For a logit :math:`x` with :math:`\sigma(x) = 1/(1+e^{-x})` and a target
    :math:`y \in [0, 1]`,

    .. math::
        \ell = -w\,[\,\beta\, y \log \sigma(x) + (1-y) \log(1-\sigma(x))\,]
             = w\,[\,\beta\, y\, \mathrm{softplus}(-x) + (1-y)\, \mathrm{softplus}(x)\,]

    where :math:`\beta` is ``pos_weight``. Written with softplus, the loss is
    finite for logits of any size. Same semantics as
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`; its gradient
    with respect to the logit is :math:`\sigma(x) - y` when :math:`w = \beta = 1`.
    Explained in chapters 3 and 6.

    Parameters
    ----------
    input : torch.Tensor
        Logits of any shape.
    target : torch.Tensor
        Targets in [0, 1], same shape as ``input``.
    weight : torch.Tensor, optional
        Weights broadcastable to ``input``'s shape.
    pos_weight : torch.Tensor, optional
        Weight of the positive term, broadcastable to ``input``'s shape
        (usually one per output, shape ``(C,)`` for inputs ``(N, C)``).
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over all elements.

    Returns
    -------
    torch.Tensor
        In the dtype of ``input``.
    """
    check_reduction(reduction)
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        raise ValueError(
            "input must be a floating-point torch.Tensor of logits"
        )
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"target must be a torch.Tensor; got {type(target).__name__}"
        )
    if target.shape != input.shape:
        raise ValueError(
            f"target must have the same shape as input {tuple(input.shape)};"
            f" got {tuple(target.shape)}"
        )
    check_no_nan(input, "input")
    check_unit_interval(target, "target", what="values")
    dtype = compute_dtype(input.dtype)
    x = input.to(dtype)
    y = target.to(dtype)
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch.Tensor; got {type(value).__name__}"
            )
        try:
            if torch.broadcast_shapes(value.shape, input.shape) != input.shape:
                raise RuntimeError
        except RuntimeError:
            raise ValueError(
                f"{name} must be broadcastable to input's shape"
                f" {tuple(input.shape)}; got {tuple(value.shape)}"
            ) from None
        check_no_nan(value, name)
    neg_term = (1 - y) * F.softplus(x)
    pos_term = y * F.softplus(-x)
    if pos_weight is not None:
        pos_term = pos_term * pos_weight.to(device=x.device, dtype=dtype)
    loss = pos_term + neg_term
    if weight is not None:
        loss = loss * weight.to(device=x.device, dtype=dtype)
    return reduce_rows(loss, reduction).to(input.dtype)

"""Cross-entropy losses computed from logits.

Introduced in chapter 1 (why logits and log-sum-exp) and chapter 3 (the
gradient ``softmax - target``). The signatures and semantics follow
:func:`torch.nn.functional.cross_entropy` and
:func:`torch.nn.functional.binary_cross_entropy_with_logits`, so a reader who
knows those can use these; the differences are that these validate their
inputs (a wrong shape, a class index out of range or a probability target that
is not a distribution raises :class:`ValueError`), that they have explicit,
analytic backward passes, and that :func:`binary_cross_entropy` is exact at
infinite logits.

They run at PyTorch's speed: a class-index target is gathered, never expanded
into a one-hot matrix, and the backward pass writes the gradient in place.
Value checks cost no extra pass over the logits where the forward pass can
reveal bad input (a row of log-softmax containing NaN, a loss that is NaN),
and on a CUDA device they never make the host wait for the device: they are
queued with :func:`torch._assert_async`, so bad input stops the program at the
next synchronisation with a device-side assertion instead of a
:class:`ValueError` (run on the CPU to see which argument is wrong).

Precision: half-precision logits (float16, bfloat16) are handled as PyTorch
handles them: the log-softmax, the elementwise binary loss and the gradients
are held in the input's dtype (PyTorch's kernels compute each element, and
accumulate each row, in float32 before rounding), and class-index row losses
are summed in float32. Probability targets are computed in float32. Every
result is returned in the input's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._validation import (
    check_distribution,
    check_logits,
    check_no_nan,
    check_reduction,
    check_unit_interval,
    compute_dtype,
)

__all__ = ["cross_entropy", "binary_cross_entropy"]


def _fail_if(
    bad: torch.Tensor, summary: str, detail: Callable[[], str] | None = None
) -> None:
    """Raise ``ValueError`` when the boolean scalar ``bad`` is true.

    On the CPU the message is ``detail()`` (computed only on failure, so it
    may look at the data) or ``summary``. On a CUDA device reading ``bad``
    would make the host wait for the device, so the check is queued with
    :func:`torch._assert_async` and fails, with ``summary``, as a device-side
    assertion.
    """
    if bad.device.type == "cuda":
        torch._assert_async(~bad, summary)
    elif bool(bad):
        raise ValueError(detail() if detail is not None else summary)


def _check_weight(
    weight, name: str, like: torch.Tensor, shape=None, dtype=None
) -> torch.Tensor:
    """Finite, non-negative weights, on ``like``'s device, in ``dtype``.

    ``dtype`` defaults to ``like``'s compute dtype; ``shape`` to any shape
    that broadcasts to ``like``'s.
    """
    if (
        not isinstance(weight, torch.Tensor)
        or weight.is_complex()
        or weight.dtype == torch.bool
    ):
        got = (
            weight.dtype
            if isinstance(weight, torch.Tensor)
            else type(weight).__name__
        )
        raise ValueError(f"{name} must be a tensor of weights; got {got}")
    if shape is not None and weight.shape != shape:
        raise ValueError(
            f"{name} must be a tensor of shape {tuple(shape)}, one weight"
            f" per class of input (shape {tuple(like.shape)}); got"
            f" {tuple(weight.shape)}"
        )
    if shape is None:
        try:
            ok = torch.broadcast_shapes(weight.shape, like.shape) == like.shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name} must be broadcastable to input's shape"
                f" {tuple(like.shape)}; got {tuple(weight.shape)}"
            )
    w = weight.to(device=like.device, dtype=dtype or compute_dtype(like.dtype))
    if w.numel():
        low, high = torch.aminmax(w)
        _fail_if(
            ~(low >= 0) | ~(high < torch.inf),
            f"{name} must hold finite, non-negative numbers",
            lambda: (
                f"{name} must hold finite, non-negative numbers; got values"
                f" in [{low.item():.6g}, {high.item():.6g}]"
            ),
        )
    return w


def _bad_logits_message(logits: torch.Tensor, name: str = "input") -> str:
    """Why a row of log-softmax came out NaN (only called on failure)."""
    check_logits(logits, name)  # raises for NaN or +inf
    return (
        f"{name} has a row whose logits are all -inf; at least one class"
        " needs a finite logit"
    )


def _check_log_softmax(column: torch.Tensor, logits: torch.Tensor) -> None:
    """Reject NaN, +inf or all -inf rows of logits from their log-softmax.

    A row of log-softmax is NaN, in every entry, exactly when its logits hold
    NaN or +inf or are all -inf, so one entry per row (``column``, shape
    ``(M,)``) tells: this check costs ``M`` reads, not another pass over the
    ``M x C`` logits.
    """
    _fail_if(
        column.isnan().any(),
        "input contains NaN or +inf, or a row of all -inf; expected logits"
        " in [-inf, inf) with a finite one in every row",
        lambda: _bad_logits_message(logits),
    )


class _IndexCrossEntropy(torch.autograd.Function):
    r"""Cross-entropy against class indices, with smoothing and class weights.

    ``logits`` ``(M, C)``; ``y`` ``(M,)`` long in ``[0, C-1]``; ``a``
    ``(M,)`` the mass on each row's target class (zero for an ignored row),
    or None for ones; ``b`` ``(M,)`` or None the smoothing mass per class;
    ``s`` ``(C,)`` or None the class weights of the smoothing term (None for
    ones); ``reduction`` ``"sum"`` or ``"none"``. The row loss is

    .. math::
        \ell_i = -a_i \log p_{i y_i} - b_i \textstyle\sum_k s_k \log p_{ik}

    and its gradient the analytic
    :math:`\partial \ell_i / \partial z_{ik} = (a_i + b_i \sum_j s_j)\,
    p_{ik} - a_i [k = y_i] - b_i s_k`, which for an unweighted, unsmoothed
    row is ``softmax - one_hot``. The log-softmax is saved, as PyTorch saves
    it, and the backward pass turns it into the gradient in place: one
    exponential of the whole tensor (faster than a softmax over short rows),
    one subtraction per row, one product per logit. Under
    ``create_graph=True`` the backward is written with differentiable
    operations on the logits instead, so double backward works.
    """

    @staticmethod
    def forward(ctx, logits, y, a, b, s, reduction):
        cdtype = compute_dtype(logits.dtype)
        logp = torch.log_softmax(logits, dim=-1)
        # The common case: no weights, no ignored rows, no smoothing.
        if a is None and b is None and reduction == "sum":
            # -sum_i log p_{i y_i}: one pass over the rows, no temporaries
            out = F.nll_loss(logp, y, reduction="sum").to(cdtype)
            _check_log_softmax(out, logits)
        else:
            picked = logp.gather(1, y[:, None]).squeeze(1).to(cdtype)
            _check_log_softmax(picked.sum(), logits)
            # An ignored row (a = 0) contributes 0 even if its target's
            # logit is -inf; after the check a NaN can only be that 0 * -inf.
            rows = picked if a is None else picked * a
            rows = rows.nan_to_num(0.0, math.inf, -math.inf).neg_()
            if b is not None:
                if s is None:
                    spread = logp.sum(-1, dtype=cdtype)
                else:
                    terms = torch.where(s != 0, logp * s.to(logp.dtype), 0.0)
                    spread = terms.sum(-1, dtype=cdtype)
                rows = rows - b * spread
            out = rows if reduction == "none" else rows.sum()
        ctx.save_for_backward(logits, logp, y, a, b, s)
        ctx.reduction = reduction
        return out

    @staticmethod
    def backward(ctx, grad_out):
        logits, logp, y, a, b, s = ctx.saved_tensors
        n_rows, n_classes = logits.shape
        cdtype = compute_dtype(logits.dtype)
        g = grad_out.to(cdtype)  # a scalar for reduction="sum"
        grads = [None] * 6
        if ctx.needs_input_grad[0]:
            if torch.is_grad_enabled():  # double backward: no in-place ops
                grads[0] = _dense_index_gradient(logits, y, a, b, s, g)
            else:
                grads[0] = _index_gradient(logp, y, a, b, s, g)
        if any(ctx.needs_input_grad[2:5]):
            g_rows = g.expand(n_rows)
            logp = logp.to(cdtype)
            if ctx.needs_input_grad[2]:
                picked = logp.gather(1, y[:, None]).squeeze(1)
                grads[2] = -g_rows * torch.where(a != 0, picked, 0.0)
            if ctx.needs_input_grad[3]:
                spread = logp.sum(-1) if s is None else logp @ s
                grads[3] = -g_rows * spread
            if ctx.needs_input_grad[4]:
                grads[4] = -((g_rows * b)[:, None] * logp).sum(0)
        return tuple(grads)


def _index_gradient(logp, y, a, b, s, g):
    """The gradient of :class:`_IndexCrossEntropy`, written in place."""
    dt, (n_rows, n_classes) = logp.dtype, logp.shape
    grad = logp.exp()
    # Per row: mass * p - (target mass) * onehot - smoothing; without
    # smoothing the mass is the target mass, so (p - onehot) * mass.
    mass = g if a is None else g * a
    if b is None:
        # grad[i, y_i] -= 1 (scatter_add_ would copy a whole half-precision
        # tensor on the CPU)
        # (torch.full, not torch.tensor: no copy from the host, which on a
        # GPU would wait for the device)
        minus_one = torch.full((), -1.0, dtype=dt, device=grad.device)
        rows = torch.arange(n_rows, device=grad.device)
        grad.index_put_((rows, y), minus_one, accumulate=True)
        return grad.mul_(mass[:, None].to(dt) if mass.dim() else mass)
    total = n_classes if s is None else s.sum()
    grad.mul_((mass + g * b * total)[:, None].to(dt))
    grad.scatter_add_(1, y[:, None], -mass.expand(n_rows)[:, None].to(dt))
    smooth = (g * b)[:, None].to(dt)
    return grad.sub_(smooth if s is None else smooth * s.to(dt))


def _dense_index_gradient(logits, y, a, b, s, g):
    """The same gradient through a dense target, with differentiable ops."""
    n_rows, n_classes = logits.shape
    cdtype = compute_dtype(logits.dtype)
    t = F.one_hot(y, n_classes).to(cdtype)
    if a is not None:
        t = t * a[:, None]
    if b is not None:
        spread = torch.ones(n_classes, dtype=cdtype, device=t.device)
        t = t + b[:, None] * (spread if s is None else s)
    p = torch.softmax(logits.to(cdtype), -1)
    g_rows = g.expand(n_rows)[:, None]
    return ((t.sum(-1, keepdim=True) * p - t) * g_rows).to(logits.dtype)


class _SoftmaxCrossEntropy(torch.autograd.Function):
    r"""Row losses :math:`\ell_i = -\sum_k t_{ik} \log p_{ik}`, dense targets.

    ``logits`` and ``targets`` have shape ``(M, C)``; the output has shape
    ``(M,)``, in float32 for half-precision logits. The targets ``t`` are
    non-negative class masses (a probability target, smoothed and multiplied
    by any class weights), so the gradient is the analytic

    .. math::
        \partial \ell_i / \partial z_{ik}
        = (\textstyle\sum_j t_{ij})\, p_{ik} - t_{ik}

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
        _check_log_softmax(logp[:, 0], logits)
        t = targets.to(z.dtype)
        # 0 * log 0 = 0: a class of zero target mass contributes nothing even
        # if its logit is -inf (a masked class).
        terms = torch.where(t != 0, t * logp, 0.0)
        ctx.save_for_backward(logits, targets)
        # Rows stay in the compute dtype, so that a half-precision mean is
        # summed in float32; 0.0 - x, never -0.0, for a perfect row.
        return 0.0 - terms.sum(-1)

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
    """(N, C, d1, ...) -> (N * d1 * ..., C); (C,) -> (1, C); (N, C) as is."""
    if x.dim() == 1:
        return x.unsqueeze(0)
    if x.dim() == 2:
        return x
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def _check_class_indices(
    y: torch.Tensor, n_classes: int, ignore_index: int, name: str = "target"
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Check flat long class indices; return the kept rows and safe indices.

    ``y`` must hold indices in ``[0, n_classes - 1]`` or ``ignore_index``.
    Returns the mask of rows to keep (None when every row is kept, which on
    the CPU is found from the smallest and largest index) and ``y`` with the
    ignored rows set to class 0.
    """
    if y.device.type == "cpu" and y.numel():
        low, high = (int(v) for v in torch.aminmax(y))
        if 0 <= low and high < n_classes and not low <= ignore_index <= high:
            return None, y
    keep = y != ignore_index
    y_safe = torch.where(keep, y, 0)
    if y.numel():
        low, high = torch.aminmax(y_safe)
        _fail_if(
            (low < 0) | (high >= n_classes),
            f"{name} must hold class indices in [0, {n_classes - 1}] (or"
            f" ignore_index={ignore_index})",
            lambda: (
                f"{name} must hold class indices in [0, {n_classes - 1}] (or"
                f" ignore_index={ignore_index}); got"
                f" {int(y_safe[(y_safe < 0) | (y_safe >= n_classes)][0])}"
            ),
        )
    return keep, y_safe


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
    custom :class:`torch.autograd.Function`. A class-index target is
    gathered, not expanded into a one-hot matrix, and nothing of the size of
    the logits is saved for the backward pass. Explained in chapters 1 and 3.

    Parameters
    ----------
    input : torch.Tensor
        Logits of shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``; ``-inf``
        masks a class, NaN and ``+inf`` are rejected.
    target : torch.Tensor
        Either integer class indices of shape ``()``, ``(N,)`` or
        ``(N, d1, ...)`` with values in ``[0, C-1]`` (or ``ignore_index``),
        or floating class probabilities of the same shape as ``input`` that
        sum to one over the class dimension.
    weight : torch.Tensor, optional
        Finite, non-negative per-class weights of shape ``(C,)``.
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
    if not input.is_floating_point():
        raise ValueError(
            "input must be a floating-point tensor of logits; got dtype"
            f" {input.dtype}"
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(
            f"ignore_index must be an integer; got {ignore_index!r}"
        )
    if (
        isinstance(label_smoothing, bool)
        or not isinstance(label_smoothing, (int, float))
        or not (0.0 <= float(label_smoothing) <= 1.0)
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
    w = (
        None
        if weight is None
        else _check_weight(weight, "weight", input, shape=(n_classes,))
    )
    logits = _classes_last(input)
    row_shape = input.shape[:class_dim] + input.shape[class_dim + 1 :]

    if target.is_floating_point():
        if target.shape != input.shape:
            raise ValueError(
                "target of class probabilities must have the same shape as"
                f" input {tuple(input.shape)}; got {tuple(target.shape)}"
            )
        _check_probabilities(target, "target", class_dim)
        t = _classes_last(target).to(device=input.device)
        if t.dtype != dtype:
            t = t.to(dtype)
        if eps > 0:
            t = (1 - eps) * t + eps / n_classes
        if w is not None:
            t = t * w
        rows = _SoftmaxCrossEntropy.apply(logits, t)
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
        keep, y = _check_class_indices(y, n_classes, ignore_index)
        if keep is None:  # every row counts
            a = None if w is None else w[y]
            normaliser = y.numel() if w is None else a.sum()
        else:
            a = keep.to(dtype) if w is None else w[y] * keep
            normaliser = a.sum()
        b = None
        if eps > 0:
            ones = torch.ones(y.shape, dtype=dtype, device=y.device)
            mask = ones if keep is None else keep.to(dtype)
            a = (1 - eps) * (mask if a is None else a)
            b = (eps / n_classes) * mask
        reduce = "none" if reduction == "none" else "sum"
        out = _IndexCrossEntropy.apply(logits, y, a, b, w, reduce)
        if reduction == "none":
            return out.reshape(row_shape).to(input.dtype)
        if reduction == "sum":
            return out.to(input.dtype)
        return (out / normaliser).to(input.dtype)

    if reduction == "none":
        return rows.reshape(row_shape).to(input.dtype)
    total = rows.sum()
    if reduction == "sum":
        return total.to(input.dtype)
    return (total / normaliser).to(input.dtype)


def _check_probabilities(t: torch.Tensor, name: str, class_dim: int) -> None:
    """``t`` holds distributions along ``class_dim``; asynchronous on CUDA."""
    if t.device.type != "cuda":
        check_distribution(t, name, dim=class_dim)  # names the worst value
        return
    if t.numel() == 0:
        return
    low, high = torch.aminmax(t)
    sums = t.sum(class_dim, dtype=torch.float64)
    tol = (torch.finfo(t.dtype).eps) ** 0.5
    _fail_if(
        ~(low >= 0) | ~(high <= 1) | ((sums - 1).abs() > tol).any(),
        f"{name} must hold probabilities in [0, 1] that sum to one along"
        f" dimension {class_dim}",
    )


class _BinaryCrossEntropy(torch.autograd.Function):
    r"""Binary cross-entropy with logits, reduced, with an analytic backward.

    Inputs ``x``, ``y`` (same shape), ``w`` and ``beta`` (broadcastable, or
    None), and the reduction. The loss of an element,

    .. math:: \ell = w\,[(1-y)\,\mathrm{sp}(x) + \beta y\, \mathrm{sp}(-x)],
       \qquad \mathrm{sp}(x) = \log(1 + e^x),

    is computed as ``(1-y) x - (1 - y + beta y) log_sigmoid(x)``, PyTorch's
    formula, which is exact and finite for every finite logit. At an infinite
    logit that formula can give NaN (``0 * inf``) where the exact loss is 0
    or inf, so a NaN result is recomputed by :func:`_exact_elementwise`
    (which also rejects NaN input); on CUDA, where a branch on the result
    would wait for the device, the exact form is used throughout. The
    gradient, finite everywhere, is

    .. math::
        \partial \ell / \partial x
        = w\,[(1 - y + \beta y)\,\sigma(x) - \beta y] .
    """

    @staticmethod
    def forward(ctx, x, y, w, beta, reduction):
        if x.device.type == "cuda":
            loss = _reduce(_exact_elementwise(x, y, w, beta), reduction)
        else:
            loss = _reduce(_fast_elementwise(x, y, w, beta), reduction)
            # NaN here can only come from an infinite logit (0 * inf) or a
            # NaN logit: the exact path tells them apart.
            probe = loss if reduction != "none" else loss.sum()
            if bool(probe.isnan()):
                loss = _reduce(_exact_elementwise(x, y, w, beta), reduction)
        ctx.save_for_backward(x, y, w, beta)
        ctx.reduction = reduction
        return loss

    @staticmethod
    def backward(ctx, grad_out):
        x, y, w, beta = ctx.saved_tensors
        g = grad_out / x.numel() if ctx.reduction == "mean" else grad_out
        grads = [None] * 5
        if ctx.needs_input_grad[0]:
            if torch.is_grad_enabled():  # double backward: no in-place ops
                grad = torch.sigmoid(x)
                if beta is not None:
                    grad = grad * (1 + (beta - 1) * y) - beta * y
                else:
                    grad = grad - y
                if w is not None:
                    grad = grad * w
                grad = grad * g
            else:
                grad = torch.sigmoid(x)
                if beta is not None:
                    grad.mul_(1 + (beta - 1) * y).sub_(beta * y)
                else:
                    grad.sub_(y)
                if w is not None:
                    grad.mul_(w)
                grad.mul_(g)
            grads[0] = grad
        if any(ctx.needs_input_grad[1:4]):
            ls = F.logsigmoid(x)  # -sp(-x); sp(x) = x - ls
            if ctx.needs_input_grad[1]:
                b = 1.0 if beta is None else beta
                gy = -b * ls - (x - ls)
                grads[1] = gy * (g if w is None else w * g)
            if ctx.needs_input_grad[2]:
                gw = _exact_elementwise(x, y, None, beta) * g
                grads[2] = gw.sum_to_size(w.shape)
            if ctx.needs_input_grad[3]:
                gb = torch.where(y != 0, -y * ls, 0.0) * g
                if w is not None:
                    gb = gb * w
                grads[3] = gb.sum_to_size(beta.shape)
        return tuple(grads)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def _fast_elementwise(x, y, w, beta):
    """PyTorch's formula: exact for finite logits, NaN at some infinite."""
    ls = F.logsigmoid(x)
    loss = torch.sub(x, ls).addcmul_(y, x, value=-1)  # (1 - y) x - ls
    if beta is not None:
        loss.sub_((beta - 1) * y * ls)
    if w is not None:
        loss.mul_(w)
    return loss


def _exact_elementwise(x, y, w, beta):
    r"""The loss exact at infinite logits too; NaN input is rejected.

    Written as :math:`(1-y)\max(x, 0) + \beta y \max(-x, 0) + (1 - y + \beta
    y) \log(1 + e^{-|x|})`, every term non-negative, so that the only NaN left
    is ``0 * inf`` where a coefficient is zero, whose exact value is 0.
    """
    _fail_if(
        x.isnan().any(),
        "input contains NaN; expected logits in [-inf, inf]",
    )
    b = 1.0 if beta is None else beta
    soft = torch.log1p(torch.exp(-x.abs()))
    loss = (1 - y) * x.clamp(min=0) - b * y * x.clamp(max=0)
    loss = loss + (1 - y + b * y) * soft
    if w is not None:
        loss = loss * w
    return torch.where(loss.isnan(), 0.0, loss)


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
        \begin{aligned}
        \ell &= -w\,[\,\beta\, y \log \sigma(x) + (1-y) \log(1-\sigma(x))\,] \\
             &= w\,[\,\beta\, y\, \mathrm{softplus}(-x)
                 + (1-y)\, \mathrm{softplus}(x)\,]
        \end{aligned}

    where :math:`\beta` is ``pos_weight``. Written with softplus, the loss is
    finite for every finite logit, and exact at infinite ones: a logit of
    ``-inf`` with target 0, or ``+inf`` with target 1, has loss 0 and the
    wrong side has loss ``inf``, with finite gradients (PyTorch returns NaN
    there). Same semantics as
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`; the
    gradient with respect to the logit is the analytic
    :math:`\sigma(x) - y` when :math:`w = \beta = 1`. Explained in chapters 3
    and 6.

    Parameters
    ----------
    input : torch.Tensor
        Logits of any shape, in ``[-inf, inf]``; NaN is rejected.
    target : torch.Tensor
        Targets in [0, 1], same shape as ``input``.
    weight : torch.Tensor, optional
        Finite, non-negative weights broadcastable to ``input``'s shape.
    pos_weight : torch.Tensor, optional
        Finite, non-negative weight of the positive term, broadcastable to
        ``input``'s shape (usually one per output, shape ``(C,)`` for inputs
        ``(N, C)``).
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over all elements.

    Returns
    -------
    torch.Tensor
        In the dtype of ``input``.
    """
    check_reduction(reduction)
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        got = (
            input.dtype
            if isinstance(input, torch.Tensor)
            else type(input).__name__
        )
        raise ValueError(
            f"input must be a floating-point torch.Tensor of logits; got {got}"
        )
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"target must be a torch.Tensor; got {type(target).__name__}"
        )
    if target.is_complex():
        raise ValueError("target must be real; got a complex tensor")
    if target.shape != input.shape:
        raise ValueError(
            f"target must have the same shape as input {tuple(input.shape)};"
            f" got {tuple(target.shape)}"
        )
    x = input
    y = target.to(device=x.device, dtype=x.dtype)
    if y.numel():
        low, high = torch.aminmax(y)
        _fail_if(
            ~(low >= 0) | ~(high <= 1),
            "target must hold values in [0, 1]",
            lambda: _unit_interval_message(target),
        )
    w = (
        None
        if weight is None
        else _check_weight(weight, "weight", input, dtype=input.dtype)
    )
    beta = (
        None
        if pos_weight is None
        else _check_weight(pos_weight, "pos_weight", input, dtype=input.dtype)
    )
    loss = _BinaryCrossEntropy.apply(x, y, w, beta, reduction)
    return loss.to(input.dtype)


def _unit_interval_message(target: torch.Tensor) -> str:
    check_no_nan(target, "target")
    check_unit_interval(target, "target", what="values")
    return "target must hold values in [0, 1]"

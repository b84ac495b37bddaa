r"""Cross-entropy at scale: a language model's output layer without its logits.

A language model ends in a linear layer from a hidden size :math:`D` to a
vocabulary of :math:`V` tokens, followed by cross-entropy against the next
token. For :math:`N` tokens the logits form an :math:`N \times V` matrix: at
8,192 tokens and a 128,256-token vocabulary that is a billion numbers, larger
than the layer's weights, and the naive computation holds it (and its
log-softmax, and its gradient) in memory at once.

Two ways around it, both exact:

* :func:`linear_cross_entropy` computes the loss of ``hidden @ weight.T`` in
  chunks of tokens. For each chunk it forms the chunk's logits, reduces each
  row to its log-sum-exp and target logit, and throws the logits away. The
  gradients are the analytic :math:`p - \mathrm{onehot}(y)` pushed through
  the matrix products; by default they are computed in the forward pass,
  chunk by chunk, while the chunk's logits are still there (the design of
  Liger Kernel), and the backward pass only scales them. The other design
  saves the log-sum-exps and recomputes each chunk's logits in the backward
  pass. Peak memory grows with the chunk, not with :math:`N`. On a CUDA
  device a fused Triton kernel (:mod:`xentlib.triton_linear_cross_entropy`)
  goes further and never writes a logit to memory at all.
* :func:`vocab_parallel_cross_entropy` splits the vocabulary over the
  processes of a :mod:`torch.distributed` group. Each process holds the
  logits of its slice; the log-sum-exp and the target logit are combined
  with three all-reduces (a max, a sum of exponentials, a sum of target
  logits), and each process's gradient needs only its own slice.

Introduced in chapter 15.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ._validation import check_reduction, compute_dtype
from .losses import _check_class_indices, _fail_if

__all__ = [
    "METHODS",
    "linear_cross_entropy",
    "vocab_parallel_agreement",
    "vocab_parallel_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
    "vocab_slices",
]

#: The fewest tokens per chunk that :func:`linear_cross_entropy` chooses:
#: smaller matrix products use a processor's matrix units poorly.
MIN_CHUNK_SIZE = 256


def default_chunk_size(tokens: int, hidden: int, vocab: int) -> int:
    """Tokens per chunk when none is given: a chunk's logits about as large
    as the hidden states (Liger Kernel's rule), and at least
    :data:`MIN_CHUNK_SIZE` tokens."""
    return max(MIN_CHUNK_SIZE, -(-tokens * hidden // vocab))


#: The ways :func:`linear_cross_entropy` can compute the loss.
METHODS = ("auto", "gradient_in_forward", "recompute", "triton")


def _chunk_logits(h, weight, bias, cdtype):
    """One chunk's logits ``h @ weight.T + bias``, in the compute dtype."""
    z = h @ weight.T if bias is None else torch.addmm(bias, h, weight.T)
    return z.to(cdtype)


def _softmax_in_place(z: torch.Tensor) -> torch.Tensor:
    """Exponentiate a chunk of logits in place, shifted by each row's maximum.

    Returns the row maxima ``m`` and the row sums ``s`` of the exponentials,
    so that the log-sum-exps are ``m + log s`` and the softmax is the chunk
    divided by ``s``. One buffer, no temporary of the chunk's size.
    """
    m = z.amax(dim=1, keepdim=True)
    z.sub_(m).exp_()
    s = z.sum(dim=1, keepdim=True)
    return m, s


def _subtract_at_targets_(
    z: torch.Tensor, y: torch.Tensor, values: torch.Tensor
) -> None:
    """``z[i, y_i] -= values_i``, in place."""
    rows = torch.arange(z.shape[0], device=z.device)
    z.index_put_((rows, y), -values.to(z.dtype), accumulate=True)


def _gradient_buffers(hidden, weight, cdtype, need):
    """The gradient of ``hidden`` (filled chunk by chunk) and zeroed
    accumulators, in the compute dtype, for those of ``weight`` and its bias;
    None where ``need`` says a gradient is not wanted."""
    need_h, need_w, need_b = need
    dev = hidden.device
    return (
        torch.empty_like(hidden) if need_h else None,
        torch.zeros(weight.shape, dtype=cdtype, device=dev)
        if need_w
        else None,
        torch.zeros(weight.shape[0], dtype=cdtype, device=dev)
        if need_b
        else None,
    )


def _add_chunk_gradients(z, h, weight, rows, grads):
    r"""Given a chunk's :math:`\Delta = \partial L / \partial Z` (``z``, in
    the compute dtype; its inputs ``h`` are ``hidden[rows]``): write its rows
    of :math:`\Delta W` and add :math:`\Delta^\top h` and the column sums
    of :math:`\Delta` to the weight and bias accumulators (a half-precision
    chunk's product is summed in float32)."""
    grad_h, grad_w, grad_b = grads
    if grad_b is not None:
        grad_b += z.sum(0)
    dz = z.to(h.dtype)
    if grad_h is not None:
        torch.matmul(dz, weight, out=grad_h[rows])
    if grad_w is not None:
        if grad_w.dtype == dz.dtype:
            grad_w.addmm_(dz.T, h)
        else:
            grad_w += dz.T @ h


def _cast_gradients(grads, weight, bias):
    """The accumulated gradients of ``weight`` and ``bias`` in their dtypes."""
    grad_h, grad_w, grad_b = grads
    return (
        grad_h,
        None if grad_w is None else grad_w.to(weight.dtype),
        None if grad_b is None else grad_b.to(bias.dtype),
    )


def _loss_and_gradients(hidden, weight, bias, y, row_scale, chunk_size, need):
    r"""The reduced loss :math:`\sum_i c_i \ell_i` and its gradients, chunked.

    ``row_scale`` :math:`c_i` is 0 for an ignored row and otherwise 1 (for
    ``reduction="sum"``) or one over the number of kept rows (for
    ``"mean"``); ``need`` says which of the gradients of ``hidden``,
    ``weight`` and ``bias`` to compute. For each chunk of rows: the logits,
    their softmax in place, the chunk's gradient
    :math:`\Delta = c\,(p - e_y)` in place, that chunk's rows of
    :math:`\partial L / \partial H = \Delta W`, and
    :math:`\Delta^\top H` added to the weight gradient (summed in float32
    for half-precision weights). Returns the log-sum-exps, the loss and the
    three gradients (None where not needed).
    """
    cdtype = compute_dtype(hidden.dtype)
    n, dev = hidden.shape[0], hidden.device
    total = torch.zeros((), dtype=cdtype, device=dev)
    lse = torch.empty(n, dtype=cdtype, device=dev)
    grads = _gradient_buffers(hidden, weight, cdtype, need)
    for start in range(0, n, chunk_size):
        rows = slice(start, start + chunk_size)
        h, yc, c = hidden[rows], y[rows], row_scale[rows]
        z = None  # free the last chunk's logits before the next's
        z = _chunk_logits(h, weight, bias, cdtype)
        target_logit = z.gather(1, yc[:, None])
        m, s = _softmax_in_place(z)
        lse[rows] = (m + s.log()).squeeze(1)
        loss = lse[rows] - target_logit.squeeze(1)
        # c = 0 for an ignored row, whose loss may be inf: count it as 0.
        total += torch.where(c != 0, c * loss, 0.0).sum()
        if not any(need):
            continue
        # dz = c * (softmax - onehot), over the chunk's logits in place
        z.mul_(c[:, None] / s)
        _subtract_at_targets_(z, yc, c)
        _add_chunk_gradients(z, h, weight, rows, grads)
    return lse, total, _cast_gradients(grads, weight, bias)


class _GradientInForward(torch.autograd.Function):
    """The reduced loss, with its gradients computed in the forward pass.

    See :func:`_loss_and_gradients`. Only one chunk of logits is alive at a
    time, and the three matrix products are those of the naive computation:
    none is repeated. The backward pass multiplies the stored gradients by
    the upstream gradient (a scalar, since the loss is reduced) in place and
    hands them over, so that autograd can keep them as the inputs' ``.grad``
    without a copy. A second backward pass through the same graph
    (``retain_graph=True``) finds them gone and computes them again from the
    saved inputs.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, y, row_scale, chunk_size, need):
        lse, total, grads = _loss_and_gradients(
            hidden, weight, bias, y, row_scale, chunk_size, need
        )
        ctx.grads = grads
        ctx.chunk_size, ctx.need = chunk_size, need
        ctx.save_for_backward(hidden, weight, bias, y, row_scale)
        ctx.mark_non_differentiable(lse)
        return lse, total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, _, grad_total):
        grads, ctx.grads = ctx.grads, None
        if grads is None:  # a repeated backward pass
            _, _, grads = _loss_and_gradients(
                *ctx.saved_tensors, ctx.chunk_size, ctx.need
            )
        scaled = [
            None if t is None else t.mul_(grad_total.to(t.dtype))
            for t in grads
        ]
        return (*scaled, None, None, None, None)


class _Recompute(torch.autograd.Function):
    """Row losses of ``cross_entropy(hidden @ weight.T + bias, y)``, chunked.

    The forward pass saves each row's log-sum-exp; the backward pass
    recomputes each chunk's logits from the saved inputs, so nothing of size
    ``N x V`` is ever stored, at the price of a fourth matrix product. It
    takes any upstream gradient, one number per row, so the losses need not
    be reduced (``reduction="none"``), and it can be differentiated more than
    once (``retain_graph=True``).
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, y, chunk_size):
        cdtype = compute_dtype(hidden.dtype)
        n = hidden.shape[0]
        lse = torch.empty(n, dtype=cdtype, device=hidden.device)
        target_logit = torch.empty(n, dtype=cdtype, device=hidden.device)
        for start in range(0, n, chunk_size):
            rows = slice(start, start + chunk_size)
            z = None  # free the last chunk's logits before the next's
            z = _chunk_logits(hidden[rows], weight, bias, cdtype)
            target_logit[rows] = z.gather(1, y[rows, None]).squeeze(1)
            m, s = _softmax_in_place(z)
            lse[rows] = (m + s.log()).squeeze(1)
        ctx.save_for_backward(hidden, weight, bias, y, lse)
        ctx.chunk_size = chunk_size
        ctx.mark_non_differentiable(lse)
        return lse, lse - target_logit

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, _, grad_rows):
        hidden, weight, bias, y, lse = ctx.saved_tensors
        cdtype = lse.dtype
        grads = _gradient_buffers(
            hidden, weight, cdtype, ctx.needs_input_grad[:3]
        )
        g = grad_rows.to(cdtype)
        for start in range(0, hidden.shape[0], ctx.chunk_size):
            rows = slice(start, start + ctx.chunk_size)
            h = hidden[rows]
            z = None  # free the last chunk's logits before the next's
            z = _chunk_logits(h, weight, bias, cdtype)
            # dz = g * (softmax(z) - onehot(y)), over the chunk's logits
            z.sub_(lse[rows, None]).exp_().mul_(g[rows, None])
            _subtract_at_targets_(z, y[rows], g[rows])
            _add_chunk_gradients(z, h, weight, rows, grads)
        return (*_cast_gradients(grads, weight, bias), None, None)


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int | None = None,
    method: str = "auto",
) -> torch.Tensor:
    r"""Cross-entropy of the logits ``hidden @ weight.T + bias``, never whole.

    Equal to ``xentlib.cross_entropy(hidden @ weight.T + bias, target,
    ignore_index=ignore_index, reduction=reduction)`` up to rounding, but the
    :math:`N \times V` logits are formed ``chunk_size`` rows at a time. For a
    row with logits :math:`z = W h + b` and target :math:`y`,

    .. math::

        \ell = \log \sum_v e^{z_v} - z_y, \qquad
        \frac{\partial \ell}{\partial z} = p - e_y, \\
        \frac{\partial \ell}{\partial h} = W^\top (p - e_y), \qquad
        \frac{\partial \ell}{\partial W} = (p - e_y)\, h^\top .

    ``method`` chooses how the gradients are obtained:

    * ``"gradient_in_forward"`` computes them in the forward pass, chunk by
      chunk, while each chunk's logits exist (Liger Kernel's design): the
      three matrix products of the naive computation and no more, with the
      gradients of ``hidden``, ``weight`` and ``bias`` held from the forward
      pass to the backward pass, which multiplies them by the upstream
      gradient. That gradient must be one number, known only then: so the
      loss must be reduced (``"mean"`` or ``"sum"``), and may be scaled or
      added to other terms afterwards. The gradients are computed even if
      no backward pass follows (unless autograd is off or no input requires
      a gradient).
    * ``"recompute"`` saves one log-sum-exp per row and recomputes each
      chunk's logits in the backward pass: a fourth matrix product, but no
      gradient held in between, and any upstream gradient, one per row (so
      also ``reduction="none"``, whose rows may be weighted afterwards).
      Nothing is computed for a backward pass that never comes.
    * ``"triton"`` runs the fused Triton kernel of
      :mod:`xentlib.triton_linear_cross_entropy` (CUDA only, or the Triton
      interpreter), which never writes a logit to memory.
    * ``"auto"`` (the default) is ``"gradient_in_forward"`` for a reduced
      loss and ``"recompute"`` for ``reduction="none"``.

    None supports double backward. Half-precision inputs (bfloat16, float16)
    are multiplied in their own dtype, as a GPU would; the log-sum-exp and
    the softmax are taken in float32, and the weight and bias gradients are
    accumulated over the chunks in float32 and rounded once. Explained in
    chapter 15.

    Parameters
    ----------
    hidden : torch.Tensor
        Hidden states of shape ``(N, D)`` or ``(B, T, D)``.
    weight : torch.Tensor
        Output embedding of shape ``(V, D)``, same dtype and device as
        ``hidden``.
    target : torch.Tensor
        Integer token indices in ``[0, V-1]`` (or ``ignore_index``), one per
        row of ``hidden``: shape ``(N,)`` or ``(B, T)``.
    bias : torch.Tensor, optional
        Output bias of shape ``(V,)``.
    ignore_index : int
        Target value whose rows contribute zero loss and are left out of the
        mean.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns one loss per row, in the shape of ``target``.
    chunk_size : int, optional
        Rows per chunk. The chunk's logits, ``chunk_size * V`` float32
        numbers, are the largest temporary; by default they are about as
        many as the numbers in ``hidden``, with at least 256 rows a chunk.
    method : {"auto", "gradient_in_forward", "recompute", "triton"}
        How the gradients are computed (see above).

    Returns
    -------
    torch.Tensor
        The loss in ``hidden``'s dtype (float32 accumulation for half
        precision).

    Examples
    --------
    >>> import torch, xentlib
    >>> from xentlib.scale import linear_cross_entropy
    >>> h, w = torch.randn(6, 4), torch.randn(10, 4)
    >>> y = torch.tensor([1, 2, 3, 4, 5, 6])
    >>> loss = linear_cross_entropy(h, w, y, chunk_size=4)
    >>> torch.allclose(loss, xentlib.cross_entropy(h @ w.T, y))
    True
    """
    check_reduction(reduction)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if method == "gradient_in_forward" and reduction == "none":
        raise ValueError(
            "method='gradient_in_forward' needs a reduced loss (reduction"
            " 'mean' or 'sum'): the gradient of each row's loss is unknown"
            " until backward; use method='recompute' for reduction='none'"
        )
    for name, x in (("hidden", hidden), ("weight", weight)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{name} must be a floating-point torch.Tensor; got {got}"
            )
    if hidden.dim() < 2:
        raise ValueError(
            "hidden must have shape (N, D) or (B, T, D); got shape"
            f" {tuple(hidden.shape)}"
        )
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight must have shape (V, {hidden.shape[-1]}) to match hidden's"
            f" last dimension; got {tuple(weight.shape)}"
        )
    if weight.shape[0] == 0:
        raise ValueError(
            "weight must have at least one row (a vocabulary of at least one"
            " token)"
        )
    if weight.dtype != hidden.dtype or weight.device != hidden.device:
        raise ValueError(
            f"weight must have hidden's dtype and device ({hidden.dtype},"
            f" {hidden.device}); got ({weight.dtype}, {weight.device})"
        )
    if bias is not None and (
        not isinstance(bias, torch.Tensor)
        or bias.shape != (weight.shape[0],)
        or bias.dtype != hidden.dtype
        or bias.device != hidden.device
    ):
        got = (
            (tuple(bias.shape), bias.dtype, str(bias.device))
            if isinstance(bias, torch.Tensor)
            else type(bias).__name__
        )
        raise ValueError(
            f"bias must be a tensor of shape ({weight.shape[0]},), dtype"
            f" {hidden.dtype} and device {hidden.device}; got {got}"
        )
    if chunk_size is None:
        chunk_size = default_chunk_size(
            hidden[..., 0].numel(), weight.shape[1], weight.shape[0]
        )
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(
            f"chunk_size must be a positive integer; got {chunk_size!r}"
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(
            f"ignore_index must be an integer; got {ignore_index!r}"
        )
    row_shape = hidden.shape[:-1]
    if (
        not isinstance(target, torch.Tensor)
        or target.is_floating_point()
        or target.is_complex()
        or target.dtype == torch.bool
    ):
        got = (
            target.dtype
            if isinstance(target, torch.Tensor)
            else type(target).__name__
        )
        raise ValueError(
            f"target must be an integer tensor of class indices; got {got}"
        )
    if target.shape != row_shape:
        raise ValueError(
            f"target must have shape {tuple(row_shape)}, one index per row of"
            f" hidden; got {tuple(target.shape)}"
        )
    _check_finite(hidden=hidden, weight=weight, bias=bias)
    h = hidden.reshape(-1, hidden.shape[-1])
    y = target.reshape(-1).to(device=hidden.device, dtype=torch.long)
    keep, y = _check_class_indices(y, weight.shape[0], ignore_index)
    cdtype = compute_dtype(hidden.dtype)
    kept = (
        torch.ones(y.shape, dtype=cdtype, device=y.device)
        if keep is None
        else keep.to(cdtype)
    )
    if method == "auto":
        method = "recompute" if reduction == "none" else "gradient_in_forward"

    if method == "triton":
        from .triton_linear_cross_entropy import triton_linear_cross_entropy

        lse, rows = triton_linear_cross_entropy(h, weight, y, bias)
    elif method == "recompute":
        lse, rows = _Recompute.apply(h, weight, bias, y, chunk_size)
    if method in ("triton", "recompute"):
        _check_finite_logits(lse)
        rows = torch.where(kept != 0, rows, 0.0)
        if reduction == "none":
            return rows.reshape(row_shape).to(hidden.dtype)
        total = rows.sum()
        if reduction == "mean":
            total = total / kept.sum()  # NaN if every row is ignored
        return total.to(hidden.dtype)

    scale = kept / kept.sum() if reduction == "mean" else kept
    grads = (
        (False, False, False)
        if not torch.is_grad_enabled()
        else (
            hidden.requires_grad,
            weight.requires_grad,
            bias is not None and bias.requires_grad,
        )
    )
    lse, total = _GradientInForward.apply(
        h, weight, bias, y, scale, chunk_size, grads
    )
    _check_finite_logits(lse)
    return total.to(hidden.dtype)


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)}, dtype {x.dtype}"
    return type(x).__name__


def _check_finite(**tensors) -> None:
    """NaN or inf in the inputs would give NaN gradients: reject them."""
    for name, x in tensors.items():
        if x is not None and x.numel():
            # one pass, no temporary: NaN and infinities reach the extremes
            low, high = torch.aminmax(x)
            _fail_if(
                ~(torch.isfinite(low) & torch.isfinite(high)),
                f"{name} contains NaN or inf; expected finite numbers",
            )


def _check_finite_logits(lse) -> None:
    """Every row's log-sum-exp is finite unless its logits overflowed."""
    _fail_if(
        ~torch.isfinite(lse).all(),
        "the logits hidden @ weight.T + bias overflowed; expected finite"
        " logits",
    )


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """Row losses from this rank's slice of the logits.

    See :func:`vocab_parallel_cross_entropy`. Also returns, for the caller's
    checks, each row's log-sum-exp, the number of processes whose slice
    holds the row's target (one, for a target in the vocabulary) and the
    size of the whole vocabulary.
    """

    @staticmethod
    def forward(ctx, logits, y_local, in_slice, group):
        z = logits.to(compute_dtype(logits.dtype))
        # log-sum-exp over the whole vocabulary: a global max for
        # stability, then a sum of exponentials.
        row_max = z.max(dim=1).values
        dist.all_reduce(row_max, op=dist.ReduceOp.MAX, group=group)
        shifted = z - row_max[:, None]
        sum_exp = shifted.exp().sum(dim=1)
        dist.all_reduce(sum_exp, op=dist.ReduceOp.SUM, group=group)
        # The target logit lives on exactly one rank; the others contribute
        # zero. The same all-reduce counts the ranks that hold the target
        # and adds up the slices' sizes, for the caller's checks.
        picked = shifted.gather(1, y_local[:, None]).squeeze(1)
        n = z.shape[0]
        shared = torch.cat(
            [
                torch.where(in_slice, picked, 0.0),
                in_slice.to(z.dtype),
                torch.full((1,), z.shape[1], dtype=z.dtype, device=z.device),
            ]
        )
        dist.all_reduce(shared, op=dist.ReduceOp.SUM, group=group)
        target_shifted, holders, vocab = shared[:n], shared[n:-1], shared[-1]
        log_sum_exp = sum_exp.log()
        ctx.save_for_backward(shifted, log_sum_exp, y_local, in_slice)
        ctx.logits_dtype = logits.dtype
        lse = row_max + log_sum_exp
        ctx.mark_non_differentiable(lse, holders, vocab)
        return log_sum_exp - target_shifted, lse, holders, vocab

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rows, *_):
        shifted, log_sum_exp, y_local, in_slice = ctx.saved_tensors
        grad = (
            shifted - log_sum_exp[:, None]
        ).exp_()  # this slice of the global softmax
        rows = torch.arange(grad.shape[0], device=grad.device)[in_slice]
        grad[rows, y_local[in_slice]] -= 1
        grad.mul_(grad_rows.to(grad.dtype)[:, None])
        return grad.to(ctx.logits_dtype), None, None, None


def _check_process_group() -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError(
            "vocab-parallel cross-entropy needs an initialised"
            " torch.distributed process group"
        )


def vocab_parallel_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    vocab_start: int,
    *,
    group=None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Cross-entropy when each process holds a slice of the logits.

    Process :math:`r` of the group holds the columns ``vocab_start`` to
    ``vocab_start + V_r - 1`` of the full ``(N, V)`` logits; every process
    holds the same full ``target``. With :math:`m` the global row maximum,

    .. math::

        \ell = m + \log \sum_r \sum_{v \in \text{slice } r} e^{z_v - m} - z_y ,

    so three all-reduces over the group (max of :math:`m`, sum of the
    exponentials, sum of the target logit, which one process holds) give
    every process the same loss. The gradient of a process's slice is its
    slice of :math:`p - e_y`, which needs no further communication. Every
    process returns the same value, equal to the single-process
    :func:`xentlib.cross_entropy` of the gathered logits. Explained in chapter
    15.

    Parameters
    ----------
    logits : torch.Tensor
        This process's slice, shape ``(N, V_r)``.
    target : torch.Tensor
        Global token indices, shape ``(N,)``, identical on every process.
    vocab_start : int
        The global index of this slice's first column.
    group : torch.distributed.ProcessGroup, optional
        The group that shares the vocabulary (default: the world).
    ignore_index, reduction
        As in :func:`xentlib.cross_entropy`.
    """
    check_reduction(reduction)
    _check_process_group()
    if (
        not isinstance(logits, torch.Tensor)
        or not logits.is_floating_point()
        or logits.dim() != 2
    ):
        raise ValueError(
            "logits must be a floating-point tensor of shape (N, V_r), this"
            " process's vocabulary slice"
        )
    if (
        isinstance(vocab_start, bool)
        or not isinstance(vocab_start, int)
        or vocab_start < 0
    ):
        raise ValueError(
            f"vocab_start must be a non-negative integer; got {vocab_start!r}"
        )
    if (
        not isinstance(target, torch.Tensor)
        or target.is_floating_point()
        or target.shape != logits.shape[:1]
    ):
        got = (
            tuple(target.shape)
            if isinstance(target, torch.Tensor)
            else type(target).__name__
        )
        raise ValueError(
            f"target must be an integer tensor of shape ({logits.shape[0]},),"
            f" one token per row of logits; got {got}"
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(
            f"ignore_index must be an integer; got {ignore_index!r}"
        )
    y = target.to(logits.device).long()
    keep = y != ignore_index
    local = y - vocab_start
    in_slice = keep & (local >= 0) & (local < logits.shape[1])
    y_local = torch.where(in_slice, local, 0)
    rows, lse, holders, vocab = _VocabParallelCrossEntropy.apply(
        logits, y_local, in_slice, group
    )
    _fail_if(
        ~torch.isfinite(lse).all(),
        "logits contain NaN or +inf, or a row of all -inf; expected logits"
        " in [-inf, inf) with a finite one in every row",
    )
    # A kept row's target is held by exactly one process's slice.
    _fail_if(
        (keep & (holders != 1)).any(),
        "target must hold class indices of the whole vocabulary (or"
        f" ignore_index={ignore_index}), each in exactly one process's slice",
        lambda: (
            "target must hold class indices in"
            f" [0, {int(vocab) - 1}] (or ignore_index={ignore_index}); got"
            f" {int(y[keep & (holders != 1)][0])}"
            + (
                ""
                if bool((holders <= 1).all())
                else " (the processes' slices overlap: check vocab_start)"
            )
        ),
    )
    rows = torch.where(keep, rows, 0.0)
    if reduction == "none":
        return rows.to(logits.dtype)
    total = rows.sum()
    if reduction == "mean":
        total = total / keep.sum()  # NaN if every row is ignored
    return total.to(logits.dtype)


class _CopyToVocabParallel(torch.autograd.Function):
    """Identity forward; the backward sums the gradient over the group.

    (Each rank saw part of the vocabulary.)
    """

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def vocab_parallel_linear_cross_entropy(
    hidden: torch.Tensor,
    weight_slice: torch.Tensor,
    target: torch.Tensor,
    vocab_start: int,
    *,
    group=None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Output layer plus cross-entropy, the vocabulary split over processes.

    Every process holds the full ``hidden`` (``(N, D)``) and the rows
    ``vocab_start : vocab_start + V_r`` of the output embedding
    (``weight_slice``, ``(V_r, D)``). The loss is
    :func:`vocab_parallel_cross_entropy` of ``hidden @ weight_slice.T``; in the
    backward the partial gradients of ``hidden`` are summed over the group, so
    every process ends with the full gradient of ``hidden`` and the gradient of
    its own slice of the weight. Explained in chapter 15.
    """
    _check_process_group()
    if (
        not isinstance(hidden, torch.Tensor)
        or not hidden.is_floating_point()
        or hidden.dim() != 2
    ):
        raise ValueError(
            "hidden must be a floating-point tensor of shape (N, D); got"
            f" {_describe(hidden)}"
        )
    if (
        not isinstance(weight_slice, torch.Tensor)
        or weight_slice.dim() != 2
        or weight_slice.shape[1] != hidden.shape[1]
        or weight_slice.dtype != hidden.dtype
    ):
        raise ValueError(
            f"weight_slice must have shape (V_r, {hidden.shape[1]}) and dtype"
            f" {hidden.dtype} to match hidden; got {_describe(weight_slice)}"
        )
    if not isinstance(target, torch.Tensor) or target.shape != (
        hidden.shape[0],
    ):
        raise ValueError(
            f"target must have shape ({hidden.shape[0]},), one token per row"
            f" of hidden; got {_describe(target)}"
        )
    _check_finite(hidden=hidden, weight_slice=weight_slice)
    h = _CopyToVocabParallel.apply(hidden, group)
    return vocab_parallel_cross_entropy(
        h @ weight_slice.T,
        target,
        vocab_start,
        group=group,
        ignore_index=ignore_index,
        reduction=reduction,
    )


def vocab_slices(vocab_size: int, world_size: int) -> list[tuple[int, int]]:
    """Split ``range(vocab_size)`` into ``world_size`` contiguous slices.

    Returns (start, stop) pairs whose sizes differ by at most one.
    """
    for name, n in (("vocab_size", vocab_size), ("world_size", world_size)):
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"{name} must be an integer; got {n!r}")
    if vocab_size < world_size or world_size < 1:
        raise ValueError(
            f"vocab_size ({vocab_size}) must be at least world_size"
            f" ({world_size}) >= 1"
        )
    base, extra = divmod(vocab_size, world_size)
    bounds, start = [], 0
    for r in range(world_size):
        stop = start + base + (1 if r < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _agreement_worker(
    rank, world_size, init_file, out_file, tokens, hidden, vocab, seed
):
    from .losses import cross_entropy

    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world_size,
    )
    try:
        g = torch.Generator().manual_seed(seed)
        h = torch.randn(tokens, hidden, generator=g, dtype=torch.float64)
        w = torch.randn(vocab, hidden, generator=g, dtype=torch.float64)
        y = torch.randint(0, vocab, (tokens,), generator=g)
        start, stop = vocab_slices(vocab, world_size)[rank]
        h_par, w_slice = (
            h.clone().requires_grad_(),
            w[start:stop].clone().requires_grad_(),
        )
        loss = vocab_parallel_linear_cross_entropy(h_par, w_slice, y, start)
        loss.backward()
        # Each process checks its own slice against the single-process
        # computation; the worst case is all-reduced.
        h_ref, w_ref = h.clone().requires_grad_(), w.clone().requires_grad_()
        ref = cross_entropy(h_ref @ w_ref.T, y)
        ref.backward()
        diffs = torch.tensor(
            [
                (loss - ref).abs().item(),
                (h_par.grad - h_ref.grad).abs().max().item(),
                (w_slice.grad - w_ref.grad[start:stop]).abs().max().item(),
            ],
            dtype=torch.float64,
        )
        dist.all_reduce(diffs, op=dist.ReduceOp.MAX)
        if rank == 0:
            torch.save(
                dict(
                    zip(("loss", "grad_hidden", "grad_weight"), diffs.tolist())
                ),
                out_file,
            )
    finally:
        dist.destroy_process_group()


def vocab_parallel_agreement(
    world_size: int = 2,
    tokens: int = 64,
    hidden: int = 16,
    vocab: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Run the vocabulary-parallel loss on CPU processes (gloo) and compare.

    Spawns ``world_size`` processes, computes the loss and gradients with
    :func:`vocab_parallel_linear_cross_entropy`, the vocabulary split over
    them, and returns the largest absolute differences (float64) from the
    single-process :func:`xentlib.cross_entropy`: keys ``"loss"``,
    ``"grad_hidden"`` and ``"grad_weight"``. Explained in chapter 15.
    """
    import tempfile

    import torch.multiprocessing as mp

    sizes = dict(world_size=world_size, tokens=tokens, hidden=hidden)
    for name, n in dict(sizes, vocab=vocab).items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer; got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if vocab < world_size:
        raise ValueError(
            f"world_size must be at most vocab ({vocab}), one token per"
            f" process at least; got {world_size}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        init, out = f"{tmp}/init", f"{tmp}/result.pt"
        mp.spawn(
            _agreement_worker,
            args=(world_size, init, out, tokens, hidden, vocab, seed),
            nprocs=world_size,
        )
        return torch.load(out)

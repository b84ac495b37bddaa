r"""Cross-entropy at scale: the output layer of a language model without its logits.

A language model ends in a linear layer from a hidden size :math:`D` to a
vocabulary of :math:`V` tokens, followed by cross-entropy against the next
token. For :math:`N` tokens the logits form an :math:`N \times V` matrix: at
8,192 tokens and a 128,256-token vocabulary that is a billion numbers, larger
than the layer's weights, and the naive computation holds it (and its softmax,
and its gradient) in memory at once.

Two ways around it, both exact:

* :func:`linear_cross_entropy` computes the loss of ``hidden @ weight.T`` in
  chunks of tokens. For each chunk it forms the chunk's logits, keeps only
  their log-sum-exp and the target logit, and throws the logits away; the
  gradients are the analytic :math:`(p - \mathrm{onehot}(y))` pushed through
  the matrix products, chunk by chunk. Peak memory grows with the chunk, not
  with :math:`N`.
* :func:`vocab_parallel_cross_entropy` splits the vocabulary over the
  processes of a :mod:`torch.distributed` group. Each process holds the logits
  of its slice; the log-sum-exp and the target logit are combined with three
  all-reduces (a max, a sum of exponentials, a sum of target logits), and
  each process's gradient needs only its own slice.

Introduced in chapter 15.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ._validation import check_class_indices, check_reduction, compute_dtype

__all__ = [
    "linear_cross_entropy",
    "vocab_parallel_agreement",
    "vocab_parallel_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
    "vocab_slices",
]

#: Default number of tokens per chunk of :func:`linear_cross_entropy`.
DEFAULT_CHUNK_SIZE = 1024


def _check_class_targets(
    target: torch.Tensor,
    rows: int,
    n_classes: int,
    ignore_index: int,
    name: str = "target",
):
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
            f"{name} must be an integer tensor of class indices; got {got}"
        )
    if target.numel() != rows:
        raise ValueError(
            f"{name} must hold one class index per row of hidden ({rows}); got"
            f" shape {tuple(target.shape)}"
        )
    y = target.reshape(-1).long()
    return y, check_class_indices(y, n_classes, ignore_index, name)


def _reduce(
    rows: torch.Tensor, keep: torch.Tensor, reduction: str
) -> torch.Tensor:
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return (
        rows.sum() / keep.sum()
    )  # NaN when every row is ignored, as in PyTorch


class _LinearCrossEntropy(torch.autograd.Function):
    """Row losses of ``cross_entropy(hidden @ weight.T + bias, y)``, chunk by chunk.

    The backward recomputes each chunk's logits from the saved inputs and the
    saved log-sum-exp, so nothing of size ``N x V`` is ever stored.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, y, keep, chunk_size):
        cdtype = compute_dtype(hidden.dtype)
        n = hidden.shape[0]
        lse = torch.empty(n, dtype=cdtype, device=hidden.device)
        target_logit = torch.empty(n, dtype=cdtype, device=hidden.device)
        y_safe = torch.where(keep, y, torch.zeros_like(y))
        for start in range(0, n, chunk_size):
            rows = slice(start, start + chunk_size)
            z = _chunk_logits(hidden[rows], weight, bias, cdtype)
            lse[rows] = torch.logsumexp(z, dim=1)
            target_logit[rows] = z.gather(1, y_safe[rows, None]).squeeze(1)
        losses = torch.where(
            keep,
            lse - target_logit,
            torch.zeros((), dtype=cdtype, device=hidden.device),
        )
        ctx.save_for_backward(hidden, weight, bias, y_safe, keep, lse)
        ctx.chunk_size = chunk_size
        ctx.has_bias = bias is not None
        return losses

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rows):
        hidden, weight, bias, y_safe, keep, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        cdtype = lse.dtype
        grad_h = (
            torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device)
            if need_h
            else None
        )
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = (
            torch.zeros(weight.shape[0], dtype=cdtype, device=weight.device)
            if need_b
            else None
        )
        g = torch.where(
            keep,
            grad_rows.to(cdtype),
            torch.zeros((), dtype=cdtype, device=keep.device),
        )
        for start in range(0, hidden.shape[0], ctx.chunk_size):
            rows = slice(start, start + ctx.chunk_size)
            z = _chunk_logits(
                hidden[rows], weight, bias if ctx.has_bias else None, cdtype
            )
            # dz = g * (softmax(z) - onehot(y)), formed in place over the chunk's logits
            dz = z.sub_(lse[rows, None]).exp_()
            dz[torch.arange(dz.shape[0], device=dz.device), y_safe[rows]] -= 1
            dz.mul_(g[rows, None])
            if need_b:
                grad_b += dz.sum(0)
            dz = dz.to(hidden.dtype)
            if need_h:
                torch.matmul(dz, weight, out=grad_h[rows])
            if need_w:
                grad_w.addmm_(dz.T, hidden[rows])
        if need_b:
            grad_b = grad_b.to(bias.dtype)
        return grad_h, grad_w, grad_b, None, None, None


def _chunk_logits(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, cdtype
) -> torch.Tensor:
    z = h @ weight.T if bias is None else torch.addmm(bias, h, weight.T)
    return z.to(cdtype)


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""Cross-entropy of the logits ``hidden @ weight.T + bias``, computed without storing them.

    Equal to ``xentlib.cross_entropy(hidden @ weight.T + bias, target,
    ignore_index=ignore_index, reduction=reduction)`` up to rounding, but the
    :math:`N \times V` logits are formed ``chunk_size`` rows at a time, in the
    forward and again in the backward, and never held whole. For a row with
    logits :math:`z = W h + b` and target :math:`y`,

    .. math::

        \ell = \log \sum_v e^{z_v} - z_y, \qquad
        \frac{\partial \ell}{\partial z} = p - e_y, \quad
        \frac{\partial \ell}{\partial h} = W^\top (p - e_y), \quad
        \frac{\partial \ell}{\partial W} = (p - e_y)\, h^\top .

    The backward recomputes each chunk's logits (one extra matrix product,
    the price of the memory saving) and does not support double backward.
    Half-precision inputs (bfloat16, float16) are multiplied in their own
    dtype, as a GPU would, and the log-sum-exp and softmax are taken in
    float32; the weight gradient is accumulated in the weight's dtype, one
    rounding per chunk. Explained in chapter 15.

    Parameters
    ----------
    hidden : torch.Tensor
        Hidden states of shape ``(N, D)`` or ``(B, T, D)``.
    weight : torch.Tensor
        Output embedding of shape ``(V, D)``, same dtype and device as ``hidden``.
    target : torch.Tensor
        Integer token indices in ``[0, V-1]`` (or ``ignore_index``), one per
        row of ``hidden``: shape ``(N,)`` or ``(B, T)``.
    bias : torch.Tensor, optional
        Output bias of shape ``(V,)``.
    ignore_index : int
        Target value whose rows contribute zero loss and are left out of the mean.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns one loss per row, in the shape of ``target``.
    chunk_size : int, optional
        Rows per chunk; defaults to 1,024. Peak extra memory is about
        ``2 * chunk_size * V`` float32 numbers.

    Returns
    -------
    torch.Tensor
        The loss in ``hidden``'s dtype (float32 accumulation for half precision).

    Examples
    --------
    >>> import torch, xentlib
    >>> from xentlib.scale import linear_cross_entropy
    >>> h, w = torch.randn(6, 4), torch.randn(10, 4)
    >>> y = torch.tensor([1, 2, 3, 4, 5, 6])
    >>> torch.allclose(linear_cross_entropy(h, w, y, chunk_size=4), xentlib.cross_entropy(h @ w.T, y))
    True
    """
    check_reduction(reduction)
    for name, x in (("hidden", hidden), ("weight", weight)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{name} must be a floating-point torch.Tensor; got {got}"
            )
    if hidden.dim() < 1:
        raise ValueError(
            "hidden must have shape (N, D) or (B, T, D); got a scalar"
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
    ):
        got = (
            (tuple(bias.shape), bias.dtype)
            if isinstance(bias, torch.Tensor)
            else type(bias).__name__
        )
        raise ValueError(
            f"bias must be a tensor of shape ({weight.shape[0]},) and dtype"
            f" {hidden.dtype}; got {got}"
        )
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK_SIZE
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(
            f"chunk_size must be a positive integer; got {chunk_size!r}"
        )
    row_shape = hidden.shape[:-1]
    h = hidden.reshape(-1, hidden.shape[-1])
    if target.shape != row_shape:
        raise ValueError(
            f"target must have shape {tuple(row_shape)}, one index per row of"
            f" hidden; got {tuple(target.shape)}"
        )
    y, keep = _check_class_targets(
        target.to(hidden.device), h.shape[0], weight.shape[0], ignore_index
    )
    rows = _LinearCrossEntropy.apply(h, weight, bias, y, keep, chunk_size)
    out = _reduce(rows, keep, reduction)
    if reduction == "none":
        out = out.reshape(row_shape)
    return out.to(hidden.dtype)


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """Row losses from this rank's slice of the logits; see :func:`vocab_parallel_cross_entropy`."""

    @staticmethod
    def forward(ctx, logits, y_local, in_slice, group):
        z = logits.to(compute_dtype(logits.dtype))
        # log-sum-exp over the whole vocabulary: a global max for stability, then a sum of exponentials.
        row_max = z.max(dim=1).values
        dist.all_reduce(row_max, op=dist.ReduceOp.MAX, group=group)
        shifted = z - row_max[:, None]
        sum_exp = shifted.exp().sum(dim=1)
        dist.all_reduce(sum_exp, op=dist.ReduceOp.SUM, group=group)
        # The target logit lives on exactly one rank; the others contribute zero.
        picked = shifted.gather(1, y_local[:, None]).squeeze(1)
        target_shifted = torch.where(
            in_slice, picked, torch.zeros_like(picked)
        )
        dist.all_reduce(target_shifted, op=dist.ReduceOp.SUM, group=group)
        log_sum_exp = sum_exp.log()
        ctx.save_for_backward(shifted, log_sum_exp, y_local, in_slice)
        ctx.logits_dtype = logits.dtype
        return log_sum_exp - target_shifted

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rows):
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
    r"""Cross-entropy when each process holds only a slice of the vocabulary's logits.

    Process :math:`r` of the group holds ``logits[:, vocab_start : vocab_start + V_r]``
    of the full ``(N, V)`` logits; every process holds the same full
    ``target``. With :math:`m` the global row maximum,

    .. math::

        \ell = m + \log \sum_r \sum_{v \in \text{slice } r} e^{z_v - m} - z_y ,

    so three all-reduces over the group (max of :math:`m`, sum of the
    exponentials, sum of the target logit, which one process holds) give
    every process the same loss. The gradient of a process's slice is its
    slice of :math:`p - e_y`, which needs no further communication. Every
    process returns the same value, equal to the single-process
    :func:`xentlib.cross_entropy` of the gathered logits. Explained in chapter 15.

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
            f"target must be an integer tensor of shape ({logits.shape[0]},);"
            f" got {got}"
        )
    y = target.to(logits.device).long()
    keep = y != ignore_index
    if bool((keep & (y < 0)).any()):
        raise ValueError(
            "target must hold non-negative class indices (or"
            f" ignore_index={ignore_index})"
        )
    local = y - vocab_start
    in_slice = keep & (local >= 0) & (local < logits.shape[1])
    y_local = torch.where(in_slice, local, torch.zeros_like(local))
    rows = _VocabParallelCrossEntropy.apply(logits, y_local, in_slice, group)
    rows = torch.where(
        keep, rows, torch.zeros((), dtype=rows.dtype, device=rows.device)
    )
    return _reduce(rows, keep, reduction).to(logits.dtype)


class _CopyToVocabParallel(torch.autograd.Function):
    """Identity forward; the backward sums the gradient over the group (each rank saw part of the vocabulary)."""

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
    """Output layer plus cross-entropy with the vocabulary split over processes.

    Every process holds the full ``hidden`` (``(N, D)``) and the rows
    ``vocab_start : vocab_start + V_r`` of the output embedding
    (``weight_slice``, ``(V_r, D)``). The loss is
    :func:`vocab_parallel_cross_entropy` of ``hidden @ weight_slice.T``; in the
    backward the partial gradients of ``hidden`` are summed over the group, so
    every process ends with the full gradient of ``hidden`` and the gradient of
    its own slice of the weight. Explained in chapter 15.
    """
    _check_process_group()
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 2:
        raise ValueError("hidden must be a tensor of shape (N, D)")
    if (
        not isinstance(weight_slice, torch.Tensor)
        or weight_slice.dim() != 2
        or weight_slice.shape[1] != hidden.shape[1]
    ):
        raise ValueError(
            f"weight_slice must have shape (V_r, {hidden.shape[1]}) to match"
            " hidden"
        )
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
    """Split ``range(vocab_size)`` into ``world_size`` contiguous (start, stop) slices, sizes differing by at most one."""
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
        # Each process checks its own slice against the single-process computation; the worst case is all-reduced.
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
    """Run :func:`vocab_parallel_linear_cross_entropy` on ``world_size`` CPU processes (gloo) and compare.

    Spawns the processes, computes the loss and gradients with the vocabulary
    split over them, and returns the largest absolute differences (float64)
    from the single-process :func:`xentlib.cross_entropy`: keys ``"loss"``,
    ``"grad_hidden"`` and ``"grad_weight"``. Explained in chapter 15.
    """
    import tempfile

    import torch.multiprocessing as mp

    if world_size < 1 or vocab < world_size:
        raise ValueError(
            f"world_size must be in [1, vocab]; got world_size={world_size},"
            f" vocab={vocab}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        init, out = f"{tmp}/init", f"{tmp}/result.pt"
        mp.spawn(
            _agreement_worker,
            args=(world_size, init, out, tokens, hidden, vocab, seed),
            nprocs=world_size,
        )
        return torch.load(out)

r"""A fused Triton kernel for the output layer plus cross-entropy.

In the spirit of Cut Cross-Entropy (Wijmans et al., 2025): the logits
:math:`Z = H W^\top + b` are computed tile by tile in the GPU's on-chip
memory and never written to its main memory.

* The forward kernel gives each program a block of ``BLOCK_N`` tokens. It
  walks over the vocabulary in blocks of ``BLOCK_V`` entries, forms the
  ``BLOCK_N x BLOCK_V`` tile of logits as a sum of products over blocks of
  the hidden size, and folds the tile into a running log-sum-exp per token
  (the online softmax: a running maximum :math:`m` and a running sum
  :math:`s`, rescaled by :math:`e^{m - m'}` when the maximum grows). It also
  picks the target logit when the target falls in the tile. It writes two
  numbers per token: the log-sum-exp and the target logit.
* The backward pass has two kernels, which recompute the tiles of logits
  and turn each into the tile of :math:`\Delta = g\,(p - e_y)` with the saved
  log-sum-exp. In the first, a program owns a block of tokens and walks over
  the vocabulary, adding :math:`\Delta W` to its tokens' rows of the
  hidden-state gradient; in the second, a program owns a block of the
  vocabulary and walks over the tokens, adding :math:`\Delta^\top H` to its
  rows of the weight gradient (and :math:`\Delta`'s column sums to the
  bias's). No two programs write the same numbers, so there are no atomic
  additions and the result is the same in every run; the price is that each
  tile's logits are computed twice in the backward pass.
* A tile whose every probability is at most ``filter_eps`` and which holds no
  target is skipped in the backward pass: its contribution is
  :math:`g\,p` times the inputs, which is zero when the probabilities are.
  The default ``filter_eps=0`` skips only tiles whose probabilities all
  underflow to zero in float32, which leaves the result exactly unchanged.
  Cut Cross-Entropy skips tiles below :math:`2^{-12}` (pass
  ``filter_eps=2**-12`` to do the same). That leaves the large gradient
  entries within bfloat16's resolution, but not the small ones: a vocabulary
  entry whose tiles are all skipped gets a zero gradient instead of a small
  one (the tests measure it), which is why it is not the default.

The kernels run on a CUDA GPU, and on the CPU through Triton's interpreter
when ``TRITON_INTERPRET=1`` is set before triton is first imported (slowly:
for tests at small sizes). Use them through
``xentlib.scale.linear_cross_entropy(..., method="triton")``.
Explained in chapter 15.
"""

from __future__ import annotations

import torch

try:  # triton comes with PyTorch's CUDA builds
    import triton
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction
except ImportError:  # pragma: no cover - a build without triton
    triton = None

# No public API: use ``linear_cross_entropy(..., method="triton")``, which
# validates the inputs and calls :func:`triton_linear_cross_entropy`.
__all__: list[str] = []

BLOCK_N, BLOCK_V, BLOCK_D = 64, 64, 32


def _forward(
    H,
    W,
    B,
    Y,
    LSE,
    TARGET,
    N,
    V,
    D,
    HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr,
    DOT_IN_F32: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    y = tl.load(Y + rows, mask=row_ok, other=-1)
    m = tl.full([BLOCK_N], float("-inf"), tl.float32)  # running maximum
    s = tl.zeros([BLOCK_N], tl.float32)  # running sum of exp(z - m)
    target = tl.zeros([BLOCK_N], tl.float32)
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        col_ok = cols < V
        z = tl.zeros([BLOCK_N, BLOCK_V], tl.float32)
        for d0 in range(0, D, BLOCK_D):
            ds = d0 + tl.arange(0, BLOCK_D)
            h = tl.load(
                H + rows[:, None] * D + ds[None, :],
                mask=row_ok[:, None] & (ds[None, :] < D),
                other=0.0,
            )
            w = tl.load(
                W + cols[:, None] * D + ds[None, :],
                mask=col_ok[:, None] & (ds[None, :] < D),
                other=0.0,
            )
            if DOT_IN_F32:
                h, w = h.to(tl.float32), w.to(tl.float32)
            z += tl.dot(h, tl.trans(w), input_precision=PRECISION)
        if HAS_BIAS:
            z += tl.load(B + cols, mask=col_ok, other=0.0)[None, :].to(
                tl.float32
            )
        z = tl.where(col_ok[None, :], z, float("-inf"))
        hit = cols[None, :] == y[:, None]
        target += tl.sum(tl.where(hit, z, 0.0), axis=1)
        m_new = tl.maximum(m, tl.max(z, axis=1))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new[:, None]), axis=1)
        m = m_new
    tl.store(LSE + rows, m + tl.log(s), mask=row_ok)
    tl.store(TARGET + rows, target, mask=row_ok)


def _delta_tile(
    H,
    W,
    B,
    Y,
    LSE,
    G,
    rows,
    cols,
    N,
    V,
    D,
    filter_eps,
    HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr,
    DOT_IN_F32: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # The tile of g (p - e_y) for rows x cols, and whether to skip it.
    row_ok = rows < N
    col_ok = cols < V
    z = tl.zeros([BLOCK_N, BLOCK_V], tl.float32)
    for d0 in range(0, D, BLOCK_D):
        ds = d0 + tl.arange(0, BLOCK_D)
        h = tl.load(
            H + rows[:, None] * D + ds[None, :],
            mask=row_ok[:, None] & (ds[None, :] < D),
            other=0.0,
        )
        w = tl.load(
            W + cols[:, None] * D + ds[None, :],
            mask=col_ok[:, None] & (ds[None, :] < D),
            other=0.0,
        )
        if DOT_IN_F32:
            h, w = h.to(tl.float32), w.to(tl.float32)
        z += tl.dot(h, tl.trans(w), input_precision=PRECISION)
    if HAS_BIAS:
        z += tl.load(B + cols, mask=col_ok, other=0.0)[None, :].to(tl.float32)
    # rows past the end get lse = inf, so that their p is exp(-inf) = 0
    lse = tl.load(LSE + rows, mask=row_ok, other=float("inf"))
    p = tl.exp(z - lse[:, None])
    p = tl.where(row_ok[:, None] & col_ok[None, :], p, 0.0)
    y = tl.load(Y + rows, mask=row_ok, other=-1)
    hit = cols[None, :] == y[:, None]
    skip = (tl.max(tl.max(p, axis=1), axis=0) <= filter_eps) & (
        tl.max(tl.max(hit.to(tl.int32), axis=1), axis=0) == 0
    )
    g = tl.load(G + rows, mask=row_ok, other=0.0)
    delta = (p - hit.to(tl.float32)) * g[:, None]
    return delta, skip


def _backward_hidden(
    H,
    W,
    B,
    Y,
    LSE,
    G,
    DH,
    N,
    V,
    D,
    filter_eps,
    HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr,
    DOT_IN_F32: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # One program per block of tokens: it alone writes their rows of DH.
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        delta, skip = _delta_tile(
            H,
            W,
            B,
            Y,
            LSE,
            G,
            rows,
            cols,
            N,
            V,
            D,
            filter_eps,
            HAS_BIAS,
            PRECISION,
            DOT_IN_F32,
            BLOCK_N,
            BLOCK_V,
            BLOCK_D,
        )
        if ~skip:
            # rounded to the inputs' dtype, as the matrix units take it
            delta_in = delta.to(H.dtype.element_ty)
            if DOT_IN_F32:
                delta_in = delta_in.to(tl.float32)
            for d0 in range(0, D, BLOCK_D):
                ds = d0 + tl.arange(0, BLOCK_D)
                d_ok = ds < D
                w = tl.load(
                    W + cols[:, None] * D + ds[None, :],
                    mask=(cols[:, None] < V) & d_ok[None, :],
                    other=0.0,
                )
                if DOT_IN_F32:
                    w = w.to(tl.float32)
                dh = tl.dot(delta_in, w, input_precision=PRECISION)
                where = DH + rows[:, None] * D + ds[None, :]
                ok = row_ok[:, None] & d_ok[None, :]
                tl.store(where, tl.load(where, mask=ok) + dh, mask=ok)


def _backward_weight(
    H,
    W,
    B,
    Y,
    LSE,
    G,
    DW,
    DB,
    SKIPPED,
    N,
    V,
    D,
    filter_eps,
    HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr,
    DOT_IN_F32: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # One program per block of the vocabulary: it alone writes their rows of
    # DW and entries of DB.
    cols = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
    col_ok = cols < V
    db = tl.zeros([BLOCK_V], tl.float32)
    skipped = tl.zeros((), tl.int32)
    for n0 in range(0, N, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        delta, skip = _delta_tile(
            H,
            W,
            B,
            Y,
            LSE,
            G,
            rows,
            cols,
            N,
            V,
            D,
            filter_eps,
            HAS_BIAS,
            PRECISION,
            DOT_IN_F32,
            BLOCK_N,
            BLOCK_V,
            BLOCK_D,
        )
        skipped += skip.to(tl.int32)
        if ~skip:
            db += tl.sum(delta, axis=0)
            delta_in = delta.to(H.dtype.element_ty)
            if DOT_IN_F32:
                delta_in = delta_in.to(tl.float32)
            for d0 in range(0, D, BLOCK_D):
                ds = d0 + tl.arange(0, BLOCK_D)
                d_ok = ds < D
                h = tl.load(
                    H + rows[:, None] * D + ds[None, :],
                    mask=(rows[:, None] < N) & d_ok[None, :],
                    other=0.0,
                )
                if DOT_IN_F32:
                    h = h.to(tl.float32)
                dw = tl.dot(tl.trans(delta_in), h, input_precision=PRECISION)
                where = DW + cols[:, None] * D + ds[None, :]
                ok = col_ok[:, None] & d_ok[None, :]
                tl.store(where, tl.load(where, mask=ok) + dw, mask=ok)
    if HAS_BIAS:
        tl.store(DB + cols, db, mask=col_ok)
    tl.store(SKIPPED + tl.program_id(0), skipped)


# With TRITON_INTERPRET=1 set before triton is imported, these are run by
# Triton's interpreter, on CPU tensors too.
if triton is not None:
    _forward_kernel = triton.jit(_forward)
    _delta_tile = triton.jit(_delta_tile)  # called by the two below
    _backward_hidden_kernel = triton.jit(_backward_hidden)
    _backward_weight_kernel = triton.jit(_backward_weight)
    INTERPRETED = isinstance(_forward_kernel, InterpretedFunction)
else:
    INTERPRETED = False


def _options(dtype: torch.dtype) -> dict:
    """Compile-time options of both kernels for inputs of ``dtype``."""
    return dict(
        # float32 inputs are multiplied in full precision ("ieee"), not
        # TF32, so that the kernel agrees with the chunked loss; half
        # precision is multiplied as is, with float32 accumulation.
        PRECISION="ieee" if dtype == torch.float32 else None,
        # Triton's interpreter multiplies half-precision blocks wrongly
        # (Triton 3.8), so there the blocks are converted to float32 first;
        # the products of half-precision numbers are exact in float32, so
        # the result is the same.
        DOT_IN_F32=INTERPRETED,
        BLOCK_N=BLOCK_N,
        BLOCK_V=BLOCK_V,
        BLOCK_D=BLOCK_D,
    )


class _TritonLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, y, filter_eps):
        n, d = hidden.shape
        v = weight.shape[0]
        lse = torch.empty(n, dtype=torch.float32, device=hidden.device)
        target = torch.empty_like(lse)
        _forward_kernel[(triton.cdiv(n, BLOCK_N),)](
            hidden,
            weight,
            bias if bias is not None else weight,
            y,
            lse,
            target,
            n,
            v,
            d,
            HAS_BIAS=bias is not None,
            **_options(hidden.dtype),
        )
        ctx.save_for_backward(hidden, weight, bias, y, lse)
        ctx.filter_eps = filter_eps
        ctx.mark_non_differentiable(lse)
        return lse, lse - target

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, _, grad_rows):
        hidden, weight, bias, y, lse = ctx.saved_tensors
        n, d = hidden.shape
        v = weight.shape[0]
        dev = hidden.device
        dh = torch.zeros(n, d, dtype=torch.float32, device=dev)
        dw = torch.zeros(v, d, dtype=torch.float32, device=dev)
        db = torch.zeros(v, dtype=torch.float32, device=dev)
        v_blocks = triton.cdiv(v, BLOCK_V)
        skipped = torch.zeros(v_blocks, dtype=torch.int32, device=dev)
        args = (
            hidden,
            weight,
            bias if bias is not None else weight,
            y,
            lse,
            grad_rows.float().contiguous(),
        )
        options = dict(HAS_BIAS=bias is not None, **_options(hidden.dtype))
        eps = float(ctx.filter_eps)
        _backward_hidden_kernel[(triton.cdiv(n, BLOCK_N),)](
            *args, dh, n, v, d, eps, **options
        )
        _backward_weight_kernel[(v_blocks,)](
            *args, dw, db, skipped, n, v, d, eps, **options
        )
        _last_backward["skipped_tiles"] = skipped.sum()
        _last_backward["tiles"] = triton.cdiv(n, BLOCK_N) * v_blocks
        return (
            dh.to(hidden.dtype),
            dw.to(weight.dtype),
            None if bias is None else db.to(bias.dtype),
            None,
            None,
        )


#: How many tiles the last backward pass skipped, of how many (for tests
#: and the chapter: ``skipped_tiles`` is a device tensor).
_last_backward: dict = {}


def triton_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    filter_eps: float | None = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-sum-exps and losses of the rows of ``hidden @ weight.T + bias``.

    ``hidden`` ``(N, D)``, ``weight`` ``(V, D)``, ``bias`` ``(V,)`` or None,
    all of one dtype on one device; ``target`` ``(N,)`` long in
    ``[0, V-1]``, already checked. Returns the float32 log-sum-exp of every
    row (for the caller's checks; not differentiable) and the float32 row
    losses, differentiable with respect to ``hidden``, ``weight`` and
    ``bias`` through the fused backward kernel. ``filter_eps`` is the
    largest probability of a tile the backward pass may skip (see above;
    None skips none). The other inputs are validated by
    :func:`xentlib.scale.linear_cross_entropy`, which calls this with
    ``method="triton"``.
    """
    if triton is None:
        raise ValueError(
            "method='triton' needs the triton package (it comes with"
            " PyTorch's CUDA builds)"
        )
    if hidden.device.type != "cuda" and not INTERPRETED:
        raise ValueError(
            "method='triton' needs a CUDA device, or TRITON_INTERPRET=1 set"
            " before triton is imported, to run Triton's interpreter on the"
            f" CPU (slow: small sizes only); got tensors on {hidden.device}"
        )
    if hidden.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(
            "method='triton' computes in float32: hidden must be float32,"
            f" bfloat16 or float16; got {hidden.dtype}"
        )
    if filter_eps is None:
        filter_eps = -1.0  # no probability is at most -1: skip nothing
    elif not 0.0 <= filter_eps < 1.0:
        raise ValueError(f"filter_eps must be in [0, 1); got {filter_eps!r}")
    return _TritonLinearCrossEntropy.apply(
        hidden.contiguous(),
        weight.contiguous(),
        None if bias is None else bias.contiguous(),
        target.contiguous(),
        filter_eps,
    )

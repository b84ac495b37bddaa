"""Cross-entropy at scale: the chunked and the vocabulary-parallel losses."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import xentlib
from xentlib.scale import (
    linear_cross_entropy,
    vocab_parallel_cross_entropy,
    vocab_parallel_linear_cross_entropy,
    vocab_slices,
)


def _problem(n=37, d=16, v=50, dtype=torch.float64, seed=0, ignore=(3,)):
    g = torch.Generator().manual_seed(seed)
    h = (
        torch.randn(n, d, generator=g, dtype=torch.float64)
        .to(dtype)
        .requires_grad_()
    )
    w = (
        torch.randn(v, d, generator=g, dtype=torch.float64)
        .to(dtype)
        .requires_grad_()
    )
    b = (
        torch.randn(v, generator=g, dtype=torch.float64)
        .to(dtype)
        .requires_grad_()
    )
    y = torch.randint(0, v, (n,), generator=g)
    for i in ignore:
        y[i] = -100
    return h, w, b, y


def _naive(h, w, b, y, reduction="mean"):
    return F.cross_entropy(h @ w.T + b, y, reduction=reduction)


def _loss_and_grads(fn, h, w, b, y, reduction, upstream=None):
    loss = fn(h, w, b, y, reduction=reduction)
    g = upstream if upstream is not None else torch.ones_like(loss)
    return (loss, *torch.autograd.grad(loss, (h, w, b), g))


def _chunked(method, chunk_size):
    def fn(h, w, b, y, **kwargs):
        return linear_cross_entropy(
            h, w, y, b, **kwargs, chunk_size=chunk_size, method=method
        )

    return fn


# Every method and reduction it supports: gradient_in_forward needs a
# reduced loss, which "auto" then picks.
CASES = [
    (method, reduction)
    for method in ("auto", "gradient_in_forward", "recompute")
    for reduction in ("mean", "sum", "none")
    if not (method == "gradient_in_forward" and reduction == "none")
]


@pytest.mark.parametrize("method, reduction", CASES)
@pytest.mark.parametrize("chunk_size", [1, 8, 37, 1000])
def test_linear_cross_entropy_equals_the_naive_loss_and_gradients_in_float64(
    method, reduction, chunk_size
):
    h, w, b, y = _problem()
    upstream = (
        torch.randn(37, dtype=torch.float64)
        if reduction == "none"
        else torch.tensor(0.7, dtype=torch.float64)
    )
    fn = _chunked(method, chunk_size)
    ours = _loss_and_grads(fn, h, w, b, y, reduction, upstream)
    ref = _loss_and_grads(_naive, h, w, b, y, reduction, upstream)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


# Stated tolerances: float32 agrees with the float64 truth to 1e-5 relative;
# in bfloat16 both the naive and the chunked computation carry bfloat16
# rounding (8 bits of mantissa), so each is compared with the float64 truth,
# and the chunked one must be within 2e-2 of the largest gradient entry.
@pytest.mark.parametrize("method", ["gradient_in_forward", "recompute"])
@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)]
)
def test_linear_cross_entropy_matches_the_naive_computation_in_low_precision(
    method, dtype, rtol
):
    h, w, b, y = _problem(n=300, d=64, v=500, dtype=dtype)
    truth = _loss_and_grads(
        _naive,
        *[t.detach().double().requires_grad_() for t in (h, w, b)],
        y,
        "mean",
    )
    ours = _loss_and_grads(_chunked(method, 64), h, w, b, y, "mean")
    for a, t in zip(ours, truth):
        assert a.dtype == dtype
        scale = t.abs().max().item()
        assert (a.double() - t).abs().max().item() / scale <= rtol


def _weight_gradient_summed_in_bfloat16(h, w, y, chunk_size):
    """The weight gradient as each chunk's bfloat16 product is added to a
    bfloat16 sum (xentlib's accumulation before float32)."""
    grad = torch.zeros_like(w)
    n = h.shape[0]
    for start in range(0, n, chunk_size):
        hc, yc = h[start : start + chunk_size], y[start : start + chunk_size]
        p = torch.softmax((hc @ w.T).float(), 1)
        p[torch.arange(len(yc)), yc] -= 1
        grad.addmm_((p / n).to(w.dtype).T, hc)
    return grad


@pytest.mark.parametrize("method", ["gradient_in_forward", "recompute"])
def test_bfloat16_weight_gradient_is_accumulated_in_float32(method):
    # Many chunks, so that rounding the running sum to bfloat16 each time
    # would add up.
    h, w, _, y = _problem(
        n=2048, d=32, v=64, dtype=torch.bfloat16, seed=4, ignore=()
    )
    hd, wd = h.detach(), w.detach()
    w64 = wd.double().requires_grad_()
    F.cross_entropy(hd.double() @ w64.T, y).backward()
    w1 = wd.clone().requires_grad_()
    linear_cross_entropy(hd, w1, y, chunk_size=16, method=method).backward()
    ours = w1.grad
    old = _weight_gradient_summed_in_bfloat16(hd, wd, y, 16)
    err_ours = (ours.double() - w64.grad).abs().max().item()
    err_old = (old.double() - w64.grad).abs().max().item()
    scale = w64.grad.abs().max().item()
    assert ours.dtype == torch.bfloat16
    # One bfloat16 rounding of the result: at most half an ulp, 2^-9.
    assert err_ours <= 2**-8 * scale
    assert err_ours < err_old / 2


@pytest.mark.parametrize("method", ["gradient_in_forward", "recompute"])
def test_linear_cross_entropy_passes_gradcheck(method):
    h, w, b, y = _problem(n=9, d=4, v=7, ignore=(2,))
    assert torch.autograd.gradcheck(
        lambda h, w, b: linear_cross_entropy(
            h, w, y, b, chunk_size=4, method=method
        ),
        (h, w, b),
    )
    assert torch.autograd.gradcheck(
        lambda h, w: linear_cross_entropy(
            h, w, y, reduction="sum", chunk_size=2, method=method
        ),
        (h, w),
    )


def test_recompute_passes_gradcheck_with_unreduced_rows():
    h, w, b, y = _problem(n=9, d=4, v=7, ignore=(2,))
    assert torch.autograd.gradcheck(
        lambda h, w: linear_cross_entropy(
            h, w, y, reduction="none", chunk_size=2, method="recompute"
        ),
        (h, w),
    )


def test_gradient_in_forward_works_when_the_loss_is_not_the_last_operation():
    h, w, b, y = _problem()
    extra = (h**2).mean()
    ours = 0.25 * linear_cross_entropy(h, w, y, b) + extra
    g_ours = torch.autograd.grad(ours, (h, w, b), retain_graph=True)
    # a second backward pass through the same graph gives the same gradients
    g_again = torch.autograd.grad(ours, (h, w, b))
    ref = 0.25 * _naive(h, w, b, y) + (h**2).mean()
    g_ref = torch.autograd.grad(ref, (h, w, b))
    for a, a2, r in zip(g_ours, g_again, g_ref):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(a2, r, rtol=1e-12, atol=1e-12)


def test_gradient_in_forward_computes_no_gradient_without_autograd():
    h, w, b, y = _problem()
    with torch.no_grad():
        loss = linear_cross_entropy(h, w, y, b)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, _naive(h, w, b, y).detach())


def test_gradient_in_forward_needs_a_reduced_loss():
    h, w, _, y = _problem()
    with pytest.raises(ValueError, match="needs a reduced loss"):
        linear_cross_entropy(
            h, w, y, reduction="none", method="gradient_in_forward"
        )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 20),
    v=st.integers(1, 12),
    chunk=st.integers(1, 25),
    seed=st.integers(0, 10_000),
    method=st.sampled_from(["gradient_in_forward", "recompute"]),
)
def test_linear_cross_entropy_agrees_with_cross_entropy_for_any_chunking(
    n, v, chunk, seed, method
):
    g = torch.Generator().manual_seed(seed)
    h, w = (
        torch.randn(n, 3, generator=g, dtype=torch.float64),
        torch.randn(v, 3, generator=g, dtype=torch.float64),
    )
    y = torch.randint(0, v, (n,), generator=g)
    torch.testing.assert_close(
        linear_cross_entropy(h, w, y, chunk_size=chunk, method=method),
        xentlib.cross_entropy(h @ w.T, y),
        rtol=1e-12,
        atol=1e-12,
    )


def test_linear_cross_entropy_keeps_the_batch_shape_of_hidden():
    h, w = (
        torch.randn(2, 5, 8, dtype=torch.float64),
        torch.randn(11, 8, dtype=torch.float64),
    )
    y = torch.randint(0, 11, (2, 5))
    rows = linear_cross_entropy(h, w, y, reduction="none", chunk_size=3)
    assert rows.shape == (2, 5)
    torch.testing.assert_close(
        rows, F.cross_entropy((h @ w.T).transpose(1, 2), y, reduction="none")
    )


@pytest.mark.parametrize("method", ["gradient_in_forward", "recompute"])
def test_linear_cross_entropy_is_finite_at_extreme_logits(method):
    h = torch.tensor([[1e3, -1e3], [-1e3, 1e3]], requires_grad=True)
    w = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    y = torch.tensor([1, 1])
    loss = linear_cross_entropy(h, w, y, method=method)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h.grad).all()
    # the first row is wrong by a logit gap of 2e4
    assert loss.item() == pytest.approx(0.5 * 2e4, rel=1e-6)


@pytest.mark.parametrize("method", ["gradient_in_forward", "recompute"])
def test_an_all_ignored_batch_gives_nan_like_pytorch(method):
    h, w = torch.randn(3, 4), torch.randn(5, 4)
    y = torch.full((3,), -100)
    loss = linear_cross_entropy(h, w, y, method=method)
    assert torch.isnan(loss) and torch.isnan(F.cross_entropy(h @ w.T, y))
    assert (
        linear_cross_entropy(h, w, y, reduction="sum", method=method).item()
        == 0.0
    )


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operation produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("method", ["gradient_in_forward", "recompute"])
def test_linear_cross_entropy_never_forms_the_full_logits(method):
    n, d, v, chunk = 512, 8, 1000, 64
    h, w = (
        torch.randn(n, d, requires_grad=True),
        torch.randn(v, d, requires_grad=True),
    )
    y = torch.randint(0, v, (n,))
    with _LargestTensor() as naive:
        F.cross_entropy(h @ w.T, y).backward()
    with _LargestTensor() as chunked:
        linear_cross_entropy(
            h, w, y, chunk_size=chunk, method=method
        ).backward()
    assert naive.largest == n * v
    assert chunked.largest == max(chunk * v, v * d, n * d)


def test_linear_cross_entropy_rejects_bad_input():
    h, w, y = torch.randn(4, 3), torch.randn(6, 3), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"weight must have shape \(V, 3\)"):
        linear_cross_entropy(h, torch.randn(6, 4), y)
    with pytest.raises(
        ValueError, match=r"target must hold class indices in \[0, 5\]"
    ):
        linear_cross_entropy(h, w, torch.tensor([0, 1, 2, 6]))
    with pytest.raises(ValueError, match=r"target must have shape \(4,\)"):
        linear_cross_entropy(h, w, y[:3])
    with pytest.raises(ValueError, match="target must be an integer tensor"):
        linear_cross_entropy(h, w, y.float())
    with pytest.raises(
        ValueError, match="chunk_size must be a positive integer"
    ):
        linear_cross_entropy(h, w, y, chunk_size=0)
    with pytest.raises(ValueError, match="weight must have hidden's dtype"):
        linear_cross_entropy(h, w.double(), y)
    with pytest.raises(
        ValueError, match=r"bias must be a tensor of shape \(6,\)"
    ):
        linear_cross_entropy(h, w, y, torch.randn(5))
    with pytest.raises(ValueError, match="reduction must be one of"):
        linear_cross_entropy(h, w, y, reduction="avg")
    with pytest.raises(ValueError, match="method must be one of"):
        linear_cross_entropy(h, w, y, method="fast")
    for method in ("gradient_in_forward", "recompute"):
        bad = h.clone()
        bad[1, 2] = float("nan")
        with pytest.raises(ValueError, match="hidden contains NaN or inf"):
            linear_cross_entropy(bad, w, y, method=method)
        bad = w.clone()
        bad[4, 0] = float("inf")
        with pytest.raises(ValueError, match="weight contains NaN or inf"):
            linear_cross_entropy(h, bad, y, method=method)


def test_vocab_slices_cover_the_vocabulary_evenly():
    assert vocab_slices(10, 3) == [(0, 4), (4, 7), (7, 10)]
    with pytest.raises(ValueError, match="must be at least world_size"):
        vocab_slices(2, 3)


def test_vocab_parallel_loss_needs_a_process_group():
    with pytest.raises(
        ValueError, match="initialised torch.distributed process group"
    ):
        vocab_parallel_cross_entropy(
            torch.randn(2, 3), torch.tensor([0, 1]), 0
        )


def _vocab_parallel_worker(rank, world_size, init_file, out_dir):
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world_size,
    )
    try:
        h, w, b, y = _problem(n=23, d=6, v=41, ignore=(5, 11))
        start, stop = vocab_slices(w.shape[0], world_size)[rank]
        results = {}
        for reduction in ("mean", "sum", "none"):
            hidden = h.detach().clone().requires_grad_()
            w_slice = w.detach()[start:stop].clone().requires_grad_()
            loss = vocab_parallel_linear_cross_entropy(
                hidden, w_slice, y, start, reduction=reduction
            )
            loss.backward(
                torch.linspace(
                    0.5, 1.5, loss.numel(), dtype=loss.dtype
                ).reshape(loss.shape)
            )
            results[reduction] = (
                loss.detach(),
                hidden.grad,
                w_slice.grad,
                (start, stop),
            )
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_vocab_parallel_loss_over_two_processes_equals_one_process_loss(
    tmp_path,
):
    world_size = 2
    mp.spawn(
        _vocab_parallel_worker,
        args=(world_size, str(tmp_path / "init"), str(tmp_path)),
        nprocs=world_size,
    )
    h, w, _, y = _problem(n=23, d=6, v=41, ignore=(5, 11))
    for reduction in ("mean", "sum", "none"):
        hidden, weight = (
            h.detach().clone().requires_grad_(),
            w.detach().clone().requires_grad_(),
        )
        ref = xentlib.cross_entropy(hidden @ weight.T, y, reduction=reduction)
        ref.backward(
            torch.linspace(0.5, 1.5, ref.numel(), dtype=ref.dtype).reshape(
                ref.shape
            )
        )
        for rank in range(world_size):
            loss, grad_h, grad_w, (start, stop) = torch.load(
                tmp_path / f"rank{rank}.pt"
            )[reduction]
            torch.testing.assert_close(
                loss, ref.detach(), rtol=1e-12, atol=1e-12
            )
            torch.testing.assert_close(
                grad_h, hidden.grad, rtol=1e-12, atol=1e-12
            )
            torch.testing.assert_close(
                grad_w, weight.grad[start:stop], rtol=1e-12, atol=1e-12
            )


def test_vocab_parallel_loss_rejects_a_target_outside_the_vocabulary(
    tmp_path,
):
    dist.init_process_group(
        "gloo",
        init_method=f"file://{tmp_path / 'init'}",
        rank=0,
        world_size=1,
    )
    try:
        logits = torch.randn(3, 41)
        with pytest.raises(
            ValueError,
            match=r"target must hold class indices in \[0, 40\].*got 99",
        ):
            vocab_parallel_cross_entropy(logits, torch.tensor([0, 99, 2]), 0)
        bad = logits.clone()
        bad[1, 5] = float("nan")
        with pytest.raises(ValueError, match="logits contain NaN"):
            vocab_parallel_cross_entropy(bad, torch.tensor([0, 1, 2]), 0)
        # ignored rows need not be in the vocabulary
        loss = vocab_parallel_cross_entropy(
            logits, torch.tensor([0, -100, 2]), 0, reduction="none"
        )
        assert loss[1] == 0
    finally:
        dist.destroy_process_group()


def test_vocab_parallel_agreement_over_three_processes_is_float64_exact():
    from xentlib.scale import vocab_parallel_agreement

    diffs = vocab_parallel_agreement(
        world_size=3, tokens=10, hidden=4, vocab=50
    )
    assert set(diffs) == {"loss", "grad_hidden", "grad_weight"}
    assert max(diffs.values()) < 1e-12

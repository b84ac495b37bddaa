"""Cross-entropy at scale: the chunked linear cross-entropy and the vocabulary-parallel loss."""

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


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk_size", [1, 8, 37, 1000])
def test_linear_cross_entropy_equals_the_naive_loss_and_gradients_in_float64(
    reduction, chunk_size
):
    h, w, b, y = _problem()
    upstream = (
        torch.randn(37, dtype=torch.float64) if reduction == "none" else None
    )
    ours = _loss_and_grads(
        lambda h, w, b, y, **k: linear_cross_entropy(
            h, w, y, b, **k, chunk_size=chunk_size
        ),
        h,
        w,
        b,
        y,
        reduction,
        upstream,
    )
    ref = _loss_and_grads(_naive, h, w, b, y, reduction, upstream)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


# Stated tolerances: float32 agrees with the naive float32 computation to 1e-5 relative; in bfloat16 both the naive
# and the chunked computation carry bfloat16 rounding (8 bits of mantissa), so each is compared with the float64
# truth, and the chunked one must be within 2e-2 of the largest gradient entry, like the naive one.
@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)]
)
def test_linear_cross_entropy_matches_the_naive_computation_in_low_precision(
    dtype, rtol
):
    h, w, b, y = _problem(n=300, d=64, v=500, dtype=dtype)
    truth = _loss_and_grads(
        _naive,
        *[t.detach().double().requires_grad_() for t in (h, w, b)],
        y,
        "mean",
    )
    naive = _loss_and_grads(_naive, h, w, b, y, "mean")
    ours = _loss_and_grads(
        lambda h, w, b, y, **k: linear_cross_entropy(
            h, w, y, b, **k, chunk_size=64
        ),
        h,
        w,
        b,
        y,
        "mean",
    )
    for a, n, t in zip(ours, naive, truth):
        assert a.dtype == dtype
        scale = t.abs().max().item()
        err_ours = (a.double() - t).abs().max().item() / scale
        err_naive = (n.double() - t).abs().max().item() / scale
        assert err_ours <= rtol, (err_ours, err_naive)


def test_linear_cross_entropy_passes_gradcheck():
    h, w, b, y = _problem(n=9, d=4, v=7, ignore=(2,))
    assert torch.autograd.gradcheck(
        lambda h, w, b: linear_cross_entropy(h, w, y, b, chunk_size=4),
        (h, w, b),
    )
    assert torch.autograd.gradcheck(
        lambda h, w: linear_cross_entropy(
            h, w, y, reduction="none", chunk_size=2
        ),
        (h, w),
    )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 20),
    v=st.integers(1, 12),
    chunk=st.integers(1, 25),
    seed=st.integers(0, 10_000),
)
def test_linear_cross_entropy_agrees_with_xentlib_cross_entropy_for_any_chunking(
    n, v, chunk, seed
):
    g = torch.Generator().manual_seed(seed)
    h, w = (
        torch.randn(n, 3, generator=g, dtype=torch.float64),
        torch.randn(v, 3, generator=g, dtype=torch.float64),
    )
    y = torch.randint(0, v, (n,), generator=g)
    torch.testing.assert_close(
        linear_cross_entropy(h, w, y, chunk_size=chunk),
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


def test_linear_cross_entropy_is_finite_at_extreme_logits():
    h = torch.tensor([[1e3, -1e3], [-1e3, 1e3]], requires_grad=True)
    w = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    y = torch.tensor([1, 1])
    loss = linear_cross_entropy(h, w, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h.grad).all()
    assert loss.item() == pytest.approx(
        0.5 * 2e4, rel=1e-6
    )  # the first row is wrong by a logit gap of 2e4


def test_an_all_ignored_batch_gives_nan_like_pytorch():
    h, w = torch.randn(3, 4), torch.randn(5, 4)
    y = torch.full((3,), -100)
    assert torch.isnan(linear_cross_entropy(h, w, y)) and torch.isnan(
        F.cross_entropy(h @ w.T, y)
    )
    assert linear_cross_entropy(h, w, y, reduction="sum").item() == 0.0


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


def test_linear_cross_entropy_never_forms_the_full_logits():
    n, d, v, chunk = 512, 8, 1000, 64
    h, w = (
        torch.randn(n, d, requires_grad=True),
        torch.randn(v, d, requires_grad=True),
    )
    y = torch.randint(0, v, (n,))
    with _LargestTensor() as naive:
        F.cross_entropy(h @ w.T, y).backward()
    with _LargestTensor() as chunked:
        linear_cross_entropy(h, w, y, chunk_size=chunk).backward()
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


def test_vocab_parallel_cross_entropy_over_two_processes_equals_the_single_process_loss(
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


def test_the_benchmark_script_runs_at_a_tiny_size(root, capsys):
    import runpy

    script = runpy.run_path(
        str(root / "benchmarks" / "linear_cross_entropy.py")
    )
    assert (
        script["main"](["--smoke", "--device", "cpu", "--repeats", "1"]) == 0
    )
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[3:]}
    assert set(rows) == {"naive", "xentlib"}
    assert rows["naive"].split()[2] == "1.00x"
    assert "failed" not in out


def test_benchmark_measures_one_method_in_process():
    from xentlib.benchmark import measure

    m = measure(
        "xentlib", tokens=32, hidden=8, vocab=100, repeats=2, chunk_size=8
    )
    assert m.error is None and m.seconds > 0 and m.peak_bytes > 0
    with pytest.raises(ValueError, match="dtype must be one of"):
        measure("naive", tokens=4, hidden=4, vocab=4, dtype="int8")


def test_vocab_parallel_agreement_reports_float64_level_differences_over_three_processes():
    from xentlib.scale import vocab_parallel_agreement

    diffs = vocab_parallel_agreement(
        world_size=3, tokens=10, hidden=4, vocab=50
    )
    assert set(diffs) == {"loss", "grad_hidden", "grad_weight"}
    assert max(diffs.values()) < 1e-12

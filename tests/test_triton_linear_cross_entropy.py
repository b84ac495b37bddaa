"""The fused Triton kernel, run by Triton's interpreter on the CPU.

Small shapes that do not divide the kernel's blocks, against the float64
reference: loss and gradients with respect to the hidden states, the weight
and the bias, with ignore_index and every reduction. On a CUDA machine the
same tests run the compiled kernel.
"""

import os

import pytest
import torch
import torch.nn.functional as F

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# On the CPU the kernels run in Triton's interpreter, which must be chosen
# before triton is first imported (and stay chosen while they run); the
# variable is removed after this module's tests, so that processes started
# later (a chapter, a benchmark) do not inherit it.
_SET_HERE = DEVICE == "cpu" and "TRITON_INTERPRET" not in os.environ
if _SET_HERE:
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")

from xentlib.scale import linear_cross_entropy  # noqa: E402
from xentlib.triton_linear_cross_entropy import (  # noqa: E402
    INTERPRETED,
    _last_backward,
    triton_linear_cross_entropy,
)

if DEVICE == "cpu" and not INTERPRETED:
    pytest.skip(
        "triton was imported before TRITON_INTERPRET=1 could be set",
        allow_module_level=True,
    )


@pytest.fixture(scope="module", autouse=True)
def _interpreter_variable():
    yield
    if _SET_HERE:
        os.environ.pop("TRITON_INTERPRET", None)


def _problem(n=70, d=40, v=150, dtype=torch.float32, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    h = scale * torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(v, d, generator=g, dtype=torch.float64) / d**0.5
    b = torch.randn(v, generator=g, dtype=torch.float64)
    y = torch.randint(0, v, (n,), generator=g)
    y[[3, 17]] = -100
    return [t.to(DEVICE) for t in (h, w, b, y)]


def _loss_and_grads(h, w, b, y, dtype, reduction, upstream, **kwargs):
    h, w, b = (t.to(dtype).requires_grad_() for t in (h, w, b))
    if kwargs.get("method") == "reference":
        loss = F.cross_entropy(h @ w.T + b, y, reduction=reduction)
    else:
        loss = linear_cross_entropy(h, w, y, b, reduction=reduction, **kwargs)
    grads = torch.autograd.grad(loss, (h, w, b), upstream.to(loss.dtype))
    return [t.double() for t in (loss, *grads)]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_triton_kernel_matches_float64_in_float32(reduction):
    h, w, b, y = _problem()
    upstream = torch.linspace(
        0.5, 1.5, 70 if reduction == "none" else 1, dtype=torch.float64
    ).to(DEVICE)
    upstream = upstream if reduction == "none" else upstream[0]
    truth = _loss_and_grads(
        h, w, b, y, torch.float64, reduction, upstream, method="reference"
    )
    ours = _loss_and_grads(
        h, w, b, y, torch.float32, reduction, upstream, method="triton"
    )
    for a, t in zip(ours, truth):
        torch.testing.assert_close(a, t, rtol=1e-5, atol=1e-5)


def test_triton_kernel_in_bfloat16_is_as_accurate_as_the_naive_loss():
    h, w, b, y = _problem(seed=1)
    one = torch.tensor(1.0, dtype=torch.float64, device=DEVICE)
    truth = _loss_and_grads(
        h, w, b, y, torch.float64, "mean", one, method="reference"
    )
    naive = _loss_and_grads(
        h, w, b, y, torch.bfloat16, "mean", one, method="reference"
    )
    ours = _loss_and_grads(
        h, w, b, y, torch.bfloat16, "mean", one, method="triton"
    )
    for a, n, t in zip(ours, naive, truth):
        scale = t.abs().max().item()
        err = (a - t).abs().max().item() / scale
        err_naive = (n - t).abs().max().item() / scale
        assert err <= max(2e-2, 2 * err_naive)


def _peaked_problem(dtype, margin):
    # A confident model: the first ten tokens of the vocabulary lead every
    # row by about ``margin`` nats, so that the tiles of the other tokens
    # hold tiny probabilities and the backward pass can skip them.
    h, w, b, y = _problem(n=40, d=16, v=300, seed=2)
    b[:10] += margin
    y = (h @ w.T + b).argmax(1)
    return [t.to(dtype) if t.is_floating_point() else t for t in (h, w, b, y)]


def _grads(h, w, b, y, filter_eps):
    h, w, b = (t.detach().clone().requires_grad_() for t in (h, w, b))
    _, rows = triton_linear_cross_entropy(h, w, y, b, filter_eps=filter_eps)
    grads = torch.autograd.grad(rows.mean(), (h, w, b))
    return grads, int(_last_backward["skipped_tiles"])


def test_the_default_filter_skips_only_tiles_that_contribute_exactly_zero():
    # exp(-200) underflows to zero in float32
    h, w, b, y = _peaked_problem(torch.float32, margin=200.0)
    unfiltered, skipped_none = _grads(h, w, b, y, None)
    filtered, skipped = _grads(h, w, b, y, 0.0)
    assert skipped_none == 0 and skipped > 0
    for a, u in zip(filtered, unfiltered):
        assert torch.equal(a, u)


def test_cut_cross_entropy_filter_changes_gradients_by_at_most_its_bound():
    # exp(-12) = 6e-6 is below the filter's 2^-12, but not zero
    h, w, b, y = _peaked_problem(torch.bfloat16, margin=12.0)
    eps = 2**-12
    unfiltered, _ = _grads(h, w, b, y, None)
    filtered, skipped = _grads(h, w, b, y, eps)
    assert skipped > 0
    # A skipped tile's share of a gradient entry is sum_i g_i p_iv x_i with
    # p_iv <= eps and g_i = 1/N, so it is at most eps * max |x| (x the other
    # input: the weight for dh, the hidden states for dW, 1 for the bias),
    # times the number of tiles that can be skipped for that entry.
    n_tiles = {0: -(-300 // 64), 1: 1, 2: 1}
    scale = {0: w.abs().max(), 1: h.abs().max(), 2: 1.0}
    for k, (a, u) in enumerate(zip(filtered, unfiltered)):
        bound = eps * float(scale[k]) * n_tiles[k] * 64
        assert (a.double() - u.double()).abs().max().item() <= bound
    # The largest entries keep bfloat16 resolution; the smallest do not:
    # the bias of a token whose tiles were all skipped is exactly zero.
    dh_f, dh_u = filtered[0].double(), unfiltered[0].double()
    assert (dh_f - dh_u).abs().max() <= 2**-8 * dh_u.abs().max()
    db_f, db_u = filtered[2], unfiltered[2]
    assert (db_f[10:] == 0).any() and (db_u[10:] != 0).all()


def test_triton_method_rejects_float64():
    h, w, b, y = _problem()
    with pytest.raises(ValueError, match="computes in float32"):
        linear_cross_entropy(h, w, y, method="triton")


def test_the_backward_kernels_are_deterministic():
    # no atomic additions: two runs give the same bits
    h, w, b, y = _problem(seed=4)
    first, _ = _grads(h.float(), w.float(), b.float(), y, 0.0)
    second, _ = _grads(h.float(), w.float(), b.float(), y, 0.0)
    for a, c in zip(first, second):
        assert torch.equal(a, c)

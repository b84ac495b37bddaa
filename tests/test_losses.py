"""xentlib.losses against PyTorch: gradients, extremes and bad input."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

import xentlib

SHAPES = [
    (5,),
    (6, 5),
    (4, 5, 3),
    (2, 5, 3, 2),
]  # (C,), (N, C), (N, C, d1), (N, C, d1, d2)


def make_case(shape, kind, seed=0, dtype=torch.float64, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(
        dtype
    )
    c = shape[0] if len(shape) == 1 else shape[1]
    if kind == "index":
        row_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
        target = torch.randint(0, c, row_shape, generator=g)
        if target.dim() > 0 and target.numel() > 1:
            target.view(-1)[0] = -100  # one ignored row
    else:
        target = torch.softmax(
            torch.randn(shape, generator=g, dtype=torch.float64),
            dim=0 if len(shape) == 1 else 1,
        )
    weight = torch.rand(c, generator=g, dtype=torch.float64) + 0.1
    return logits, target, weight


OPTIONS = list(
    itertools.product(["mean", "sum", "none"], [0.0, 0.3], [False, True])
)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("reduction, smoothing, weighted", OPTIONS)
def test_cross_entropy_matches_pytorch_for_every_option(
    shape, kind, reduction, smoothing, weighted
):
    logits, target, weight = make_case(shape, kind)
    if kind == "index" and len(shape) == 1:
        target = torch.tensor(2)
    kwargs = dict(
        weight=weight if weighted else None,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    x1 = logits.clone().requires_grad_()
    x2 = logits.clone().requires_grad_()
    ours = xentlib.cross_entropy(x1, target, **kwargs)
    ref = F.cross_entropy(x2, target, **kwargs)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    seed = torch.randn(
        ref.shape,
        generator=torch.Generator().manual_seed(1),
        dtype=torch.float64,
    )
    (g1,) = torch.autograd.grad((ours * seed).sum(), x1)
    (g2,) = torch.autograd.grad((ref * seed).sum(), x2)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "dtype, tol",
    [(torch.float32, 1e-6), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)],
)
def test_cross_entropy_matches_pytorch_in_lower_precision_and_keeps_the_dtype(
    dtype, tol
):
    logits, target, weight = make_case((64, 10), "index", seed=3, dtype=dtype)
    x1, x2 = (
        logits.clone().requires_grad_(),
        logits.clone().float().requires_grad_(),
    )
    ours = xentlib.cross_entropy(
        x1, target, weight=weight.to(dtype), label_smoothing=0.1
    )
    ref = F.cross_entropy(
        x2, target, weight=weight.to(dtype).float(), label_smoothing=0.1
    )
    assert ours.dtype == dtype
    torch.testing.assert_close(ours.float(), ref, rtol=tol, atol=tol)
    (g1,) = torch.autograd.grad(ours, x1)
    (g2,) = torch.autograd.grad(ref, x2)
    assert g1.dtype == dtype
    torch.testing.assert_close(g1.float(), g2, rtol=tol, atol=tol)


def test_cross_entropy_custom_backward_passes_gradcheck_and_gradgradcheck():
    for kind, smoothing, weighted in itertools.product(
        ["index", "probs"], [0.0, 0.2], [False, True]
    ):
        logits, target, weight = make_case((4, 5, 3), kind, seed=5)

        def f(x, target=target, w=weight if weighted else None, s=smoothing):
            return xentlib.cross_entropy(
                x, target, weight=w, label_smoothing=s
            )

        x = logits.clone().requires_grad_()
        assert gradcheck(f, (x,), eps=1e-6, atol=1e-8)
        assert gradgradcheck(f, (x,), eps=1e-6, atol=1e-8)


def test_cross_entropy_gradient_for_probability_targets_matches_pytorch():
    logits, target, weight = make_case((6, 4), "probs", seed=6)
    t1, t2 = target.clone().requires_grad_(), target.clone().requires_grad_()
    (g1,) = torch.autograd.grad(
        xentlib.cross_entropy(logits, t1, weight=weight), t1
    )
    (g2,) = torch.autograd.grad(F.cross_entropy(logits, t2, weight=weight), t2)
    torch.testing.assert_close(g1, g2)
    x, t = logits.clone().requires_grad_(), target.clone().requires_grad_()

    # gradcheck's finite differences leave the simplex: renormalise inside.
    def f(a, b):
        return xentlib.cross_entropy(
            a, b / b.sum(1, keepdim=True), reduction="sum"
        )

    assert gradcheck(f, (x, t), eps=1e-6, atol=1e-8)


def test_cross_entropy_backward_is_softmax_minus_target_over_n():
    logits, target, _ = make_case((8, 5), "index", seed=7)
    target = target.clamp_min(0)
    x = logits.clone().requires_grad_()
    (g,) = torch.autograd.grad(xentlib.cross_entropy(x, target), x)
    expected = (torch.softmax(logits, 1) - F.one_hot(target, 5)) / 8
    torch.testing.assert_close(g, expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4])
def test_cross_entropy_is_finite_and_exact_for_huge_float32_logits(scale):
    logits, target, _ = make_case(
        (32, 7), "index", seed=8, dtype=torch.float32, scale=1.0
    )
    logits = logits * scale
    x1, x2 = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = xentlib.cross_entropy(x1, target, label_smoothing=0.1)
    ref = F.cross_entropy(x2, target, label_smoothing=0.1)
    ours.backward()
    ref.backward()
    assert torch.isfinite(ours) and torch.isfinite(x1.grad).all()
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6 * scale)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_cross_entropy_accepts_minus_inf_for_masked_classes():
    logits = torch.tensor(
        [[0.0, 1.0, -math.inf], [2.0, -math.inf, 0.5]], requires_grad=True
    )
    target = torch.tensor([1, 0])
    loss = xentlib.cross_entropy(logits, target)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target))
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 2] == 0


def test_cross_entropy_on_an_empty_batch_behaves_like_pytorch():
    x, y = torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    assert xentlib.cross_entropy(x, y, reduction="sum").item() == 0.0
    assert xentlib.cross_entropy(x, y, reduction="none").shape == (0,)
    assert math.isnan(xentlib.cross_entropy(x, y).item()) and math.isnan(
        F.cross_entropy(x, y).item()
    )


def test_cross_entropy_with_one_class_is_zero():
    assert (
        xentlib.cross_entropy(
            torch.randn(4, 1), torch.zeros(4, dtype=torch.long)
        ).item()
        == 0.0
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=2, max_size=8),
    st.floats(-1e3, 1e3),
    st.integers(0, 7),
)
def test_cross_entropy_is_shift_invariant_in_logits(logits, shift, target):
    x = torch.tensor([logits], dtype=torch.float64)
    y = torch.tensor([target % len(logits)])
    a = xentlib.cross_entropy(x, y)
    b = xentlib.cross_entropy(x + shift, y)
    assert abs(a - b).item() <= 1e-12 * max(1.0, abs(shift))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=2, max_size=8), st.integers(0, 7))
def test_cross_entropy_is_the_negative_log_of_the_softmax_probability(
    logits, target
):
    x = torch.tensor(logits, dtype=torch.float64)
    y = target % len(logits)
    expected = -torch.log_softmax(x, 0)[y]
    assert xentlib.cross_entropy(x, torch.tensor(y)).item() == pytest.approx(
        expected.item(), rel=1e-12, abs=1e-12
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cross_entropy_on_cuda_matches_cpu():
    logits, target, weight = make_case(
        (64, 10, 3), "index", seed=9, dtype=torch.float32
    )
    cpu = xentlib.cross_entropy(
        logits, target, weight=weight.float(), label_smoothing=0.1
    )
    gpu = xentlib.cross_entropy(
        logits.cuda(),
        target.cuda(),
        weight=weight.float().cuda(),
        label_smoothing=0.1,
    )
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)


# -- binary cross-entropy -----------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "weighted, pos_weighted",
    [(False, False), (True, False), (False, True), (True, True)],
)
def test_binary_cross_entropy_matches_pytorch(
    reduction, weighted, pos_weighted
):
    g = torch.Generator().manual_seed(10)
    x = 4 * torch.randn(16, 3, generator=g, dtype=torch.float64)
    y = torch.rand(16, 3, generator=g, dtype=torch.float64)
    y[:5] = y[:5].round()
    kwargs = dict(
        weight=(
            torch.rand(16, 1, generator=g, dtype=torch.float64)
            if weighted
            else None
        ),
        pos_weight=(
            torch.rand(3, generator=g, dtype=torch.float64) * 5
            if pos_weighted
            else None
        ),
        reduction=reduction,
    )
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = xentlib.binary_cross_entropy(x1, y, **kwargs)
    ref = F.binary_cross_entropy_with_logits(x2, y, **kwargs)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    (g1,) = torch.autograd.grad(ours.sum(), x1)
    (g2,) = torch.autograd.grad(ref.sum(), x2)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


def test_binary_cross_entropy_gradient_is_sigmoid_minus_target():
    x = torch.linspace(-8, 8, 17, dtype=torch.float64, requires_grad=True)
    y = (torch.arange(17) % 2).to(torch.float64)
    (g,) = torch.autograd.grad(
        xentlib.binary_cross_entropy(x, y, reduction="sum"), x
    )
    torch.testing.assert_close(g, torch.sigmoid(x).detach() - y)
    assert gradcheck(lambda a: xentlib.binary_cross_entropy(a, y), (x,))


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16]
)
def test_binary_cross_entropy_is_finite_for_huge_logits(dtype):
    x = (
        torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4])
        .to(dtype)
        .requires_grad_()
    )
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]).to(dtype)
    loss = xentlib.binary_cross_entropy(x, y, reduction="none")
    loss.sum().backward()
    assert loss.dtype == dtype
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    torch.testing.assert_close(
        loss.float(),
        torch.tensor([1e4, 0.0, math.log(2), 0.0, 1e4]),
        rtol=1e-2,
        atol=1e-3,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_cross_entropy_is_exact_at_infinite_logits(dtype):
    inf = math.inf
    x = torch.tensor([-inf, inf, -inf, inf, -inf, inf, 3.0], dtype=dtype)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.0], dtype=dtype)
    x.requires_grad_()
    loss = xentlib.binary_cross_entropy(x, y, reduction="none")
    expected = [0.0, 0.0, inf, inf, inf, inf, F.softplus(torch.tensor(3.0))]
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=dtype))
    (grad,) = torch.autograd.grad(loss.sum(), x)
    # sigma(x) - y, finite everywhere
    sig = torch.sigmoid(torch.tensor(3.0, dtype=dtype)).item()
    torch.testing.assert_close(
        grad,
        torch.tensor([0.0, 0.0, -1.0, 1.0, -0.5, 0.5, sig], dtype=dtype),
    )
    exact = [0, 1]
    assert xentlib.binary_cross_entropy(x[exact], y[exact]).item() == 0.0
    assert xentlib.binary_cross_entropy(x, y).item() == inf
    # a zero weight or pos_weight removes the infinite term exactly
    w = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=dtype)
    weighted = xentlib.binary_cross_entropy(x, y, weight=w, reduction="sum")
    torch.testing.assert_close(weighted, loss[-1].detach())
    pw = torch.zeros(7, dtype=dtype)
    no_pos = xentlib.binary_cross_entropy(
        x[[2]], y[[2]], pos_weight=pw[[2]], reduction="sum"
    )
    assert no_pos.item() == 0.0


def test_cross_entropy_rejects_rows_of_all_minus_inf_and_nan_in_ignored_rows():
    x = torch.tensor([[0.0, 1.0], [-math.inf, -math.inf]])
    with pytest.raises(ValueError, match="row whose logits are all -inf"):
        xentlib.cross_entropy(x, torch.tensor([0, 1]))
    x = torch.tensor([[0.0, 1.0], [math.nan, 0.0]])
    with pytest.raises(ValueError, match="input contains NaN"):
        xentlib.cross_entropy(x, torch.tensor([0, -100]))


# -- bad input ----------------------------------------------------------------

X, Y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: xentlib.cross_entropy(X, torch.tensor([0, 1, 3, 1])),
            r"target must hold class indices in \[0, 2\].*got 3",
        ),
        (
            lambda: xentlib.cross_entropy(X, torch.tensor([0, -1, 2, 1])),
            r"target must hold class indices in \[0, 2\].*got -1",
        ),
        (
            lambda: xentlib.cross_entropy(X, torch.tensor([0, 1, 2])),
            r"target of class indices must have shape \(4,\)",
        ),
        (
            lambda: xentlib.cross_entropy(X, torch.rand(4, 2)),
            "target of class probabilities must have the same shape",
        ),
        (
            lambda: xentlib.cross_entropy(X, torch.full((4, 3), 0.5)),
            "target must sum to one along dimension 1",
        ),
        (
            lambda: xentlib.cross_entropy(
                X, torch.tensor([[1.5, -0.5, 0.0]] * 4)
            ),
            r"target must hold probabilities in \[0, 1\]",
        ),
        (
            lambda: xentlib.cross_entropy(X, Y, reduction="avg"),
            "reduction must be one of",
        ),
        (
            lambda: xentlib.cross_entropy(X, Y, weight=torch.ones(4)),
            r"weight must be a tensor of shape \(3,\)",
        ),
        (
            lambda: xentlib.cross_entropy(X, Y, weight=-torch.ones(3)),
            "weight must hold finite, non-negative numbers",
        ),
        (
            lambda: xentlib.cross_entropy(X, Y, label_smoothing=1.5),
            r"label_smoothing must be in \[0, 1\]",
        ),
        (
            lambda: xentlib.cross_entropy(
                torch.tensor([[float("nan"), 0.0, 0.0]]), torch.tensor([0])
            ),
            "input contains NaN",
        ),
        (
            lambda: xentlib.cross_entropy(
                torch.tensor([[math.inf, 0.0, 0.0]]), torch.tensor([0])
            ),
            r"input contains NaN or \+inf",
        ),
        (
            lambda: xentlib.cross_entropy(torch.tensor(1.0), torch.tensor(0)),
            "input must have a class dimension",
        ),
        (
            lambda: xentlib.cross_entropy(
                torch.tensor([[1, 2]]), torch.tensor([0])
            ),
            "input must be a floating-point tensor",
        ),
        (
            lambda: xentlib.cross_entropy(X.numpy(), Y),
            "input must be a torch.Tensor",
        ),
        (
            lambda: xentlib.binary_cross_entropy(X, torch.rand(4, 2)),
            "target must have the same shape as input",
        ),
        (
            lambda: xentlib.binary_cross_entropy(X, torch.full((4, 3), 1.5)),
            r"target must hold values in \[0, 1\]",
        ),
        (
            lambda: xentlib.binary_cross_entropy(
                X, torch.full((4, 3), float("nan"))
            ),
            "target contains NaN",
        ),
        (
            lambda: xentlib.binary_cross_entropy(
                X, torch.rand(4, 3), pos_weight=torch.ones(2)
            ),
            "pos_weight must be broadcastable",
        ),
        (
            lambda: xentlib.binary_cross_entropy(
                X, torch.rand(4, 3), reduction="max"
            ),
            "reduction must be one of",
        ),
        (
            lambda: xentlib.binary_cross_entropy(
                torch.tensor([math.nan, 0.0]), torch.tensor([0.0, 1.0])
            ),
            "input contains NaN",
        ),
        (
            lambda: xentlib.binary_cross_entropy(
                X, torch.rand(4, 3), weight=-torch.ones(3)
            ),
            "weight must hold finite, non-negative numbers",
        ),
        (
            lambda: xentlib.binary_cross_entropy(
                X, torch.rand(4, 3), pos_weight=torch.full((3,), -2.0)
            ),
            "pos_weight must hold finite, non-negative numbers",
        ),
        (
            lambda: xentlib.cross_entropy(
                X, Y, weight=torch.tensor([1.0, math.inf, 1.0])
            ),
            "weight must hold finite, non-negative numbers",
        ),
        (
            lambda: xentlib.cross_entropy(X, Y, ignore_index=1.5),
            "ignore_index must be an integer",
        ),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_ignore_index_rows_are_not_range_checked():
    loss = xentlib.cross_entropy(X, torch.tensor([0, 7, 2, 1]), ignore_index=7)
    torch.testing.assert_close(
        loss, F.cross_entropy(X, torch.tensor([0, 7, 2, 1]), ignore_index=7)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_losses_never_make_the_host_wait_for_the_gpu():
    from xentlib.scale import linear_cross_entropy

    dev = "cuda"
    g = torch.Generator().manual_seed(11)
    x = torch.randn(64, 10, generator=g).to(dev).requires_grad_()
    y = torch.randint(0, 10, (64,), generator=g).to(dev)
    y[3] = -100
    w = torch.rand(10, generator=g).to(dev) + 0.1
    probs = torch.softmax(torch.randn(64, 10, generator=g), 1).to(dev)
    t01 = torch.rand(64, 10, generator=g).to(dev)
    h = torch.randn(64, 16, generator=g).to(dev).requires_grad_()
    emb = torch.randn(100, 16, generator=g).to(dev).requires_grad_()
    yy = torch.randint(0, 100, (64,), generator=g).to(dev)
    half = x.detach().bfloat16().requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for loss in (
            xentlib.cross_entropy(x, y),
            xentlib.cross_entropy(x, y, weight=w, label_smoothing=0.1),
            xentlib.cross_entropy(half, y, reduction="none").sum(),
            xentlib.cross_entropy(x, probs),
            xentlib.binary_cross_entropy(x, t01, weight=w, pos_weight=w),
            linear_cross_entropy(h, emb, yy, chunk_size=16),
            linear_cross_entropy(h, emb, yy, method="recompute"),
        ):
            loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()  # a failed asynchronous check would raise here

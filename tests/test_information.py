"""xentlib.information against scipy, and the identities of chapters 1-2."""

import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xentlib


def dirichlet(shape, k, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = -torch.log(
        torch.rand(*shape, k, generator=g, dtype=dtype)
    )  # Exp(1) -> Dirichlet(1)
    return x / x.sum(-1, keepdim=True)


distributions = st.integers(2, 8).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(0, 1), min_size=k, max_size=k).filter(
            lambda v: sum(v) > 1e-3
        ),
        st.lists(st.floats(1e-6, 1), min_size=k, max_size=k),
    )
)


def normalise(v):
    t = torch.tensor(v, dtype=torch.float64)
    return t / t.sum()


@pytest.mark.parametrize("base", [None, 2, 10])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5)])
def test_entropy_and_kl_match_scipy(shape, base):
    p, q = dirichlet(shape, 6, seed=1), dirichlet(shape, 6, seed=2)
    pn, qn = p.reshape(-1, 6).numpy(), q.reshape(-1, 6).numpy()
    sbase = base if base is not None else math.e
    ref_h = scipy.stats.entropy(pn, base=sbase, axis=-1).reshape(shape)
    ref_kl = scipy.stats.entropy(pn, qn, base=sbase, axis=-1).reshape(shape)
    np.testing.assert_allclose(
        xentlib.entropy(p, base=base).numpy(), ref_h, rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        xentlib.kl_divergence(p, q, base=base).numpy(),
        ref_kl,
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.parametrize("base", [None, 2])
def test_js_divergence_is_the_square_of_scipys_jensenshannon_distance(base):
    p, q = dirichlet((20,), 5, seed=3), dirichlet((20,), 5, seed=4)
    ref = (
        scipy.spatial.distance.jensenshannon(
            p.numpy(), q.numpy(), base=base, axis=-1
        )
        ** 2
    )
    np.testing.assert_allclose(
        xentlib.js_divergence(p, q, base=base).numpy(),
        ref,
        rtol=1e-10,
        atol=1e-14,
    )


def test_zeros_follow_the_0_log_0_convention():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    assert xentlib.entropy(p).item() == pytest.approx(math.log(2), abs=1e-15)
    q = torch.tensor([0.25, 0.75, 0.0], dtype=torch.float64)
    assert math.isfinite(xentlib.kl_divergence(p, q).item())
    h = xentlib.entropy(torch.tensor([1.0, 0.0])).item()
    assert h == 0.0 and math.copysign(1.0, h) == 1.0  # +0.0, not -0.0


def test_kl_is_infinite_where_q_is_zero_but_p_is_not():
    p = torch.tensor([0.5, 0.5], dtype=torch.float64)
    q = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert xentlib.kl_divergence(p, q).item() == math.inf
    assert xentlib.distribution_cross_entropy(p, q).item() == math.inf
    assert xentlib.kl_divergence(q, p).item() == pytest.approx(math.log(2))
    assert math.isfinite(xentlib.js_divergence(p, q).item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_js_divergence_of_underflowing_softmaxes_has_finite_exact_gradients(
    dtype,
):
    # Extreme logits: the softmaxes hold exact zeros (and exact ones).
    z = torch.tensor(
        [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [60.0, -60.0, 0.0]],
        dtype=dtype,
    )
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    p = z1.softmax(-1)
    assert (p == 0).any()
    js = xentlib.js_divergence(p[:-1], p[1:])
    js.sum().backward()
    assert torch.isfinite(js).all() and torch.isfinite(z1.grad).all()
    # The same divergence written from the logits in log space, where
    # nothing underflows to a zero.
    lp = z2.log_softmax(-1)
    lm = torch.logaddexp(lp[:-1], lp[1:]) - math.log(2)
    ref = 0.5 * (
        (lp[:-1].exp() * (lp[:-1] - lm)).sum(-1)
        + (lp[1:].exp() * (lp[1:] - lm)).sum(-1)
    )
    ref.sum().backward()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(js, ref, rtol=tol, atol=tol)
    torch.testing.assert_close(z1.grad, z2.grad, rtol=tol, atol=tol)
    assert js[0].item() == pytest.approx(math.log(2), rel=tol)


def test_js_divergence_passes_gradcheck_inside_the_simplex():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 5, generator=g, dtype=torch.float64)

    def js_of_logits(z):
        p = z.softmax(-1)
        return xentlib.js_divergence(p[:2], p[2:])

    assert torch.autograd.gradcheck(js_of_logits, (z.requires_grad_(),))


def test_the_coin_of_chapter_1():
    p, q = [0.9, 0.1], [0.7, 0.3]
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    hpq = -(0.9 * math.log(0.7) + 0.1 * math.log(0.3))
    assert xentlib.entropy(p).item() == pytest.approx(h, rel=1e-14)
    assert xentlib.distribution_cross_entropy(p, q).item() == pytest.approx(
        hpq, rel=1e-14
    )
    assert xentlib.entropy(p, base=2).item() == pytest.approx(
        h / math.log(2), rel=1e-14
    )
    assert xentlib.surprise(0.001).item() == pytest.approx(
        6.907755278982137, rel=1e-14
    )


def test_lists_are_computed_in_float64_and_tensors_keep_their_dtype():
    assert xentlib.entropy([0.5, 0.5]).dtype == torch.float64
    assert xentlib.entropy(torch.tensor([0.5, 0.5])).dtype == torch.float32
    assert (
        xentlib.entropy(np.array([0.5, 0.5], dtype=np.float64)).dtype
        == torch.float64
    )


def test_broadcasting_one_p_against_many_q():
    p = dirichlet((), 4, seed=5)
    q = dirichlet((10,), 4, seed=6)
    expected = torch.stack([xentlib.kl_divergence(p, qi) for qi in q])
    torch.testing.assert_close(xentlib.kl_divergence(p, q), expected)


@settings(max_examples=200, deadline=None)
@given(distributions)
def test_cross_entropy_decomposes_into_entropy_plus_kl(pq):
    p, q = normalise(pq[0]), normalise(pq[1])
    lhs = xentlib.distribution_cross_entropy(p, q)
    rhs = xentlib.entropy(p) + xentlib.kl_divergence(p, q)
    assert abs(lhs - rhs).item() < 1e-12


@settings(max_examples=200, deadline=None)
@given(distributions)
def test_gibbs_inequality_kl_is_nonnegative_and_zero_at_p_equals_q(pq):
    p, q = normalise(pq[0]), normalise(pq[1])
    assert xentlib.kl_divergence(p, q).item() >= 0.0
    assert xentlib.kl_divergence(p, p).item() == 0.0
    js = xentlib.js_divergence(p, q).item()
    assert 0.0 <= js <= math.log(2) + 1e-15
    assert js == pytest.approx(xentlib.js_divergence(q, p).item(), abs=1e-15)


def test_entropy_is_maximal_for_the_uniform_distribution():
    for k in (2, 3, 10):
        assert xentlib.entropy(
            torch.full((k,), 1.0 / k, dtype=torch.float64)
        ).item() == pytest.approx(math.log(k))
    assert (
        xentlib.entropy(dirichlet((500,), 10, seed=7)) <= math.log(10) + 1e-12
    ).all()


def test_gradients_flow_through_kl_to_q():
    p = dirichlet((), 5, seed=8)
    z = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    loss = xentlib.distribution_cross_entropy(p, torch.softmax(z, -1))
    (g,) = torch.autograd.grad(loss, z)
    torch.testing.assert_close(
        g, torch.softmax(z, -1).detach() - p
    )  # softmax - target


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: xentlib.entropy([0.5, 0.6]), "p must sum to one"),
        (
            lambda: xentlib.entropy([1.2, -0.2]),
            r"p must hold probabilities in \[0, 1\]",
        ),
        (lambda: xentlib.entropy([float("nan"), 1.0]), "p contains NaN"),
        (lambda: xentlib.entropy(0.5), "p must have at least one dimension"),
        (
            lambda: xentlib.kl_divergence([0.5, 0.5], [0.3, 0.3, 0.4]),
            "same number of outcomes",
        ),
        (
            lambda: xentlib.kl_divergence([0.5, 0.5], [0.3, 0.3]),
            "q must sum to one",
        ),
        (
            lambda: xentlib.js_divergence([0.5, 0.5], [0.5, 0.5], base=1),
            "base must be a positive number",
        ),
        (
            lambda: xentlib.entropy([0.5, 0.5], base=-2),
            "base must be a positive number",
        ),
        (
            lambda: xentlib.surprise([1.5]),
            r"p must hold probabilities in \[0, 1\]",
        ),
        (
            lambda: xentlib.entropy("abc"),
            "p must be a tensor or array of numbers",
        ),
    ],
)
def test_bad_distributions_raise_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()

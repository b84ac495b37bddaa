"""Logistic and softmax regression: gradients against autograd, fits
against scikit-learn, the stratified split, divergence and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from xentlib.linear_models import (
    LinearModelFit,
    fit_logistic_regression,
    fit_softmax_regression,
    gradient_lipschitz_bound,
    logistic_regression_gradient,
    logistic_regression_loss,
    softmax_regression_gradient,
    softmax_regression_loss,
    standardised_split,
)

D64 = torch.float64


def _binary_data(n=60, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=D64)
    w_true = torch.randn(d, generator=g, dtype=D64)
    y = (
        torch.rand(n, generator=g, dtype=D64) < torch.sigmoid(x @ w_true + 0.3)
    ).to(D64)
    return x, y, g


def _multiclass_data(n=90, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=D64)
    w_true = 2 * torch.randn(c, d, generator=g, dtype=D64)
    y = torch.multinomial(
        torch.softmax(x @ w_true.T, dim=1), 1, generator=g
    ).squeeze(1)
    return x, y, g


# --- losses ------------------------------------------------------------------


def test_logistic_loss_without_penalty_matches_sklearn_log_loss():
    x, y, g = _binary_data()
    w, b = torch.randn(4, generator=g, dtype=D64), torch.tensor(0.7, dtype=D64)
    p = torch.sigmoid(x @ w + b)
    ours = logistic_regression_loss(x, y, w, b)
    assert ours.item() == pytest.approx(
        log_loss(y.numpy(), p.numpy()), rel=1e-12
    )


def test_logistic_loss_adds_half_l2_times_squared_norm_of_the_weights_only():
    x, y, g = _binary_data()
    w, b = torch.randn(4, generator=g, dtype=D64), torch.tensor(5.0, dtype=D64)
    plain = logistic_regression_loss(x, y, w, b)
    penalised = logistic_regression_loss(x, y, w, b, l2=0.3)
    assert (penalised - plain).item() == pytest.approx(
        0.15 * (w @ w).item(), rel=1e-12
    )


def test_logistic_loss_is_finite_for_huge_logits():
    x, y, _ = _binary_data()
    w = torch.full((4,), 1e4, dtype=D64)
    assert torch.isfinite(logistic_regression_loss(x, y, w))


def test_logistic_loss_on_a_batch_of_weights_equals_one_by_one():
    x, y, g = _binary_data()
    ws = torch.randn(2, 3, 4, generator=g, dtype=D64)
    bs = torch.randn(2, 3, generator=g, dtype=D64)
    batch = logistic_regression_loss(x, y, ws, bs, l2=0.1)
    assert batch.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            single = logistic_regression_loss(x, y, ws[i, j], bs[i, j], l2=0.1)
            torch.testing.assert_close(batch[i, j], single, rtol=1e-12, atol=0)


def test_softmax_loss_without_penalty_matches_sklearn_log_loss():
    x, y, g = _multiclass_data()
    w, b = (
        torch.randn(3, 5, generator=g, dtype=D64),
        torch.randn(3, generator=g, dtype=D64),
    )
    p = torch.softmax(x @ w.T + b, dim=1)
    ours = softmax_regression_loss(x, y, w, b)
    assert ours.item() == pytest.approx(
        log_loss(y.numpy(), p.numpy(), labels=[0, 1, 2]), rel=1e-12
    )


def test_two_class_softmax_regression_is_logistic_on_the_logit_gap():
    x, y, g = _binary_data()
    w, b = (
        torch.randn(4, generator=g, dtype=D64),
        torch.tensor(-0.4, dtype=D64),
    )
    # softmax over logits (0, z) is (1 - sigmoid(z), sigmoid(z))
    w2 = torch.stack([torch.zeros_like(w), w])
    b2 = torch.stack([torch.zeros_like(b), b])
    soft = softmax_regression_loss(x, y.long(), w2, b2)
    torch.testing.assert_close(
        soft, logistic_regression_loss(x, y, w, b), rtol=1e-12, atol=0
    )
    gw, gb = softmax_regression_gradient(x, y.long(), w2, b2)
    lw, lb = logistic_regression_gradient(x, y, w, b)
    torch.testing.assert_close(gw[1], lw, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(gw[0], -lw, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(gb[1], lb, rtol=1e-12, atol=1e-15)


# --- gradients ---------------------------------------------------------------


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_logistic_gradient_is_prediction_minus_label_times_x(with_bias, l2):
    x, y, g = _binary_data(seed=1)
    w = (2 * torch.randn(4, generator=g, dtype=D64)).requires_grad_()
    b = torch.tensor(0.5, dtype=D64, requires_grad=True) if with_bias else None
    z = x @ w + (b if with_bias else 0.0)
    reference = (F.softplus(z) - y * z).mean() + 0.5 * l2 * (
        w * w
    ).sum()  # written independently
    auto = torch.autograd.grad(reference, [w, b] if with_bias else [w])
    gw, gb = logistic_regression_gradient(
        x, y, w.detach(), b.detach() if with_bias else None, l2=l2
    )
    torch.testing.assert_close(gw, auto[0], rtol=0, atol=1e-13)
    if with_bias:
        torch.testing.assert_close(gb, auto[1], rtol=0, atol=1e-13)
    else:
        assert gb is None


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_softmax_gradient_is_p_minus_onehot_times_x(with_bias, l2):
    x, y, g = _multiclass_data(c=4, seed=2)
    w = (2 * torch.randn(4, 5, generator=g, dtype=D64)).requires_grad_()
    b = (
        torch.randn(4, generator=g, dtype=D64).requires_grad_()
        if with_bias
        else None
    )
    z = x @ w.T + (b if with_bias else 0.0)
    reference = (
        torch.logsumexp(z, 1) - z.gather(1, y[:, None]).squeeze(1)
    ).mean() + 0.5 * l2 * (w * w).sum()
    auto = torch.autograd.grad(reference, [w, b] if with_bias else [w])
    gw, gb = softmax_regression_gradient(
        x, y, w.detach(), b.detach() if with_bias else None, l2=l2
    )
    torch.testing.assert_close(gw, auto[0], rtol=0, atol=1e-13)
    if with_bias:
        torch.testing.assert_close(gb, auto[1], rtol=0, atol=1e-13)
    else:
        assert gb is None


def test_loss_functions_pass_gradcheck_in_float64():
    x, y, g = _multiclass_data(n=12, d=3, c=3)
    w = torch.randn(3, 3, generator=g, dtype=D64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w, b: softmax_regression_loss(x, y, w, b, l2=0.1), (w, b)
    )
    xb, yb, _ = _binary_data(n=12, d=3)
    assert torch.autograd.gradcheck(
        lambda w, b: logistic_regression_loss(xb, yb, w, b, l2=0.1),
        (w[0], b[0]),
    )


def test_gradient_lipschitz_bound_is_at_least_every_hessian_eigenvalue():
    x, y, g = _binary_data(n=40, d=3)
    bound = gradient_lipschitz_bound(x, model="logistic", l2=0.2)
    for scale in (0.0, 0.5, 3.0):
        theta = scale * torch.randn(4, generator=g, dtype=D64)
        hess = torch.autograd.functional.hessian(
            lambda t: logistic_regression_loss(x, y, t[:3], t[3], l2=0.2),
            theta,
        )
        assert torch.linalg.eigvalsh(hess).max().item() <= bound + 1e-12
    # at zero weights every example has curvature 1/4, so the bound (without
    # penalty) is attained
    hess0 = torch.autograd.functional.hessian(
        lambda t: logistic_regression_loss(x, y, t[:3], t[3]),
        torch.zeros(4, dtype=D64),
    )
    assert torch.linalg.eigvalsh(hess0).max().item() == pytest.approx(
        gradient_lipschitz_bound(x), rel=1e-10
    )

    xm, ym, _ = _multiclass_data(n=40, d=3, c=3)
    bound = gradient_lipschitz_bound(
        xm, model="softmax", l2=0.2, fit_intercept=False
    )
    for scale in (0.0, 1.0):
        w = scale * torch.randn(3, 3, generator=g, dtype=D64)
        hess = torch.autograd.functional.hessian(
            lambda w: softmax_regression_loss(xm, ym, w, l2=0.2), w
        )
        assert (
            torch.linalg.eigvalsh(hess.reshape(9, 9)).max().item()
            <= bound + 1e-12
        )


# --- gradient descent --------------------------------------------------------


def test_gradient_descent_with_step_one_over_l_never_increases_the_objective():
    x, y, _ = _binary_data()
    fit = fit_logistic_regression(x, y, l2=0.01, steps=300)
    assert torch.all(fit.losses[1:] <= fit.losses[:-1] + 1e-15)
    assert fit.losses[-1] < 0.8 * fit.losses[0]
    xm, ym, _ = _multiclass_data()
    fit = fit_softmax_regression(xm, ym, l2=0.01, steps=300)
    assert torch.all(fit.losses[1:] <= fit.losses[:-1] + 1e-15)


def test_fit_losses_are_the_objective_at_each_recorded_iterate():
    x, y, _ = _binary_data()
    fit = fit_logistic_regression(x, y, l2=0.05, steps=7, record_path=True)
    assert fit.losses.shape == (8,) and fit.path.shape == (8, 5)
    for t in (0, 3, 7):
        j = logistic_regression_loss(
            x, y, fit.path[t, :4], fit.path[t, 4], l2=0.05
        )
        torch.testing.assert_close(fit.losses[t], j, rtol=1e-12, atol=0)
    torch.testing.assert_close(fit.path[-1, :4], fit.weight)


def test_one_step_is_the_analytic_gradient_step():
    x, y, g = _binary_data()
    init = torch.randn(4, generator=g, dtype=D64)
    fit = fit_logistic_regression(
        x, y, l2=0.1, fit_intercept=False, steps=1, lr=0.3, init=init
    )
    gw, _ = logistic_regression_gradient(x, y, init, l2=0.1)
    torch.testing.assert_close(
        fit.weight, init - 0.3 * gw, rtol=1e-14, atol=1e-15
    )
    assert fit.bias is None


@pytest.fixture(scope="module")
def breast_cancer():
    data = load_breast_cancer()
    return standardised_split(data.data, data.target, test_size=0.25, rng=0)


def test_logistic_regression_matches_sklearn_under_the_same_l2_penalty(
    breast_cancer,
):
    x_train, x_test, y_train, y_test = breast_cancer
    C = 1.0
    fit = fit_logistic_regression(
        x_train, y_train, l2=1 / (C * len(x_train)), steps=15_000
    )
    sk = LogisticRegression(
        C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000
    ).fit(x_train.numpy(), y_train.numpy())
    ours = np.r_[fit.weight.numpy(), fit.bias.item()]
    theirs = np.r_[sk.coef_[0], sk.intercept_]
    assert np.max(np.abs(ours - theirs) / np.abs(theirs)) < 1e-4
    np.testing.assert_array_equal(
        fit.predict(x_test).numpy(), sk.predict(x_test.numpy())
    )


def test_softmax_regression_matches_sklearn_multinomial_when_well_posed():
    x, y, _ = _multiclass_data(n=300, d=4, c=3, seed=5)
    C = 0.5
    fit = fit_softmax_regression(x, y, l2=1 / (C * len(x)), steps=1000)
    sk = LogisticRegression(
        C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000
    ).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(
        fit.weight.numpy(), sk.coef_, rtol=0, atol=1e-10
    )
    # intercepts are defined up to a common constant: compare them centred
    ours_b = fit.bias.numpy() - fit.bias.numpy().mean()
    np.testing.assert_allclose(
        ours_b, sk.intercept_ - sk.intercept_.mean(), rtol=0, atol=1e-10
    )


def test_softmax_fit_from_zero_keeps_weights_summing_to_zero_over_classes():
    x, y, _ = _multiclass_data()
    fit = fit_softmax_regression(x, y, l2=0.01, steps=50)
    assert fit.weight.sum(0).abs().max().item() < 1e-12
    assert fit.bias.sum().abs().item() < 1e-12


def test_fits_repeat_bit_for_bit():
    x, y, _ = _multiclass_data()
    a = fit_softmax_regression(x, y, l2=0.01, steps=40)
    b = fit_softmax_regression(x, y, l2=0.01, steps=40)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.losses, b.losses)


def test_linear_model_fit_predicts_classes():
    fit = LinearModelFit(
        weight=torch.tensor([1.0, -1.0], dtype=D64),
        bias=torch.tensor(0.5, dtype=D64),
        losses=torch.zeros(1),
        lr=1.0,
    )
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=D64)
    assert fit.predict(x).tolist() == [0, 1]
    multi = LinearModelFit(
        weight=torch.eye(3, dtype=D64),
        bias=None,
        losses=torch.zeros(1),
        lr=1.0,
    )
    assert multi.predict(
        torch.tensor([[0.0, 2.0, 1.0]], dtype=D64)
    ).tolist() == [1]


def test_standardised_split_scales_with_training_statistics_and_stratifies():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(200, 3))
    x[:, 2] = 1.0  # a constant column stays finite
    y = np.r_[np.zeros(150, dtype=int), np.ones(50, dtype=int)]
    x_train, x_test, y_train, y_test = standardised_split(
        x, y, test_size=0.25, rng=3
    )
    assert x_train.dtype == D64 and y_train.dtype == torch.long
    assert x_train.shape == (150, 3) and x_test.shape == (50, 3)
    torch.testing.assert_close(
        x_train[:, :2].mean(0), torch.zeros(2, dtype=D64), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        x_train[:, :2].std(0, unbiased=False),
        torch.ones(2, dtype=D64),
        atol=1e-12,
        rtol=0,
    )
    assert torch.isfinite(x_test).all()
    assert (
        y_test.sum().item() == 12 or y_test.sum().item() == 13
    )  # a quarter of the positives


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fits_run_on_cuda_and_agree_with_the_cpu():
    x, y, _ = _multiclass_data()
    cpu = fit_softmax_regression(x, y, l2=0.01, steps=100)
    gpu = fit_softmax_regression(x.cuda(), y.cuda(), l2=0.01, steps=100)
    torch.testing.assert_close(
        gpu.weight.cpu(), cpu.weight, rtol=1e-10, atol=1e-12
    )
    xb, yb, _ = _binary_data()
    cpu = fit_logistic_regression(xb, yb, steps=100)
    gpu = fit_logistic_regression(xb.cuda(), yb.cuda(), steps=100)
    torch.testing.assert_close(
        gpu.weight.cpu(), cpu.weight, rtol=1e-10, atol=1e-12
    )


# --- input validation --------------------------------------------------------


def test_bad_inputs_raise_value_errors_that_name_the_argument():
    x, y, _ = _binary_data()
    w = torch.zeros(4, dtype=D64)
    with pytest.raises(
        ValueError,
        match=r"features must have shape \(N, D\); got shape \(60,\)",
    ):
        logistic_regression_loss(x[:, 0], y, w)
    with pytest.raises(
        ValueError, match="features must be a floating-point torch.Tensor"
    ):
        logistic_regression_gradient(x.numpy(), y, w)
    with pytest.raises(
        ValueError, match="features contains NaN or infinite values"
    ):
        logistic_regression_loss(torch.full_like(x, float("nan")), y, w)
    with pytest.raises(
        ValueError,
        match=(
            r"target must have shape \(60,\), one label per row of features;"
            r" got \(59,\)"
        ),
    ):
        logistic_regression_loss(x, y[:-1], w)
    with pytest.raises(
        ValueError,
        match=r"target must hold labels .* in \[0, 1\]; got values in \[0, 2",
    ):
        fit_logistic_regression(x, 2 * y)
    with pytest.raises(
        ValueError, match=r"weight must have shape \(4,\); got \(3,\)"
    ):
        logistic_regression_gradient(x, y, torch.zeros(3, dtype=D64))
    with pytest.raises(
        ValueError,
        match=(
            r"weight must be a floating-point tensor of shape \(4,\) or"
            r" \(\.\.\., 4\); got \(3,\)"
        ),
    ):
        logistic_regression_loss(x, y, torch.zeros(3, dtype=D64))
    with pytest.raises(
        ValueError, match=r"bias must have shape \(\); got \(1,\)"
    ):
        logistic_regression_gradient(x, y, w, torch.zeros(1, dtype=D64))
    with pytest.raises(
        ValueError, match="l2 must be a finite non-negative number; got -0.1"
    ):
        logistic_regression_loss(x, y, w, l2=-0.1)
    with pytest.raises(
        ValueError, match="steps must be a non-negative integer; got 2.5"
    ):
        fit_logistic_regression(x, y, steps=2.5)
    with pytest.raises(
        ValueError,
        match="lr must be a finite positive number, or None for 1/L; got 0",
    ):
        fit_logistic_regression(x, y, lr=0)
    with pytest.raises(
        ValueError, match=r"init must have shape \(5,\); got \(4,\)"
    ):
        fit_logistic_regression(x, y, init=w)
    with pytest.raises(ValueError, match="model must be one of"):
        gradient_lipschitz_bound(x, model="probit")


def test_bad_class_targets_raise_value_errors():
    x, y, _ = _multiclass_data()
    w = torch.zeros(3, 5, dtype=D64)
    with pytest.raises(
        ValueError, match=r"target must hold class indices in \[0, 2\]; got 3"
    ):
        softmax_regression_loss(x, torch.where(y == 0, 3, y), w)
    with pytest.raises(
        ValueError,
        match=(
            "target must hold integer class indices; got dtype torch.float64"
        ),
    ):
        softmax_regression_gradient(x, y.double(), w)
    with pytest.raises(
        ValueError,
        match=(
            r"weight must be a floating-point tensor of shape \(C, 5\), one"
            r" row per class; got \(3, 4\)"
        ),
    ):
        softmax_regression_loss(x, y, torch.zeros(3, 4, dtype=D64))
    with pytest.raises(
        ValueError,
        match=r"bias must have shape \(3,\) \(one per row of weight\); got",
    ):
        softmax_regression_gradient(x, y, w, torch.zeros(2, dtype=D64))
    with pytest.raises(
        ValueError, match="n_classes must be an integer of at least 2; got 1"
    ):
        fit_softmax_regression(x, y, n_classes=1)
    with pytest.raises(
        ValueError, match=r"target must hold class indices in \[0, 1\]; got 2"
    ):
        fit_softmax_regression(x, y, n_classes=2)
    with pytest.raises(ValueError, match="test_size must be a fraction in"):
        standardised_split(x.numpy(), y.numpy(), test_size=1.5)


def test_bad_options_name_the_argument():
    x, y, _ = _binary_data()
    with pytest.raises(ValueError, match="fit_intercept must be True or"):
        fit_logistic_regression(x, y, fit_intercept="yes")
    with pytest.raises(ValueError, match="record_path must be True or"):
        fit_logistic_regression(x, y, record_path=1)
    with pytest.raises(ValueError, match="init contains NaN"):
        fit_logistic_regression(x, y, init=torch.full((5,), float("nan")))
    with pytest.raises(ValueError, match="weight contains NaN"):
        logistic_regression_loss(x, y, torch.full((4,), float("inf")))
    with pytest.raises(ValueError, match="n_classes must be an integer"):
        fit_softmax_regression(x, y.long(), n_classes=2.5)
    with pytest.raises(ValueError, match="features contains NaN"):
        standardised_split(np.full((4, 2), np.nan), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="target must hold integer class"):
        standardised_split(np.ones((4, 2)), np.array([0.0, 1.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="test_size must leave at least"):
        standardised_split(
            np.ones((4, 2)), np.array([0, 1, 0, 1]), test_size=0.9
        )


# --- divergence --------------------------------------------------------------


def test_gradient_descent_with_a_huge_step_stops_naming_the_learning_rate():
    x, y, _ = _binary_data()
    with pytest.raises(FloatingPointError, match=r"lr=1e\+300"):
        fit_logistic_regression(x, y, l2=0.1, steps=500, lr=1e300)
    xm, ym, _ = _multiclass_data()
    with pytest.raises(FloatingPointError, match="diverged"):
        fit_softmax_regression(xm, ym, l2=0.1, steps=500, lr=1e300)


def test_a_large_but_finite_objective_is_not_divergence():
    x, y, _ = _binary_data()
    fit = fit_logistic_regression(x, y, steps=50, lr=50.0)
    assert torch.isfinite(fit.losses).all()


def test_linear_model_fit_is_frozen():
    fit = fit_logistic_regression(*_binary_data()[:2], steps=1)
    with pytest.raises(AttributeError):
        fit.lr = 2.0


# --- the stratified split ----------------------------------------------------


def test_standardised_split_keeps_class_proportions_like_sklearn():
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    for rng in range(5):
        _, x_test, _, y_test = standardised_split(
            data.data, data.target, test_size=0.25, rng=rng
        )
        _, _, _, sk_test = train_test_split(
            data.data,
            data.target,
            test_size=0.25,
            random_state=rng,
            stratify=data.target,
        )
        assert len(y_test) == len(sk_test) == 143
        assert abs(int(y_test.sum()) - int(sk_test.sum())) <= 1


def test_standardised_split_is_a_partition_and_repeats_for_a_seed():
    x = np.arange(60.0).reshape(30, 2)
    y = np.r_[np.zeros(20, dtype=int), np.ones(10, dtype=int)]
    a = standardised_split(x, y, test_size=0.3, rng=4)
    b = standardised_split(x, y, test_size=0.3, rng=4)
    c = standardised_split(x, y, test_size=0.3, rng=5)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert not torch.equal(a[1], c[1])
    # both parts are scaled alike, so together their first column is an
    # affine image of 0, 2, ..., 58: thirty distinct, equally spaced values
    column = torch.cat([a[0][:, 0], a[1][:, 0]]).sort().values
    gaps = column.diff()
    assert len(column) == 30 and gaps.min() > 0
    torch.testing.assert_close(gaps, gaps.mean().expand(29))
    assert sorted(a[3].tolist()) == [0] * 6 + [1] * 3


def test_standardised_split_draws_from_a_given_generator():
    x, y = (
        np.ones((10, 1)),
        np.r_[np.zeros(5, dtype=int), np.ones(5, dtype=int)],
    )
    g = torch.Generator().manual_seed(0)
    first = standardised_split(x, y, rng=g)[3]
    assert torch.equal(first, standardised_split(x, y, rng=0)[3])

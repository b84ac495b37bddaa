"""xentlib.imbalance: focal loss, prior-shift corrections, rare-event
metrics, the simulated screen and the subsampled real data (chapter 6)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    precision_score,
    recall_score,
)
from torch.autograd import gradcheck

import xentlib
from xentlib.calibration import expected_calibration_error
from xentlib.imbalance import (
    average_precision,
    focal_corrected_logits,
    focal_loss,
    pos_weight_corrected_logits,
    precision_recall_at,
    precision_recall_curve,
    prior_shift_logits,
    simulate_binding_screen,
    subsample_positives,
    weighted_bce_minimiser,
)
from xentlib.training import TrainConfig, fit


def reference_focal_loss(x, y, alpha, gamma):
    """The formula of Lin et al. (2017), as
    torchvision.ops.sigmoid_focal_loss writes it (reduction='none')."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def random_case(n=200, seed=0, soft=False, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(n, generator=g, dtype=torch.float64)
    y = (
        torch.rand(n, generator=g, dtype=torch.float64)
        if soft
        else (torch.rand(n, generator=g) < 0.3).double()
    )
    return x, y


# ------------------------------------------------------------------ focal loss


@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("soft", [False, True])
def test_focal_loss_matches_the_papers_formula(alpha, gamma, soft):
    x, y = random_case(soft=soft)
    ours = focal_loss(x, y, alpha=alpha, gamma=gamma, reduction="none")
    torch.testing.assert_close(
        ours, reference_focal_loss(x, y, alpha, gamma), rtol=1e-12, atol=1e-14
    )
    torch.testing.assert_close(
        focal_loss(x, y, alpha=alpha, gamma=gamma),
        ours.mean(),
        rtol=1e-12,
        atol=0,
    )
    torch.testing.assert_close(
        focal_loss(x, y, alpha=alpha, gamma=gamma, reduction="sum"),
        ours.sum(),
        rtol=1e-12,
        atol=0,
    )


def test_focal_loss_with_gamma_zero_and_no_alpha_is_binary_cross_entropy():
    x, y = random_case(soft=True, seed=1)
    ours = focal_loss(x, y, alpha=None, gamma=0.0)
    torch.testing.assert_close(
        ours, xentlib.binary_cross_entropy(x, y), rtol=1e-13, atol=0
    )
    torch.testing.assert_close(
        ours, F.binary_cross_entropy_with_logits(x, y), rtol=1e-13, atol=0
    )


@given(
    x=st.floats(-30, 30),
    label=st.sampled_from([0.0, 1.0]),
    gamma=st.floats(0, 5),
)
@settings(max_examples=200, deadline=None)
def test_focal_loss_is_cross_entropy_times_the_modulating_factor(
    x, label, gamma
):
    xt = torch.tensor([x], dtype=torch.float64)
    yt = torch.tensor([label], dtype=torch.float64)
    fl = focal_loss(xt, yt, gamma=gamma, reduction="sum").item()
    # the cross-entropy to relative precision: softplus(-x) for label 1,
    # softplus(x) for label 0 (binary_cross_entropy, like PyTorch's, forms
    # x - logsigmoid(x), exact to absolute but not relative precision when
    # the loss is tiny: 2.7e-11 relative at x = -11)
    ce = F.softplus(-xt if label == 1 else xt).item()
    assert fl <= ce * (1 + 1e-12)
    p_miss = torch.sigmoid(-xt if label == 1 else xt).item()  # 1 - p_t
    assert fl == pytest.approx(ce * p_miss**gamma, rel=1e-9, abs=1e-300)


def test_focal_loss_is_finite_for_huge_logits_in_float32():
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    loss = focal_loss(x, y, gamma=2.0, reduction="none")
    # right with certainty: 0; wrong with certainty: the cross-entropy |x|;
    # at x = 0: ln 2 / 4
    torch.testing.assert_close(
        loss, torch.tensor([0.0, 0.0, 1e4, 1e4, math.log(2) / 4])
    )
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(
        grad, torch.tensor([0.0, 0.0, 1.0, -1.0, grad[4].item()])
    )


def test_focal_loss_gradient_matches_the_analytic_formula():
    x, y = random_case(seed=2)
    x.requires_grad_()
    gamma = 2.0
    (grad,) = torch.autograd.grad(
        focal_loss(x, y, gamma=gamma, reduction="sum"), x
    )
    # For y = 1, FL = -(1 - p)^g log p and
    # dFL/dx = (1 - p)^g (g p log p - (1 - p)); y = 0 mirrors x -> -x.
    s = torch.where(y == 1, x, -x).detach()
    p = torch.sigmoid(s)
    d = (1 - p) ** gamma * (gamma * p * torch.log(p) - (1 - p))
    torch.testing.assert_close(
        grad, torch.where(y == 1, d, -d), rtol=1e-10, atol=1e-14
    )


@pytest.mark.parametrize("soft", [False, True])
def test_focal_loss_passes_gradcheck_in_float64(soft):
    x, y = random_case(n=6, seed=3, soft=soft, scale=2.0)
    assert gradcheck(
        lambda z: focal_loss(z, y, alpha=0.25, gamma=1.5),
        (x.requires_grad_(),),
    )


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32]
)
def test_focal_loss_keeps_the_input_dtype_and_agrees_with_float64(dtype):
    x, y = random_case(seed=4, scale=2.0)
    low = focal_loss(x.to(dtype), y.to(dtype), alpha=0.25)
    assert low.dtype == dtype
    tol = {torch.float16: 1e-2, torch.bfloat16: 3e-2, torch.float32: 1e-6}[
        dtype
    ]
    assert (
        abs(low.double().item() - focal_loss(x, y, alpha=0.25).item())
        < tol * focal_loss(x, y, alpha=0.25).item()
    )


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_loss_of_infinite_logits_is_its_exact_limit(alpha, gamma):
    x = torch.tensor([-math.inf, math.inf, -math.inf, math.inf, math.inf])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5])
    loss = focal_loss(x, y, alpha=alpha, gamma=gamma, reduction="none")
    assert loss.tolist() == [0.0, 0.0, math.inf, math.inf, math.inf]
    # the limit is approached by large finite logits
    big = focal_loss(
        torch.tensor([-80.0, 80.0]),
        y[:2],
        alpha=alpha,
        gamma=gamma,
        reduction="none",
    )
    assert big.abs().max() < 1e-30


def test_focal_loss_gradient_at_a_right_infinite_logit_is_zero():
    x = torch.tensor([-math.inf, 0.3], requires_grad=True)
    focal_loss(x, torch.tensor([0.0, 1.0])).backward()
    assert torch.isfinite(x.grad).all() and x.grad[0] == 0


def test_logit_corrections_keep_infinite_logits_infinite():
    z = torch.tensor([-math.inf, 0.0, math.inf])
    for out in (
        pos_weight_corrected_logits(z, 49.0),
        prior_shift_logits(z, 0.5, 0.02),
        focal_corrected_logits(z, 2.0, 0.25),
        focal_corrected_logits(z, 0.5),
    ):
        assert out[0] == -math.inf and out[2] == math.inf
        assert math.isfinite(out[1])


def test_focal_loss_rejects_bad_input():
    x, y = random_case(n=4)
    with pytest.raises(ValueError, match="reduction must be one of"):
        focal_loss(x, y, reduction="average")
    with pytest.raises(
        ValueError, match="input must be a floating-point torch.Tensor"
    ):
        focal_loss(torch.ones(4, dtype=torch.long), y)
    with pytest.raises(ValueError, match="input contains NaN"):
        focal_loss(torch.tensor([0.0, math.nan, 0.0, 0.0]), y.float())
    with pytest.raises(
        ValueError,
        match=r"target must have the same shape as input \(4,\); got \(3,\)",
    ):
        focal_loss(x, y[:3])
    with pytest.raises(
        ValueError, match=r"target must hold values in \[0, 1\]"
    ):
        focal_loss(x, y + 2)
    with pytest.raises(
        ValueError, match="gamma must be a non-negative number; got -1"
    ):
        focal_loss(x, y, gamma=-1)
    with pytest.raises(
        ValueError, match=r"alpha must be in \[0, 1\] or None; got 1.5"
    ):
        focal_loss(x, y, alpha=1.5)


def test_focal_loss_decreases_when_a_model_is_trained_with_it():
    screen = simulate_binding_screen(1000, positive_fraction=0.1, rng=0)
    torch.manual_seed(0)
    model = torch.nn.Linear(screen.descriptors.shape[1], 1)
    history = fit(
        model,
        lambda z, t: focal_loss(z.squeeze(-1), t, alpha=0.25),
        screen.descriptors,
        screen.label,
        config=TrainConfig(epochs=30, lr=0.05),
    )
    assert history.loss[-1] < 0.5 * history.loss[0]


# ----------------------------------------------------- what each loss asks for


def grid_minimiser(expected_loss, lo=-20.0, hi=20.0, n=40_001):
    """The logit z on a fine grid that minimises expected_loss(z) (a
    function of a float64 grid)."""
    z = torch.linspace(lo, hi, n, dtype=torch.float64)
    return z[expected_loss(z).argmin()].item(), (hi - lo) / (n - 1)


@pytest.mark.parametrize("p", [0.001, 0.02, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("beta", [0.5, 1.0, 49.0])
def test_weighted_bce_minimiser_minimises_the_expected_weighted_loss(p, beta):
    def expected(z):
        ones, zeros = torch.ones_like(z), torch.zeros_like(z)
        w = torch.tensor(beta, dtype=torch.float64)
        return p * xentlib.binary_cross_entropy(
            z, ones, pos_weight=w, reduction="none"
        ) + (1 - p) * xentlib.binary_cross_entropy(
            z, zeros, pos_weight=w, reduction="none"
        )

    z_best, step = grid_minimiser(expected)
    q = weighted_bce_minimiser(p, beta)
    assert abs(z_best - (math.log(q / (1 - q)))) <= step
    # ... whose logit is the true logit plus log(beta), which the correction
    # removes
    assert (
        abs(
            pos_weight_corrected_logits(
                torch.tensor([z_best], dtype=torch.float64), beta
            ).item()
            - math.log(p / (1 - p))
        )
        <= step
    )


def test_pos_weight_shifts_the_intercept_by_log_beta_and_correction_undoes():
    # Soft targets p(x) make the empirical loss the expected loss: no
    # sampling noise.
    x = torch.linspace(-4, 4, 401, dtype=torch.float64).unsqueeze(1)
    p = torch.sigmoid(2.0 * x.squeeze(1) - 3.0)
    beta = 20.0
    model = torch.nn.Linear(1, 1).double()
    opt = torch.optim.LBFGS(
        model.parameters(),
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = xentlib.binary_cross_entropy(
            model(x).squeeze(1),
            p,
            pos_weight=torch.tensor(beta, dtype=torch.float64),
        )
        loss.backward()
        return loss

    opt.step(closure)
    assert model.weight.item() == pytest.approx(2.0, abs=1e-5)
    assert model.bias.item() == pytest.approx(-3.0 + math.log(beta), abs=1e-5)
    with torch.no_grad():
        corrected = torch.sigmoid(
            pos_weight_corrected_logits(model(x).squeeze(1), beta)
        )
    torch.testing.assert_close(corrected, p, rtol=0, atol=1e-5)


def test_pos_weight_correction_is_a_prior_shift_from_the_inflated_odds():
    z = torch.linspace(-6, 6, 13, dtype=torch.float64)
    pi, beta = 0.02, 49.0
    inflated = (
        beta * pi / (beta * pi + 1 - pi)
    )  # the prior whose odds are beta times the true odds
    torch.testing.assert_close(
        pos_weight_corrected_logits(z, beta),
        prior_shift_logits(z, inflated, pi),
    )


def test_prior_shift_logits_agrees_with_bayes_rule_on_a_discrete_example():
    g = torch.Generator().manual_seed(5)
    lik = torch.rand(2, 7, generator=g, dtype=torch.float64)
    lik = lik / lik.sum(
        1, keepdim=True
    )  # p(x | y) for y = 0, 1 over 7 values of x

    def posterior(pi):
        joint = torch.stack([(1 - pi) * lik[0], pi * lik[1]])
        return joint[1] / joint.sum(0)

    p_old, p_new = posterior(0.3), posterior(0.05)
    shifted = prior_shift_logits(torch.logit(p_old), 0.3, 0.05)
    torch.testing.assert_close(
        torch.sigmoid(shifted), p_new, rtol=1e-12, atol=1e-15
    )
    torch.testing.assert_close(
        prior_shift_logits(torch.logit(p_old), 0.3, 0.3), torch.logit(p_old)
    )


@pytest.mark.parametrize(
    "gamma, alpha",
    [(0.5, None), (1.0, None), (2.0, None), (2.0, 0.25), (3.0, 0.75)],
)
@pytest.mark.parametrize("p", [0.001, 0.02, 0.2, 0.5, 0.8, 0.99])
def test_focal_corrected_logits_recover_p_from_the_focal_minimiser(
    gamma, alpha, p
):
    def expected(z):
        ones, zeros = torch.ones_like(z), torch.zeros_like(z)
        return p * focal_loss(
            z, ones, alpha=alpha, gamma=gamma, reduction="none"
        ) + (1 - p) * focal_loss(
            z, zeros, alpha=alpha, gamma=gamma, reduction="none"
        )

    z_best, step = grid_minimiser(expected)
    z = torch.tensor([z_best - step, z_best + step], dtype=torch.float64)
    lo, hi = torch.sigmoid(
        focal_corrected_logits(z, gamma=gamma, alpha=alpha)
    ).tolist()
    assert lo <= p <= hi


def test_focal_corrected_logits_are_identity_at_gamma_zero_else_increasing():
    z = torch.linspace(-40, 40, 8001, dtype=torch.float64)
    torch.testing.assert_close(focal_corrected_logits(z, gamma=0.0), z)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        corrected = focal_corrected_logits(z, gamma=gamma, alpha=0.25)
        assert torch.isfinite(corrected).all()
        assert (corrected.diff() > 0).all()


def test_focal_minimiser_for_rare_events_follows_the_power_law():
    # q* ~ (alpha_1 p / (alpha_0 (gamma + 1)))^(1 / (gamma + 1)) as p -> 0
    gamma, alpha = 2.0, 0.25
    q = torch.logspace(-7, -4, 4, dtype=torch.float64)
    p = torch.sigmoid(
        focal_corrected_logits(torch.logit(q), gamma=gamma, alpha=alpha)
    )
    approx = (alpha * p / ((1 - alpha) * (gamma + 1))) ** (1 / (gamma + 1))
    torch.testing.assert_close(approx, q, rtol=1e-3, atol=0)


def test_corrections_reject_bad_input():
    z = torch.zeros(3)
    with pytest.raises(
        ValueError, match="pos_weight must be positive and finite"
    ):
        pos_weight_corrected_logits(z, torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(
        ValueError,
        match="pos_weight must be a positive number or tensor; got str",
    ):
        pos_weight_corrected_logits(z, "49")
    with pytest.raises(
        ValueError,
        match=(
            "source_prior must be a probability strictly between 0 and 1;"
            " got 0"
        ),
    ):
        prior_shift_logits(z, 0, 0.5)
    with pytest.raises(
        ValueError,
        match=(
            "target_prior must be a probability strictly between 0 and 1;"
            " got 1.2"
        ),
    ):
        prior_shift_logits(z, 0.5, 1.2)
    with pytest.raises(
        ValueError,
        match=r"alpha must be in \(0, 1\) or None to be undone; got 0",
    ):
        focal_corrected_logits(z, alpha=0)
    with pytest.raises(
        ValueError, match="gamma must be a non-negative number"
    ):
        focal_corrected_logits(z, gamma=math.nan)
    with pytest.raises(
        ValueError, match=r"p must hold probabilities in \[0, 1\]"
    ):
        weighted_bce_minimiser([0.5, 1.5], 2.0)


# --------------------------------------------------------------------- metrics


def brute_force_curve(score, target):
    rows = []
    for s in sorted(set(score.tolist()), reverse=True):
        pred = score >= s
        tp = float((pred & (target == 1)).sum())
        rows.append((tp / float(pred.sum()), tp / float(target.sum()), s))
    return [torch.tensor(c, dtype=torch.float64) for c in zip(*rows)]


@pytest.mark.parametrize("ties", [False, True])
def test_precision_recall_curve_matches_a_brute_force_loop(ties):
    g = torch.Generator().manual_seed(6)
    score = torch.rand(300, generator=g, dtype=torch.float64)
    if ties:
        score = (score * 10).round() / 10
    target = (torch.rand(300, generator=g) < score.float()).long()
    for ours, ref in zip(
        precision_recall_curve(score, target), brute_force_curve(score, target)
    ):
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_matches_scikit_learn(ties, seed):
    rng = np.random.default_rng(seed)
    score = rng.random(2000)
    if ties:
        score = np.round(score, 1)
    target = (rng.random(2000) < 0.05 + 0.2 * score).astype(int)
    ours = average_precision(torch.from_numpy(score), torch.from_numpy(target))
    assert ours == pytest.approx(
        average_precision_score(target, score), rel=1e-12
    )


def test_average_precision_depends_only_on_the_ranking():
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(500, generator=g, dtype=torch.float64)
    target = (
        torch.rand(500, generator=g, dtype=torch.float64)
        < torch.sigmoid(logits - 2)
    ).long()
    ap = average_precision(logits, target)
    assert average_precision(torch.sigmoid(logits), target) == pytest.approx(
        ap, rel=1e-12
    )
    assert average_precision(3 * logits - 7, target) == pytest.approx(
        ap, rel=1e-12
    )
    assert (
        average_precision(torch.where(target == 1, 1.0, 0.0).double(), target)
        == 1.0
    )


@pytest.mark.parametrize("threshold", [0.1, 0.5, 0.9, 1.5])
def test_precision_recall_at_matches_scikit_learn(threshold):
    rng = np.random.default_rng(8)
    prob = rng.random(1000)
    target = (rng.random(1000) < prob**2).astype(int)
    precision, recall = precision_recall_at(
        torch.from_numpy(prob), torch.from_numpy(target), threshold
    )
    pred = (prob >= threshold).astype(int)
    assert precision == pytest.approx(
        precision_score(target, pred, zero_division=0.0), rel=1e-12
    )
    assert recall == pytest.approx(recall_score(target, pred), rel=1e-12)


def test_metrics_reject_bad_input():
    score = torch.tensor([0.2, 0.7, 0.9])
    with pytest.raises(ValueError, match="target has no positives"):
        average_precision(score, torch.zeros(3))
    with pytest.raises(ValueError, match="target must hold 0/1 labels"):
        precision_recall_curve(score, torch.tensor([0, 2, 1]))
    with pytest.raises(
        ValueError,
        match=(
            r"score must have shape \(N,\), one score per example; got"
            r" \(3, 1\)"
        ),
    ):
        average_precision(score[:, None], torch.tensor([0, 1, 1]))
    with pytest.raises(
        ValueError,
        match=r"target must have shape \(3,\) like prob; got \(2,\)",
    ):
        precision_recall_at(score, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="score contains NaN"):
        average_precision(
            torch.tensor([0.1, math.nan, 0.3]), torch.tensor([0, 1, 1])
        )
    with pytest.raises(ValueError, match="threshold must be a number"):
        precision_recall_at(score, torch.tensor([0, 1, 1]), threshold=None)


# ------------------------------------------------------------ simulated screen


def test_simulated_screen_has_the_requested_binders_and_is_deterministic():
    a = simulate_binding_screen(
        10_000,
        positive_fraction=0.02,
        rng=3,
    )
    b = simulate_binding_screen(
        10_000,
        positive_fraction=0.02,
        rng=3,
    )
    c = simulate_binding_screen(
        10_000,
        positive_fraction=0.02,
        rng=4,
    )
    assert len(a) == 10_000 and a.descriptors.shape == (10_000, 8)
    assert a.label.sum().item() == 200
    assert torch.equal(a.label, (a.affinity > a.threshold).float())
    assert torch.equal(a.descriptors, b.descriptors) and torch.equal(
        a.label, b.label
    )
    assert not torch.equal(a.descriptors, c.descriptors)


def test_simulated_screens_bayes_probability_is_calibrated():
    screen = simulate_binding_screen(
        200_000,
        positive_fraction=0.05,
        rng=0,
    )
    assert screen.probability.mean().item() == pytest.approx(0.05, abs=0.002)
    ece = expected_calibration_error(
        screen.probability, screen.label, n_bins=10
    )
    assert ece < 0.005


def test_simulated_screen_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match="n_compounds must be an integer of at least 2; got 1"
    ):
        simulate_binding_screen(1)
    with pytest.raises(
        ValueError,
        match="n_descriptors must be an integer of at least 6; got 3",
    ):
        simulate_binding_screen(100, n_descriptors=3)
    with pytest.raises(
        ValueError, match=r"positive_fraction must be in \(0, 0.5\]; got 0.7"
    ):
        simulate_binding_screen(100, positive_fraction=0.7)
    with pytest.raises(
        ValueError, match="noise must be a positive number; got 0"
    ):
        simulate_binding_screen(100, noise=0)
    with pytest.raises(ValueError, match="must round to at least one binder"):
        simulate_binding_screen(10, positive_fraction=0.01)


def test_subsample_positives_keeps_every_negative_and_the_asked_fraction():
    y = torch.rand(5000, generator=torch.Generator().manual_seed(1)) < 0.25
    kept = subsample_positives(y.float(), 0.02, rng=0)
    n_neg = int((~y).sum())
    assert len(set(kept.tolist())) == len(kept)
    assert int((~y[kept]).sum()) == n_neg
    assert int(y[kept].sum()) == round(0.02 * n_neg / 0.98)
    assert torch.equal(kept, subsample_positives(y.float(), 0.02, rng=0))
    assert not torch.equal(kept, subsample_positives(y.float(), 0.02, rng=1))


def test_subsample_positives_rejects_impossible_requests():
    y = torch.tensor([0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="positive_fraction 0.9 asks for"):
        subsample_positives(y, 0.9)
    with pytest.raises(ValueError, match="target must hold 0/1 labels"):
        subsample_positives(torch.tensor([0.0, 2.0]), 0.5)

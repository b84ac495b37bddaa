"""xentlib.gan: the two generator losses, the discriminator's cross-entropy,
the data, the metrics and the trainers."""

import copy
import dataclasses
import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

import xentlib
from xentlib.gan import (
    TERNARY_PHASES,
    Discriminator,
    GANConfig,
    Generator,
    discriminator_loss,
    energy_distance,
    fit_discriminator,
    fit_gan,
    fit_generator,
    generator_loss,
    mode_counts,
    modes_covered,
    sample_ternary_phases,
    ternary_to_cartesian,
)
from xentlib.training import History


@pytest.fixture(autouse=True)
def one_thread():
    # The networks here are tiny: one thread is faster than several that
    # wait on each other.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def grad_wrt_logits(logits, kind):
    x = logits.clone().requires_grad_()
    (g,) = torch.autograd.grad(generator_loss(x, kind, reduction="sum"), x)
    return g


# ---------------------------------------------------------------------------
# Generator losses
# ---------------------------------------------------------------------------


def test_saturating_loss_is_log_one_minus_d_and_the_other_minus_log_d():
    logits = torch.linspace(-8, 8, 33, dtype=torch.float64)
    d = torch.sigmoid(logits)
    torch.testing.assert_close(
        generator_loss(logits, "saturating", reduction="none"), torch.log1p(-d)
    )
    torch.testing.assert_close(
        generator_loss(logits, "non_saturating", reduction="none"),
        -torch.log(d),
    )


def test_generator_losses_are_plus_and_minus_binary_cross_entropy_from_torch():
    logits = 3 * torch.randn(
        50, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    zeros, ones = torch.zeros_like(logits), torch.ones_like(logits)
    torch.testing.assert_close(
        generator_loss(logits, "saturating"),
        -F.binary_cross_entropy_with_logits(logits, zeros),
    )
    torch.testing.assert_close(
        generator_loss(logits, "non_saturating"),
        F.binary_cross_entropy_with_logits(logits, ones),
    )


def test_saturating_gradient_wrt_fake_logit_is_minus_sigmoid():
    logits = torch.linspace(-30, 30, 121, dtype=torch.float64)
    # rtol 1e-8: above a logit of 20 torch's softplus is the identity, whose
    # slope 1 is sigmoid(20) to 2e-9.
    torch.testing.assert_close(
        grad_wrt_logits(logits, "saturating"),
        -torch.sigmoid(logits),
        rtol=1e-8,
        atol=0,
    )


def test_non_saturating_gradient_wrt_fake_logit_is_sigmoid_minus_one():
    logits = torch.linspace(-30, 30, 121, dtype=torch.float64)
    torch.testing.assert_close(
        grad_wrt_logits(logits, "non_saturating"),
        torch.sigmoid(logits) - 1,
        rtol=1e-8,
        atol=1e-15,
    )


def test_only_the_saturating_gradient_vanishes_when_fakes_are_rejected():
    rejected = torch.tensor(
        [-5.0, -10.0, -20.0], dtype=torch.float64
    )  # D(G(z)) = sigmoid(l) -> 0
    sat = grad_wrt_logits(rejected, "saturating").abs()
    non_sat = grad_wrt_logits(rejected, "non_saturating").abs()
    assert bool((sat < 1e-2).all()) and sat[-1] < 1e-8
    assert bool((non_sat > 0.99).all())
    # The per-sample ratio is (1 - D) / D = exp(-l).
    torch.testing.assert_close(
        non_sat / sat, torch.exp(-rejected), rtol=1e-10, atol=0
    )


def test_both_generator_losses_pass_gradcheck_in_float64():
    logits = torch.randn(
        7,
        generator=torch.Generator().manual_seed(1),
        dtype=torch.float64,
        requires_grad=True,
    )
    for kind in ("saturating", "non_saturating"):
        assert gradcheck(lambda x, k=kind: generator_loss(x, k), (logits,))


@pytest.mark.parametrize("kind", ["saturating", "non_saturating"])
def test_generator_losses_and_gradients_are_finite_at_logits_of_plus_minus_1e4(
    kind,
):
    logits = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], requires_grad=True)
    loss = generator_loss(logits, kind, reduction="none")
    (g,) = torch.autograd.grad(loss.sum(), logits)
    assert bool(torch.isfinite(loss).all()) and bool(torch.isfinite(g).all())
    if kind == "saturating":
        assert loss[0].item() == 0.0 and loss[-1].item() == pytest.approx(-1e4)
    else:
        assert loss[0].item() == pytest.approx(1e4) and loss[-1].item() == 0.0


@pytest.mark.parametrize("kind", ["saturating", "non_saturating"])
def test_generator_losses_are_exact_at_infinite_logits(kind):
    inf = math.inf
    logits = torch.tensor([-inf, inf], dtype=torch.float64).requires_grad_()
    loss = generator_loss(logits, kind, reduction="none")
    (g,) = torch.autograd.grad(loss.sum(), logits)
    if kind == "saturating":  # log(1 - D): 0 at D = 0, -inf at D = 1
        assert loss.tolist() == [0.0, -inf]
        assert g.tolist() == [0.0, -1.0]  # -D
    else:  # -log D: +inf at D = 0, 0 at D = 1
        assert loss.tolist() == [inf, 0.0]
        assert g.tolist() == [-1.0, 0.0]  # -(1 - D)


def test_discriminator_loss_is_zero_for_a_certain_and_right_discriminator():
    inf = math.inf
    real = torch.tensor([inf, inf]).requires_grad_()
    fake = torch.tensor([-inf]).requires_grad_()
    loss = discriminator_loss(real, fake)
    assert loss.item() == 0.0
    grads = torch.autograd.grad(loss, (real, fake))
    assert all(g.abs().max().item() == 0.0 for g in grads)
    wrong = discriminator_loss(torch.tensor([-inf]), torch.tensor([0.0]))
    assert wrong.item() == inf


def test_losses_reject_nan_logits():
    nan = torch.tensor([0.0, math.nan])
    with pytest.raises(ValueError, match="fake_logits contains NaN"):
        generator_loss(nan)
    with pytest.raises(ValueError, match="real_logits contains NaN"):
        discriminator_loss(nan, torch.zeros(2))


@settings(max_examples=50, deadline=None)
@given(st.floats(-60, 60))
def test_both_generator_losses_push_every_fake_logit_up(logit):
    # Both ask the generator to fool D: descent raises the logit, so the
    # derivative is negative everywhere.
    x = torch.tensor([logit], dtype=torch.float64)
    assert grad_wrt_logits(x, "saturating").item() < 0
    assert grad_wrt_logits(x, "non_saturating").item() < 0


# ---------------------------------------------------------------------------
# The discriminator's loss
# ---------------------------------------------------------------------------


def test_discriminator_loss_is_bce_of_real_as_one_plus_fake_as_zero():
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(9, generator=g), torch.randn(5, generator=g)
    ref = F.binary_cross_entropy_with_logits(
        real, torch.ones(9)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros(5))
    torch.testing.assert_close(discriminator_loss(real, fake), ref)
    ref_sum = F.binary_cross_entropy_with_logits(
        real, torch.ones(9), reduction="sum"
    ) + (
        F.binary_cross_entropy_with_logits(
            fake, torch.zeros(5), reduction="sum"
        )
    )
    torch.testing.assert_close(
        discriminator_loss(real, fake, reduction="sum"), ref_sum
    )


def test_optimal_discriminator_is_the_density_ratio_with_loss_ln4_minus_2js():
    # Four points; the real batch holds point k 10 p_k times, the fake batch
    # 10 q_k times, so the batch means are the expectations under p and q.
    p = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64) / 10
    q = torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64) / 10
    real_points = torch.repeat_interleave(
        torch.arange(4), (10 * p).round().long()
    )
    fake_points = torch.repeat_interleave(
        torch.arange(4), (10 * q).round().long()
    )
    best = torch.log(p / q).requires_grad_()  # sigmoid(log p/q) = p / (p + q)
    loss = discriminator_loss(best[real_points], best[fake_points])
    (g,) = torch.autograd.grad(loss, best)
    torch.testing.assert_close(g, torch.zeros_like(g), rtol=0, atol=1e-12)
    expected = math.log(4) - 2 * xentlib.js_divergence(p, q)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-12, atol=1e-12)
    # Any other discriminator does worse.
    other = best.detach() + torch.tensor(
        [0.3, -0.2, 0.1, 0.0], dtype=torch.float64
    )
    assert discriminator_loss(other[real_points], other[fake_points]) > loss


# ---------------------------------------------------------------------------
# Data and models
# ---------------------------------------------------------------------------


def test_phase_samples_are_compositions_and_repeat_under_a_seed():
    x, labels = sample_ternary_phases(500, rng=3)
    y, labels2 = sample_ternary_phases(
        500, rng=torch.Generator().manual_seed(3)
    )
    assert x.shape == (500, 3) and labels.shape == (500,)
    assert bool((x >= 0).all())
    torch.testing.assert_close(x.sum(1), torch.ones(500, dtype=torch.float64))
    assert torch.equal(x, y) and torch.equal(labels, labels2)
    assert set(labels.tolist()) == set(range(len(TERNARY_PHASES)))


def test_phase_samples_cluster_at_their_phase_with_the_log_ratio_spread():
    x, labels = sample_ternary_phases(20000, spread=0.1, rng=4)
    clr = x.log() - x.log().mean(
        1, keepdim=True
    )  # centred log-ratios: Gaussian around those of the phase
    centre_clr = TERNARY_PHASES.log() - TERNARY_PHASES.log().mean(
        1, keepdim=True
    )
    resid = clr - centre_clr[labels]
    assert resid.mean(0).abs().max() < 0.005
    # Projected onto the plane sum = 0, isotropic noise of s.d. 0.1 keeps
    # variance 0.01 * (2/3) per coordinate.
    torch.testing.assert_close(
        resid.var(0),
        torch.full((3,), 0.01 * 2 / 3, dtype=torch.float64),
        rtol=0.05,
        atol=0,
    )


def test_ternary_to_cartesian_is_the_unit_triangle_scaled_by_1_over_sqrt2():
    corners = ternary_to_cartesian(torch.eye(3, dtype=torch.float64))
    expected = torch.tensor(
        [[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64
    )
    torch.testing.assert_close(corners, expected)
    x, _ = sample_ternary_phases(50, spread=0.5, rng=5)
    torch.testing.assert_close(
        torch.cdist(ternary_to_cartesian(x), ternary_to_cartesian(x)),
        torch.cdist(x, x) / math.sqrt(2),
    )


def test_generator_gives_compositions_and_discriminator_one_logit_each():
    torch.manual_seed(0)
    gen, disc = Generator(latent_dim=3, hidden=8), Discriminator(hidden=8)
    x = gen.sample(20, rng=0)
    assert x.shape == (20, 3) and bool((x >= 0).all())
    torch.testing.assert_close(x.sum(1), torch.ones(20))
    assert disc(x).shape == (20,)
    torch.testing.assert_close(x, gen.sample(20, rng=0))


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def test_energy_distance_matches_scipy_in_one_dimension():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=300), rng.normal(0.4, 1.3, size=200)
    ours = energy_distance(torch.from_numpy(u), torch.from_numpy(v))
    assert ours == pytest.approx(scipy.stats.energy_distance(u, v), rel=1e-10)


def test_energy_distance_matches_the_brute_force_formula_in_two_dimensions():
    g = torch.Generator().manual_seed(6)
    x, y = (
        torch.randn(40, 2, generator=g, dtype=torch.float64),
        torch.randn(30, 2, generator=g, dtype=torch.float64) + 0.5,
    )

    def mean_dist(a, b):
        return sum(float((ai - bj).norm()) for ai in a for bj in b) / (
            len(a) * len(b)
        )

    brute = math.sqrt(2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y))
    assert energy_distance(x, y) == pytest.approx(brute, rel=1e-10)
    assert energy_distance(y, x) == pytest.approx(brute, rel=1e-10)


def test_energy_distance_is_zero_small_and_growing_as_expected():
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(1000, 2, generator=g), torch.randn(1000, 2, generator=g)
    assert energy_distance(x, x) == 0.0
    same = energy_distance(x, y)
    shifted = [
        energy_distance(x, y + torch.tensor([s, 0.0])) for s in (0.5, 1.0, 2.0)
    ]
    assert same < 0.15
    assert same < shifted[0] < shifted[1] < shifted[2]


def test_energy_distance_in_blocks_equals_one_block():
    g = torch.Generator().manual_seed(8)
    x, y = torch.rand(5000, 2, generator=g), torch.rand(300, 2, generator=g)
    assert energy_distance(x, y) == pytest.approx(
        math.sqrt(
            2 * torch.cdist(x.double(), y.double()).mean().item()
            - torch.cdist(x.double(), x.double()).mean().item()
            - torch.cdist(y.double(), y.double()).mean().item()
        ),
        rel=1e-9,
    )


def test_mode_counts_assigns_samples_to_the_nearest_centre_in_radius():
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    samples = torch.tensor(
        [[0.05, 0.0], [0.0, 0.05], [0.98, 0.0], [0.5, 0.5], [0.0, 0.85]]
    )
    assert mode_counts(samples, centres, radius=0.1).tolist() == [2, 1, 0]
    assert mode_counts(samples, centres, radius=0.2).tolist() == [2, 1, 1]
    assert modes_covered(samples, centres, radius=0.1, min_count=1) == 2
    assert modes_covered(samples, centres, radius=0.1, min_count=2) == 1
    assert modes_covered(samples, centres, radius=0.2, min_count=1) == 3


def test_collapsed_samples_cover_one_mode_and_real_phase_samples_cover_all():
    centres = ternary_to_cartesian(TERNARY_PHASES)
    x, _ = sample_ternary_phases(2000, spread=0.1, rng=9)
    assert modes_covered(
        ternary_to_cartesian(x), centres, radius=0.06, min_count=20
    ) == len(TERNARY_PHASES)
    collapsed = centres[3] + 0.01 * torch.randn(
        2000,
        2,
        generator=torch.Generator().manual_seed(9),
        dtype=torch.float64,
    )
    assert modes_covered(collapsed, centres, radius=0.06, min_count=20) == 1


# ---------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------


def small_setup(seed=0, pretrain=50, hidden=32):
    torch.manual_seed(seed)
    gen, disc = Generator(hidden=hidden), Discriminator(hidden=hidden)
    real, _ = sample_ternary_phases(500, rng=seed)
    real = real.float()
    config = GANConfig(steps=pretrain, batch_size=64, lr=5e-3)
    fit_discriminator(disc, gen, real, config=config, rng=seed + 1)
    return gen, disc, real


def small_run(kind, steps=30, seed=0, pretrain=50, snapshot_at=(10, 30)):
    gen, disc, real = small_setup(seed, pretrain)
    noise = gen.noise(50, rng=seed + 5)
    snapshots = {0: gen.sample(50, rng=seed + 5)}

    def keep(step, generator, discriminator):
        if step in snapshot_at:
            with torch.no_grad():
                snapshots[step] = generator(noise)

    config = GANConfig(steps=steps, batch_size=64, lr=5e-3)
    history = fit_gan(
        gen,
        disc,
        real,
        config=config,
        loss=kind,
        rng=seed + 2,
        on_step_end=keep,
    )
    return gen, disc, history, snapshots


def test_fit_gan_is_deterministic_under_a_seed_and_records_every_step():
    _, _, h1, s1 = small_run("non_saturating")
    _, _, h2, s2 = small_run("non_saturating")
    assert isinstance(h1, History) and h1 == h2
    assert len(h1.loss) == 30
    for name in ("d_loss", "d_real", "d_fake", "g_grad_norm", "g_step"):
        assert len(h1.logs[name]) == 30
    assert sorted(s1) == [0, 10, 30] and s1[30].shape == (50, 3)
    assert torch.equal(s1[30], s2[30])


def test_fit_gan_logs_what_on_step_end_returns():
    gen, disc, real = small_setup()
    history = fit_gan(
        gen,
        disc,
        real,
        config=GANConfig(steps=3, batch_size=16),
        rng=0,
        on_step_end=lambda step, g, d: {"step": step},
    )
    assert history.logs["step"] == [1.0, 2.0, 3.0]


def test_both_losses_start_alike_and_differ_in_the_generator_gradient():
    _, _, sat, _ = small_run("saturating", steps=3)
    _, _, non_sat, _ = small_run("non_saturating", steps=3)
    assert sat.logs["d_loss"][0] == non_sat.logs["d_loss"][0]
    assert sat.logs["d_fake"][0] == non_sat.logs["d_fake"][0]
    # With D(G(z)) below 1/2, the saturating gradient (weights D) is the
    # smaller one.
    assert sat.logs["d_fake"][0] < 0.5
    assert sat.logs["g_grad_norm"][0] < non_sat.logs["g_grad_norm"][0]


def test_fit_gan_stops_with_an_error_naming_the_learning_rate_on_divergence():
    gen, disc, real = small_setup(pretrain=0)
    with torch.no_grad():
        for p in disc.parameters():
            p.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="step 1 of 5.*lr=0.001"):
        fit_gan(gen, disc, real, config=GANConfig(steps=5), rng=0)


def test_pretraining_makes_the_discriminator_reject_the_untrained_generator():
    d_fake = []
    for steps in (0, 100):
        gen, disc, _ = small_setup(pretrain=steps)
        logits = disc(gen.sample(200, rng=5))
        d_fake.append(torch.sigmoid(logits).mean().item())
    assert d_fake[1] < d_fake[0] and d_fake[1] < 0.2


def test_fit_discriminator_lowers_its_loss_and_leaves_the_generator():
    torch.manual_seed(0)
    gen, disc = Generator(hidden=16), Discriminator(hidden=16)
    before = [p.clone() for p in gen.parameters()]
    real, _ = sample_ternary_phases(300, rng=0)
    history = fit_discriminator(
        disc,
        gen,
        real.float(),
        config=GANConfig(steps=60, batch_size=64, lr=5e-3),
        rng=1,
    )
    losses = history.loss
    assert len(losses) == 60 and sum(losses[-10:]) < sum(losses[:10])
    assert history.logs["d_real"][-1] > history.logs["d_fake"][-1]
    assert all(torch.equal(a, b) for a, b in zip(before, gen.parameters()))


def test_frozen_discriminator_sgd_steps_scale_with_gradient_adam_not():
    gen, disc, _ = small_setup(pretrain=100)
    d_before = [p.clone() for p in disc.parameters()]
    moved = {}
    for optimizer in ("sgd", "adam"):
        for kind in ("saturating", "non_saturating"):
            g = copy.deepcopy(gen)
            config = GANConfig(
                steps=1, lr=1e-3, batch_size=64, optimizer=optimizer
            )
            h = fit_generator(g, disc, config=config, loss=kind, rng=3)
            delta = torch.cat(
                [
                    (a - b).flatten()
                    for a, b in zip(g.parameters(), gen.parameters())
                ]
            )
            moved[optimizer, kind] = (
                delta.norm().item(),
                h.logs["g_grad_norm"][0],
                h.logs["g_step"][0],
                delta.abs().mean().item() / 1e-3,
            )
    assert all(torch.equal(a, b) for a, b in zip(d_before, disc.parameters()))
    # The logged step is the mean parameter change in units of lr.
    for record in moved.values():
        assert record[2] == pytest.approx(record[3], rel=1e-4)
    # Plain SGD: the step is lr times the gradient, so the two losses'
    # steps differ as their gradients do.
    for kind in ("saturating", "non_saturating"):
        assert moved["sgd", kind][0] == pytest.approx(
            1e-3 * moved["sgd", kind][1], rel=1e-4
        )
    assert (
        moved["sgd", "saturating"][0] < 0.5 * moved["sgd", "non_saturating"][0]
    )
    # Adam's first step is lr * sign(gradient) per parameter: the same size
    # for both losses, one learning rate per parameter.
    for kind in ("saturating", "non_saturating"):
        assert moved["adam", kind][2] == pytest.approx(1.0, rel=1e-3)


def test_adam_steps_shrink_when_the_gradient_falls_below_its_remembered_size():
    # Adam divides by the root-mean-square of past gradients: after a
    # hundred steps on a gradient of size 1, a gradient of size 0.01 moves
    # a parameter by about 0.01 learning rates per step, not by one.
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w], lr=1e-3, betas=(0.5, 0.999))
    for scale in [1.0] * 100 + [0.01] * 10:
        before = w.detach().clone()
        w.grad = torch.full((1,), scale)
        opt.step()
    step = (w.detach() - before).abs().item() / 1e-3
    assert 0.005 < step < 0.02


def test_non_saturating_training_moves_the_generator_to_the_data():
    torch.manual_seed(0)
    gen, disc = Generator(hidden=32), Discriminator(hidden=32)
    phase = TERNARY_PHASES[:1]  # one phase: a single mode
    real, _ = sample_ternary_phases(1000, phases=phase, spread=0.1, rng=0)
    real_xy = ternary_to_cartesian(real)
    before = energy_distance(ternary_to_cartesian(gen.sample(500, 2)), real_xy)
    fit_gan(
        gen,
        disc,
        real.float(),
        config=GANConfig(steps=200, batch_size=128, lr=2e-3),
        rng=1,
    )
    after = energy_distance(ternary_to_cartesian(gen.sample(500, 2)), real_xy)
    assert after < 0.5 * before


# ---------------------------------------------------------------------------
# Error messages
# ---------------------------------------------------------------------------


def test_generator_loss_rejects_an_unknown_kind_and_non_tensor_logits():
    with pytest.raises(
        ValueError,
        match=(
            r"kind must be one of \('saturating', 'non_saturating'\); got"
            r" 'minimax'"
        ),
    ):
        generator_loss(torch.zeros(3), "minimax")
    with pytest.raises(
        ValueError, match="fake_logits must be a floating-point torch.Tensor"
    ):
        generator_loss([0.0, 1.0])
    with pytest.raises(ValueError, match="fake_logits is empty"):
        generator_loss(torch.zeros(0))
    with pytest.raises(ValueError, match="reduction must be one of"):
        generator_loss(torch.zeros(3), reduction="max")


def test_discriminator_loss_rejects_reduction_none_and_integer_logits():
    with pytest.raises(
        ValueError, match="reduction must be 'mean' or 'sum'.*got 'none'"
    ):
        discriminator_loss(torch.zeros(3), torch.zeros(2), reduction="none")
    with pytest.raises(
        ValueError,
        match=(
            "real_logits must be a floating-point torch.Tensor.*dtype"
            " torch.int64"
        ),
    ):
        discriminator_loss(torch.zeros(3, dtype=torch.long), torch.zeros(2))


def test_metrics_reject_bad_input_with_messages():
    x = torch.zeros(4, 2)
    with pytest.raises(
        ValueError,
        match="x and y must have the same number of columns; got 2 and 3",
    ):
        energy_distance(x, torch.zeros(4, 3))
    with pytest.raises(
        ValueError,
        match=(
            r"y must have shape \(N,\) or \(N, d\) with N >= 1; got \(0, 2\)"
        ),
    ):
        energy_distance(x, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        energy_distance(torch.tensor([0.0, float("nan")]), torch.zeros(2))
    with pytest.raises(
        ValueError, match="radius must be a positive finite number; got -0.1"
    ):
        mode_counts(x, x, radius=-0.1)
    with pytest.raises(
        ValueError, match="min_count must be an integer >= 1; got 0"
    ):
        modes_covered(x, x, radius=0.1, min_count=0)
    with pytest.raises(
        ValueError,
        match="samples and centres must have the same number of columns",
    ):
        mode_counts(x, torch.zeros(2, 3), radius=0.1)


def test_data_helpers_reject_bad_input_with_messages():
    with pytest.raises(
        ValueError,
        match=(r"compositions must have shape \(\.\.\., 3\); got \(4, 2\)"),
    ):
        ternary_to_cartesian(torch.zeros(4, 2))
    with pytest.raises(
        ValueError, match="phases must hold positive fractions that sum to one"
    ):
        sample_ternary_phases(5, phases=torch.tensor([[0.5, 0.6, -0.1]]))
    with pytest.raises(
        ValueError, match="spread must be a positive finite number; got 0"
    ):
        sample_ternary_phases(5, spread=0)
    with pytest.raises(ValueError, match="n must be an integer >= 0; got -1"):
        sample_ternary_phases(-1)


def test_trainers_reject_bad_arguments_with_messages():
    gen, disc = Generator(hidden=4), Discriminator(hidden=4)
    real = torch.rand(10, 3)
    config = GANConfig(steps=1, batch_size=4)
    with pytest.raises(
        ValueError, match="loss must be one of .*got 'wasserstein'"
    ):
        fit_gan(gen, disc, real, config=config, loss="wasserstein")
    with pytest.raises(
        ValueError,
        match=r"real must be a non-empty floating-point tensor of samples "
        r"of shape \(N, 3\); got shape \(10,\)",
    ):
        fit_gan(gen, disc, real[:, 0], config=config)
    with pytest.raises(ValueError, match="real contains NaN"):
        fit_gan(gen, disc, torch.full((10, 3), math.nan), config=config)
    with pytest.raises(ValueError, match="config must be a GANConfig"):
        fit_gan(gen, disc, real, config={"steps": 1})
    with pytest.raises(ValueError, match="generator must be a Generator"):
        fit_discriminator(disc, disc, real, config=config)
    with pytest.raises(
        ValueError, match="steps must be an integer >= 0; got 1.5"
    ):
        GANConfig(steps=1.5)
    with pytest.raises(
        ValueError, match="optimizer must be 'adam' or 'sgd'; got 'rmsprop'"
    ):
        GANConfig(steps=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="betas must be a pair"):
        GANConfig(steps=1, betas=(0.5, 1.0))
    with pytest.raises(
        ValueError, match="lr must be a positive finite number; got -1"
    ):
        GANConfig(steps=1, lr=-1)
    with pytest.raises(
        ValueError, match="latent_dim must be an integer >= 1; got 0"
    ):
        Generator(latent_dim=0)


def test_gan_config_is_frozen():
    config = GANConfig(steps=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 4

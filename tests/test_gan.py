"""xentlib.gan: the two generator losses, the discriminator's cross-entropy, the data, the metrics and the loop."""

import copy
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
    Generator,
    discriminator_loss,
    energy_distance,
    generator_loss,
    mode_counts,
    modes_covered,
    pretrain_discriminator,
    sample_ternary_phases,
    ternary_to_cartesian,
    train_gan,
    train_generator_against_fixed_discriminator,
)


@pytest.fixture(autouse=True)
def one_thread():
    # The networks here are tiny: one thread is faster than several that wait on each other.
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


def test_saturating_loss_is_log_one_minus_d_and_non_saturating_is_minus_log_d():
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
    # rtol 1e-8: above a logit of 20 torch's softplus is the identity, whose slope 1 is sigmoid(20) to 2e-9.
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


def test_saturating_gradient_vanishes_when_the_discriminator_rejects_while_non_saturating_does_not():
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
        assert gradcheck(lambda x: generator_loss(x, kind), (logits,))


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


@settings(max_examples=50, deadline=None)
@given(st.floats(-60, 60))
def test_both_generator_losses_push_every_fake_logit_up(logit):
    # Both ask the generator to fool D: descent raises the logit, so the derivative is negative everywhere.
    x = torch.tensor([logit], dtype=torch.float64)
    assert grad_wrt_logits(x, "saturating").item() < 0
    assert grad_wrt_logits(x, "non_saturating").item() < 0


# ---------------------------------------------------------------------------
# The discriminator's loss
# ---------------------------------------------------------------------------


def test_discriminator_loss_is_bce_on_real_as_one_plus_bce_on_fake_as_zero_with_unequal_batches():
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


def test_optimal_discriminator_is_the_density_ratio_and_its_loss_is_ln4_minus_twice_js():
    # Four points; the real batch holds point k 10 p_k times, the fake batch 10 q_k times,
    # so the batch means are the expectations under p and q.
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
    x, labels = sample_ternary_phases(
        500, generator=torch.Generator().manual_seed(3)
    )
    y, labels2 = sample_ternary_phases(
        500, generator=torch.Generator().manual_seed(3)
    )
    assert x.shape == (500, 3) and labels.shape == (500,)
    assert bool((x >= 0).all())
    torch.testing.assert_close(x.sum(1), torch.ones(500, dtype=torch.float64))
    assert torch.equal(x, y) and torch.equal(labels, labels2)
    assert set(labels.tolist()) == set(range(len(TERNARY_PHASES)))


def test_phase_samples_cluster_at_their_phase_with_the_log_ratio_spread():
    x, labels = sample_ternary_phases(
        20000, spread=0.1, generator=torch.Generator().manual_seed(4)
    )
    clr = x.log() - x.log().mean(
        1, keepdim=True
    )  # centred log-ratios: Gaussian around those of the phase
    centre_clr = TERNARY_PHASES.log() - TERNARY_PHASES.log().mean(
        1, keepdim=True
    )
    resid = clr - centre_clr[labels]
    assert resid.mean(0).abs().max() < 0.005
    # Projected onto the plane sum = 0, isotropic noise of s.d. 0.1 keeps variance 0.01 * (2/3) per coordinate.
    torch.testing.assert_close(
        resid.var(0),
        torch.full((3,), 0.01 * 2 / 3, dtype=torch.float64),
        rtol=0.05,
        atol=0,
    )


def test_ternary_to_cartesian_maps_corners_to_the_unit_triangle_and_scales_distances_by_one_over_sqrt2():
    corners = ternary_to_cartesian(torch.eye(3, dtype=torch.float64))
    expected = torch.tensor(
        [[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64
    )
    torch.testing.assert_close(corners, expected)
    x, _ = sample_ternary_phases(
        50, spread=0.5, generator=torch.Generator().manual_seed(5)
    )
    torch.testing.assert_close(
        torch.cdist(ternary_to_cartesian(x), ternary_to_cartesian(x)),
        torch.cdist(x, x) / math.sqrt(2),
    )


def test_generator_outputs_compositions_and_discriminator_one_logit_per_sample():
    torch.manual_seed(0)
    gen, disc = Generator(latent_dim=3, hidden=8), Discriminator(hidden=8)
    x = gen.sample(20, torch.Generator().manual_seed(0))
    assert x.shape == (20, 3) and bool((x >= 0).all())
    torch.testing.assert_close(x.sum(1), torch.ones(20))
    assert disc(x).shape == (20,)
    torch.testing.assert_close(
        x, gen.sample(20, torch.Generator().manual_seed(0))
    )


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


def test_energy_distance_is_zero_for_identical_samples_small_for_the_same_law_and_grows_with_a_shift():
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


def test_mode_counts_assigns_samples_to_their_nearest_centre_within_the_radius():
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
    x, _ = sample_ternary_phases(
        2000, spread=0.1, generator=torch.Generator().manual_seed(9)
    )
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
    real, _ = sample_ternary_phases(
        500, generator=torch.Generator().manual_seed(seed)
    )
    real = real.float()
    pretrain_discriminator(
        disc,
        gen,
        real,
        steps=pretrain,
        batch_size=64,
        lr=5e-3,
        rng=torch.Generator().manual_seed(seed + 1),
    )
    return gen, disc, real


def small_run(kind, steps=30, seed=0, pretrain=50):
    gen, disc, real = small_setup(seed, pretrain)
    history = train_gan(
        gen,
        disc,
        real,
        steps=steps,
        loss=kind,
        batch_size=64,
        lr=5e-3,
        snapshot_steps=(10, steps),
        snapshot_size=50,
        rng=torch.Generator().manual_seed(seed + 2),
    )
    return gen, disc, history


def test_train_gan_is_deterministic_under_a_seed_and_records_every_step():
    _, _, h1 = small_run("non_saturating")
    _, _, h2 = small_run("non_saturating")
    assert h1.g_grad_norm == h2.g_grad_norm and h1.d_loss == h2.d_loss
    for name in ("d_loss", "g_loss", "g_grad_norm", "d_real", "d_fake"):
        assert len(getattr(h1, name)) == 30
    assert sorted(h1.snapshots) == [0, 10, 30]
    assert h1.snapshots[30].shape == (50, 3)
    assert torch.equal(h1.snapshots[30], h2.snapshots[30])


def test_both_losses_start_from_the_same_state_and_differ_only_in_the_generator_gradient():
    _, _, sat = small_run("saturating", steps=3)
    _, _, non_sat = small_run("non_saturating", steps=3)
    assert (
        sat.d_fake[0] == non_sat.d_fake[0]
        and sat.d_loss[0] == non_sat.d_loss[0]
    )
    assert torch.equal(sat.snapshots[0], non_sat.snapshots[0])
    # With D(G(z)) below 1/2, the saturating gradient (weights D) is the smaller one.
    assert sat.d_fake[0] < 0.5 and sat.g_grad_norm[0] < non_sat.g_grad_norm[0]


def test_pretraining_makes_the_discriminator_reject_the_untrained_generator():
    d_fake = []
    for steps in (0, 100):
        gen, disc, _ = small_setup(pretrain=steps)
        logits = disc(gen.sample(200, torch.Generator().manual_seed(5)))
        d_fake.append(torch.sigmoid(logits).mean().item())
    assert d_fake[1] < d_fake[0] and d_fake[1] < 0.2


def test_pretrain_discriminator_lowers_its_cross_entropy_and_leaves_the_generator_alone():
    torch.manual_seed(0)
    gen, disc = Generator(hidden=16), Discriminator(hidden=16)
    before = [p.clone() for p in gen.parameters()]
    real, _ = sample_ternary_phases(
        300, generator=torch.Generator().manual_seed(0)
    )
    losses = pretrain_discriminator(
        disc,
        gen,
        real.float(),
        steps=60,
        batch_size=64,
        lr=5e-3,
        rng=torch.Generator().manual_seed(1),
    )
    assert len(losses) == 60 and sum(losses[-10:]) < sum(losses[:10])
    assert all(torch.equal(a, b) for a, b in zip(before, gen.parameters()))


def test_against_a_frozen_discriminator_sgd_steps_scale_with_the_gradient_and_adam_steps_do_not():
    gen, disc, _ = small_setup(pretrain=100)
    d_before = [p.clone() for p in disc.parameters()]
    moved = {}
    for optimizer in ("sgd", "adam"):
        for kind in ("saturating", "non_saturating"):
            g = copy.deepcopy(gen)
            h = train_generator_against_fixed_discriminator(
                g,
                disc,
                steps=1,
                loss=kind,
                optimizer=optimizer,
                lr=1e-3,
                batch_size=64,
                rng=torch.Generator().manual_seed(3),
            )
            step = (
                torch.cat(
                    [
                        (a - b).flatten()
                        for a, b in zip(g.parameters(), gen.parameters())
                    ]
                )
                .norm()
                .item()
            )
            moved[optimizer, kind] = (step, h.g_grad_norm[0])
    assert all(torch.equal(a, b) for a, b in zip(d_before, disc.parameters()))
    # Plain SGD: the step is lr times the gradient, so the two losses' steps differ as their gradients do.
    for kind in ("saturating", "non_saturating"):
        assert moved["sgd", kind][0] == pytest.approx(
            1e-3 * moved["sgd", kind][1], rel=1e-4
        )
    assert (
        moved["sgd", "saturating"][0] < 0.5 * moved["sgd", "non_saturating"][0]
    )
    # Adam's first step is lr * sign(gradient) per parameter: the same size for both losses.
    assert moved["adam", "saturating"][0] == pytest.approx(
        moved["adam", "non_saturating"][0], rel=1e-3
    )


def test_training_with_the_non_saturating_loss_moves_the_generator_toward_the_data():
    torch.manual_seed(0)
    gen, disc = Generator(hidden=32), Discriminator(hidden=32)
    phase = TERNARY_PHASES[:1]  # one phase: a single mode
    real, _ = sample_ternary_phases(
        1000,
        phases=phase,
        spread=0.1,
        generator=torch.Generator().manual_seed(0),
    )
    h = train_gan(
        gen,
        disc,
        real.float(),
        steps=200,
        batch_size=128,
        lr=2e-3,
        snapshot_steps=(200,),
        snapshot_size=500,
        rng=torch.Generator().manual_seed(1),
    )
    before = energy_distance(
        ternary_to_cartesian(h.snapshots[0]), ternary_to_cartesian(real)
    )
    after = energy_distance(
        ternary_to_cartesian(h.snapshots[200]), ternary_to_cartesian(real)
    )
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
        match=(
            r"compositions must be a tensor of shape \(\.\.\., 3\); got"
            r" \(4, 2\)"
        ),
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


def test_train_gan_rejects_bad_arguments_with_messages():
    gen, disc = Generator(hidden=4), Discriminator(hidden=4)
    real = torch.rand(10, 3)
    with pytest.raises(
        ValueError, match="loss must be one of .*got 'wasserstein'"
    ):
        train_gan(gen, disc, real, steps=1, loss="wasserstein")
    with pytest.raises(
        ValueError,
        match=(
            r"real must be a non-empty tensor of samples of shape \(N, D\);"
            r" got \(10,\)"
        ),
    ):
        train_gan(gen, disc, real[:, 0], steps=1)
    with pytest.raises(
        ValueError, match="steps must be an integer >= 0; got 1.5"
    ):
        train_gan(gen, disc, real, steps=1.5)
    with pytest.raises(
        ValueError, match="optimizer must be 'adam' or 'sgd'; got 'rmsprop'"
    ):
        train_gan(gen, disc, real, steps=1, optimizer="rmsprop")
    with pytest.raises(
        ValueError, match="latent_dim must be an integer >= 1; got 0"
    ):
        Generator(latent_dim=0)
    with pytest.raises(
        ValueError, match="optimizer must be 'adam' or 'sgd'; got 'lbfgs'"
    ):
        train_generator_against_fixed_discriminator(
            gen, disc, steps=1, optimizer="lbfgs"
        )
    with pytest.raises(
        ValueError, match="lr must be a positive finite number; got -1"
    ):
        pretrain_discriminator(disc, gen, real, steps=1, lr=-1)

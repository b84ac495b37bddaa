"""xentlib.physics: variational energies against closed forms, Boltzmann
identities, Langevin's stationary law."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special
from torch.autograd import gradcheck

import xentlib
from xentlib.physics import (
    boltzmann,
    boltzmann_bin_probabilities,
    free_energy,
    heat_capacity,
    langevin_sample,
    log_partition,
    minimize_energy,
    simpson,
    tilted_double_well,
    variational_energy,
)

F64 = torch.float64
LINE = torch.linspace(-12.0, 12.0, 2401, dtype=F64)
RADIUS = torch.linspace(0.0, 40.0, 8001, dtype=F64)


def _gaussian(log_a):
    return lambda x: torch.exp(-torch.exp(log_a) * x**2)


def _oscillator(log_a):
    return variational_energy(_gaussian(log_a), LINE, lambda x: 0.5 * x**2)


def _hydrogen(log_a):
    return variational_energy(
        _gaussian(log_a), RADIUS, lambda r: -1.0 / r, radial=True
    )


# Closed forms (atomic units) for the Gaussian trial exp(-a x^2), written
# independently of the module.
def _oscillator_exact(a):
    return a / 2 + 1 / (8 * a)


def _hydrogen_exact(a):
    return 1.5 * a - 2 * math.sqrt(2 * a / math.pi)


def _t(value):
    return torch.tensor(value, dtype=F64)


# --- quadrature and the variational principle -------------------------------


def test_simpson_matches_scipy_and_is_exact_for_cubics():
    x = torch.linspace(-1.0, 2.0, 11, dtype=F64)
    y = torch.stack([torch.sin(3 * x) * torch.exp(x), 2 * x**3 - x + 1])
    expected = integrate.simpson(y.numpy(), x=x.numpy(), axis=-1)
    np.testing.assert_allclose(simpson(y, x).numpy(), expected, rtol=1e-13)
    assert simpson(y[1], x).item() == pytest.approx(
        2 * (16 - 1) / 4 - (4 - 1) / 2 + 3, rel=1e-13
    )


@pytest.mark.parametrize("a", [0.15, 0.5, 1.3, 3.0])
def test_oscillator_energy_by_quadrature_matches_the_closed_form(a):
    assert _oscillator(_t(math.log(a))).item() == pytest.approx(
        _oscillator_exact(a), abs=1e-10
    )


@pytest.mark.parametrize("a", [0.15, 8 / (9 * math.pi), 1.3, 3.0])
def test_hydrogen_energy_by_quadrature_matches_the_closed_form(a):
    assert _hydrogen(_t(math.log(a))).item() == pytest.approx(
        _hydrogen_exact(a), abs=1e-8
    )


def test_exact_ground_states_give_the_exact_energies():
    # A Gaussian of width 1/2 is the oscillator's ground state; exp(-r) is
    # hydrogen's.
    assert _oscillator(_t(math.log(0.5))).item() == pytest.approx(
        0.5, abs=1e-13
    )
    e = variational_energy(
        lambda r: torch.exp(-r), RADIUS, lambda r: -1.0 / r, radial=True
    )
    assert e.item() == pytest.approx(-0.5, abs=1e-8)


def test_energy_ignores_the_normalisation_of_the_trial():
    scaled = variational_energy(
        lambda x: 7.0 * torch.exp(-0.8 * x**2), LINE, lambda x: 0.5 * x**2
    )
    assert scaled.item() == pytest.approx(_oscillator_exact(0.8), abs=1e-10)


def test_variational_bound_holds_for_random_widths():
    widths = torch.exp(
        torch.empty(25, dtype=F64).uniform_(
            math.log(0.1),
            math.log(3.0),
            generator=torch.Generator().manual_seed(0),
        )
    )
    for a in widths:
        log_a = a.log()
        assert _oscillator(log_a).item() >= 0.5 - 1e-12
        assert (
            _hydrogen(log_a).item() > -0.5 + 0.07
        )  # the best Gaussian is 0.0756 hartree above


def test_energy_gradient_in_log_width_matches_closed_form_and_gradcheck():
    a = 0.9
    log_a = _t(math.log(a)).requires_grad_(True)
    (grad,) = torch.autograd.grad(_oscillator(log_a), log_a)
    assert grad.item() == pytest.approx(a * (0.5 - 1 / (8 * a**2)), rel=1e-9)
    small = torch.linspace(
        -8.0, 8.0, 401, dtype=F64
    )  # a coarser grid keeps gradcheck fast
    assert gradcheck(
        lambda la: variational_energy(
            _gaussian(la), small, lambda x: 0.5 * x**2
        ),
        (_t(-0.3).requires_grad_(True),),
    )


@pytest.mark.parametrize("case", ["oscillator", "hydrogen"])
def test_minimiser_recovers_the_optimal_width_and_energy(case):
    energy, a_star, e_star = {
        "oscillator": (_oscillator, 0.5, 0.5),
        "hydrogen": (_hydrogen, 8 / (9 * math.pi), -4 / (3 * math.pi)),
    }[case]
    start = _t(math.log(2.0))
    result = minimize_energy(energy, start)
    assert result.energy < energy(start).item()
    assert result.parameter.exp().item() == pytest.approx(a_star, rel=1e-6)
    assert result.energy == pytest.approx(e_star, abs=1e-9)
    log_a = result.parameter.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(log_a), log_a)
    assert abs(grad.item()) < 1e-7


def test_slater_trial_recovers_the_exact_hydrogen_ground_state():
    result = minimize_energy(
        lambda log_a: variational_energy(
            lambda r: torch.exp(-torch.exp(log_a) * r),
            RADIUS,
            lambda r: -1.0 / r,
            radial=True,
        ),
        _t(0.5),
    )
    assert result.parameter.exp().item() == pytest.approx(1.0, rel=1e-6)
    assert result.energy == pytest.approx(-0.5, abs=1e-8)


# --- the Boltzmann distribution ----------------------------------------------


def _energies(n=50, k=7, seed=0, scale=2.0):
    return scale * torch.randn(
        n, k, generator=torch.Generator().manual_seed(seed), dtype=F64
    )


@pytest.mark.parametrize("temperature", [0.05, 1.0, 30.0])
def test_boltzmann_is_the_softmax_of_negative_energies_over_temperature(
    temperature,
):
    e = _energies()
    q = boltzmann(e, temperature)
    torch.testing.assert_close(
        q, torch.softmax(-e / temperature, dim=1), rtol=0, atol=0
    )
    torch.testing.assert_close(
        q.sum(1), torch.ones(len(e), dtype=F64), rtol=0, atol=1e-14
    )
    np.testing.assert_allclose(
        log_partition(e, temperature).numpy(),
        special.logsumexp(-e.numpy() / temperature, axis=1),
        rtol=1e-13,
    )


@settings(max_examples=40, deadline=None)
@given(
    shift=st.floats(-1e3, 1e3),
    temperature=st.floats(0.01, 100.0),
    seed=st.integers(0, 10_000),
)
def test_a_constant_energy_leaves_q_and_shifts_log_z_by_c_over_t(
    shift, temperature, seed
):
    e = _energies(n=4, seed=seed)
    torch.testing.assert_close(
        boltzmann(e + shift, temperature),
        boltzmann(e, temperature),
        rtol=1e-9,
        atol=1e-12,
    )
    expected = log_partition(e, temperature) - shift / temperature
    torch.testing.assert_close(
        log_partition(e + shift, temperature),
        expected,
        rtol=1e-9,
        atol=1e-9 * (1 + abs(shift) / temperature),
    )


def test_cross_entropy_of_boltzmann_logits_is_energy_over_t_plus_log_z():
    e, temperature = _energies(n=200, k=10), 0.7
    y = torch.randint(
        0, 10, (200,), generator=torch.Generator().manual_seed(1)
    )
    ce = xentlib.cross_entropy(-e / temperature, y, reduction="none")
    torch.testing.assert_close(
        ce,
        e[torch.arange(200), y] / temperature + log_partition(e, temperature),
        rtol=1e-12,
        atol=1e-12,
    )
    # Soft targets: H(p, q) = <E>_p / T + ln Z.
    p = torch.softmax(
        torch.randn(
            200, 10, generator=torch.Generator().manual_seed(2), dtype=F64
        ),
        dim=1,
    )
    soft = xentlib.cross_entropy(-e / temperature, p, reduction="none")
    torch.testing.assert_close(
        soft,
        (p * e).sum(1) / temperature + log_partition(e, temperature),
        rtol=1e-12,
        atol=1e-12,
    )


def test_free_energy_is_mean_energy_minus_t_entropy_and_a_lower_bound():
    e, temperature = _energies(n=30, k=6), 1.5
    q = boltzmann(e, temperature)
    f = free_energy(e, temperature)
    torch.testing.assert_close(
        f,
        (q * e).sum(1) - temperature * xentlib.entropy(q),
        rtol=1e-12,
        atol=1e-12,
    )
    p = torch.softmax(
        3
        * torch.randn(
            30, 6, generator=torch.Generator().manual_seed(3), dtype=F64
        ),
        dim=1,
    )
    gibbs = (p * e).sum(1) - temperature * xentlib.entropy(p)
    torch.testing.assert_close(
        gibbs - f,
        temperature * xentlib.kl_divergence(p, q),
        rtol=1e-10,
        atol=1e-12,
    )
    assert bool((gibbs >= f).all())


def test_temperature_limits_give_the_argmax_and_the_uniform_distribution():
    e = torch.tensor([0.3, -1.2, 2.0, -0.9], dtype=F64)
    cold = boltzmann(e, 1e-3)
    torch.testing.assert_close(
        cold,
        torch.nn.functional.one_hot(e.argmin(), 4).to(F64),
        rtol=0,
        atol=1e-100,
    )
    hot = boltzmann(e, 1e6)
    torch.testing.assert_close(
        hot, torch.full((4,), 0.25, dtype=F64), rtol=0, atol=1e-6
    )
    assert free_energy(e, 1e-3).item() == pytest.approx(-1.2, abs=1e-12)
    assert math.isfinite(
        log_partition(e.float() * 1e3, 1e-3).item()
    )  # no underflow at logits of -1e6


def test_temperature_broadcasts_along_other_dimensions():
    e = torch.tensor([0.0, 1.0, 3.0], dtype=F64)
    temps = torch.tensor([[0.5], [2.0]], dtype=F64)
    torch.testing.assert_close(
        free_energy(e, temps),
        torch.stack([free_energy(e, 0.5), free_energy(e, 2.0)]),
    )
    torch.testing.assert_close(
        heat_capacity(e, temps)[1], heat_capacity(e, 2.0)
    )


def test_heat_capacity_is_the_temperature_derivative_of_the_mean_energy():
    e = torch.tensor([0.0, 0.4, 1.0, 2.5], dtype=F64)
    t = _t(0.8).requires_grad_(True)
    mean_energy = (boltzmann(e, t) * e).sum()
    (derivative,) = torch.autograd.grad(mean_energy, t)
    assert heat_capacity(e, 0.8).item() == pytest.approx(
        derivative.item(), rel=1e-12
    )


@pytest.mark.parametrize(
    "temperature", [0.0, -1.0, float("nan"), float("inf")]
)
def test_non_positive_or_non_finite_temperature_is_rejected(temperature):
    with pytest.raises(ValueError, match="temperature must be positive"):
        boltzmann(_energies(), temperature)


def test_bad_energies_and_temperature_shapes_are_rejected():
    with pytest.raises(
        ValueError, match="energies must have at least one dimension"
    ):
        log_partition(torch.tensor(1.0), 1.0)
    with pytest.raises(ValueError, match="energies contains NaN"):
        boltzmann(torch.tensor([0.0, float("nan")]), 1.0)
    with pytest.raises(
        ValueError, match="temperature must not vary along dim"
    ):
        boltzmann(torch.zeros(3, 4), torch.ones(4))
    with pytest.raises(ValueError, match="does not broadcast"):
        free_energy(torch.zeros(3, 4), torch.ones(5, 1))


# --- Langevin dynamics -------------------------------------------------------


def test_langevin_repeats_exactly_under_a_seed():
    x0 = torch.linspace(-2, 2, 64, dtype=F64)

    def run(seed):
        return langevin_sample(
            tilted_double_well,
            x0,
            0.4,
            0.01,
            200,
            thin=50,
            rng=seed,
        )

    first = run(0)
    assert first.shape == (4, 64) and not first.requires_grad
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))


def test_zero_temperature_is_plain_gradient_descent():
    x = torch.tensor([-1.7, 0.2, 1.4], dtype=F64)
    out = langevin_sample(tilted_double_well, x, 0.0, 0.02, 30, burn_in=29)
    for _ in range(30):
        x = x - 0.02 * (4 * x * (x**2 - 1) + 0.3)
    torch.testing.assert_close(out[0], x, rtol=1e-13, atol=1e-13)


def test_langevin_on_a_quadratic_has_the_discretised_stationary_variance():
    # For L = k x^2 / 2, x' = (1 - eta k) x + sqrt(2 eta T) xi is stationary
    # with variance T / (k (1 - eta k / 2)): the O(eta) bias of unadjusted
    # Langevin, here 5 % above T / k.
    k, temperature, eta = 2.0, 0.5, 0.05
    x0 = torch.zeros(20_000, dtype=F64)
    samples = langevin_sample(
        lambda x: 0.5 * k * x**2,
        x0,
        temperature,
        eta,
        300,
        burn_in=100,
        thin=20,
        rng=0,
    ).flatten()
    exact = temperature / (k * (1 - eta * k / 2))
    standard_error = exact * math.sqrt(2 / samples.numel())
    assert abs(samples.var().item() - exact) < 4 * standard_error
    assert abs(samples.var().item() - temperature / k) > 8 * standard_error
    assert abs(samples.mean().item()) < 4 * math.sqrt(exact / samples.numel())


def test_two_dimensional_chains_sample_a_gaussian_with_two_curvatures():
    k, eta = torch.tensor([1.0, 4.0], dtype=F64), 0.05
    samples = langevin_sample(
        lambda x: 0.5 * k * x**2,
        torch.zeros(20_000, 2, dtype=F64),
        1.0,
        eta,
        100,
        burn_in=99,
        rng=1,
    )[0]
    exact = 1.0 / (k * (1 - eta * k / 2))
    np.testing.assert_allclose(
        samples.var(0).numpy(), exact.numpy(), rtol=0.04
    )
    assert abs(np.corrcoef(samples.T.numpy())[0, 1]) < 0.03


def test_langevin_samples_the_double_well_density():
    edges = torch.linspace(-2.5, 2.5, 26, dtype=F64)
    target = boltzmann_bin_probabilities(tilted_double_well, edges, 1.0)
    x0 = torch.linspace(-2, 2, 4000, dtype=F64)
    samples = langevin_sample(
        tilted_double_well,
        x0,
        1.0,
        0.005,
        1200,
        burn_in=400,
        thin=40,
        rng=2,
    ).flatten()
    hist = torch.histogram(samples, edges).hist / samples.numel()
    assert 0.5 * (hist - target).abs().sum().item() < 0.03


def test_bin_probabilities_match_scipy_quadrature():
    edges = torch.linspace(-2.0, 2.0, 9, dtype=F64)
    got = boltzmann_bin_probabilities(tilted_double_well, edges, 0.3)

    def density(x):
        return math.exp(-((x * x - 1) ** 2 + 0.3 * x) / 0.3)

    bins = zip(edges[:-1].tolist(), edges[1:].tolist())
    mass = np.array(
        [
            integrate.quad(density, a, b, epsabs=0, epsrel=1e-12)[0]
            for a, b in bins
        ]
    )
    np.testing.assert_allclose(
        got.numpy(), mass / mass.sum(), rtol=0, atol=1e-6
    )
    finer = boltzmann_bin_probabilities(
        tilted_double_well, edges, 0.3, points_per_bin=512
    )
    np.testing.assert_allclose(finer.numpy(), mass / mass.sum(), rtol=1e-8)


def test_bin_probabilities_add_up_over_merged_bins_with_uneven_edges():
    fine = boltzmann_bin_probabilities(
        tilted_double_well, torch.linspace(-3.0, 3.0, 13, dtype=F64), 0.5
    )
    coarse = boltzmann_bin_probabilities(
        tilted_double_well,
        torch.tensor([-3.0, -1.0, 0.5, 3.0], dtype=F64),
        0.5,
        points_per_bin=64,
    )
    torch.testing.assert_close(
        coarse,
        torch.stack([fine[:4].sum(), fine[4:7].sum(), fine[7:].sum()]),
        rtol=1e-6,
        atol=1e-9,
    )


def test_bad_langevin_and_quadrature_arguments_are_rejected():
    x0 = torch.zeros(3, dtype=F64)
    with pytest.raises(
        ValueError, match="step_size must be a finite positive number"
    ):
        langevin_sample(tilted_double_well, x0, 1.0, 0.0, 10)
    with pytest.raises(
        ValueError,
        match="temperature must be a number or a schedule of n_steps=10",
    ):
        langevin_sample(tilted_double_well, x0, [1.0, 0.5], 0.1, 10)
    with pytest.raises(
        ValueError, match="temperature must be a finite number >= 0"
    ):
        langevin_sample(tilted_double_well, x0, -1.0, 0.1, 10)
    with pytest.raises(
        ValueError, match="burn_in must be smaller than n_steps=10"
    ):
        langevin_sample(tilted_double_well, x0, 1.0, 0.1, 10, burn_in=10)
    with pytest.raises(ValueError, match="odd number"):
        simpson(torch.ones(4), torch.linspace(0, 1, 4))
    with pytest.raises(ValueError, match="uniformly spaced"):
        simpson(torch.ones(3), torch.tensor([0.0, 0.1, 1.0]))
    with pytest.raises(ValueError, match="grid must start at r >= 0"):
        variational_energy(torch.exp, LINE, lambda r: -1 / r, radial=True)
    with pytest.raises(
        ValueError, match="psi must return one floating-point amplitude"
    ):
        variational_energy(lambda x: x.sum(), LINE, lambda x: x**2)
    with pytest.raises(
        ValueError, match="temperature must be a finite positive number"
    ):
        boltzmann_bin_probabilities(
            tilted_double_well, torch.linspace(-1, 1, 5), 0.0
        )
    with pytest.raises(ValueError, match="edges must be strictly increasing"):
        boltzmann_bin_probabilities(
            tilted_double_well, torch.tensor([0.0, 1.0, 0.5]), 1.0
        )


def test_an_int_seed_and_a_seeded_generator_give_the_same_chain():
    x0 = torch.zeros(8, dtype=F64)
    by_int = langevin_sample(tilted_double_well, x0, 0.5, 0.01, 20, rng=3)
    by_generator = langevin_sample(
        tilted_double_well,
        x0,
        0.5,
        0.01,
        20,
        rng=torch.Generator().manual_seed(3),
    )
    assert torch.equal(by_int, by_generator)
    torch.manual_seed(3)
    assert torch.equal(
        by_int, langevin_sample(tilted_double_well, x0, 0.5, 0.01, 20)
    )


def test_sgld_with_a_minibatch_loss_samples_a_gaussian_posterior():
    # Data y_i ~ N(mu, 1), prior mu ~ N(0, 10^2): the posterior is Gaussian
    # with precision n + 1/100. The loss draws a fresh minibatch at each
    # call, scaled up to the whole data set: stochastic gradient Langevin.
    g = torch.Generator().manual_seed(0)
    y = 1.5 + torch.randn(400, generator=g, dtype=F64)
    precision = len(y) + 1 / 100
    mean = y.sum().item() / precision
    batches = torch.Generator().manual_seed(1)

    def minibatch_energy(mu):  # mu: (chains,)
        idx = torch.randint(0, len(y), (mu.shape[0] * 50,), generator=batches)
        batch = y.index_select(0, idx).view(-1, 50)
        fit = 0.5 * ((batch - mu[:, None]) ** 2).sum(1) * len(y) / 50
        return fit + mu**2 / 200

    samples = langevin_sample(
        minibatch_energy,
        torch.full((2000,), y.mean().item(), dtype=F64),  # from the MLE
        1.0,
        2.5e-5,
        300,
        burn_in=299,
        rng=2,
    )[0]
    assert samples.mean().item() == pytest.approx(mean, abs=0.004)
    # The minibatch noise adds eta^2 n^2 / B per step to the injected 2 eta:
    # 4 % more variance here (it would double at eta = 6e-4).
    assert samples.var().item() == pytest.approx(1 / precision, rel=0.12)


def test_a_too_large_step_stops_langevin_with_an_error_naming_it():
    with pytest.raises(FloatingPointError, match=r"step_size=2"):
        langevin_sample(
            tilted_double_well, torch.tensor([2.0]), 0.1, 2.0, 50, rng=0
        )


def test_minimize_energy_stops_on_a_non_finite_energy():
    with pytest.raises(FloatingPointError, match="energy"):
        minimize_energy(lambda t: torch.log(t).sum() * 0 + t.sum() / 0, [1.0])


def test_the_minimiser_result_is_a_frozen_dataclass():
    import dataclasses

    result = minimize_energy(lambda t: (t**2).sum(), [1.0])
    assert dataclasses.is_dataclass(result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.energy = 0.0


def test_forbidden_states_are_exact_and_all_forbidden_is_rejected():
    e = torch.tensor([0.0, math.inf, 1.0], dtype=F64)
    q = boltzmann(e, 1.0)
    assert q[1].item() == 0.0
    torch.testing.assert_close(
        q[[0, 2]], boltzmann(torch.tensor([0.0, 1.0], dtype=F64), 1.0)
    )
    with pytest.raises(ValueError, match="at least one finite energy"):
        boltzmann(torch.full((3,), math.inf), 1.0)
    with pytest.raises(ValueError, match="at least one state"):
        log_partition(torch.zeros(2, 0), 1.0)
    with pytest.raises(ValueError, match="dim must index"):
        free_energy(torch.zeros(3), 1.0, dim=True)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        boltzmann(torch.zeros(3), True)


def test_non_finite_positions_and_vanishing_trials_are_rejected():
    with pytest.raises(ValueError, match="x contains NaN"):
        tilted_double_well(torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="tilt must be a finite number"):
        tilted_double_well(torch.tensor([0.0]), tilt=math.nan)
    with pytest.raises(ValueError, match="x0 contains NaN or infinite"):
        langevin_sample(tilted_double_well, [0.0, math.inf], 1.0, 0.1, 5)
    with pytest.raises(ValueError, match="psi must not vanish"):
        variational_energy(torch.zeros_like, LINE, lambda x: x**2)
    with pytest.raises(ValueError, match="potential must be finite"):
        variational_energy(
            torch.exp, LINE, lambda x: torch.full_like(x, math.nan)
        )
    with pytest.raises(ValueError, match="y contains NaN"):
        simpson(torch.tensor([0.0, math.nan, 1.0]), torch.linspace(0, 1, 3))

"""Tests of xentlib.vae: the fingerprint data, the VAE's loss terms, its
trainer, Tanimoto similarity and its baseline."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import jaccard_score
from torch.autograd import gradcheck

from xentlib import data_path
from xentlib.training import History, TrainConfig
from xentlib.vae import (
    ELBOTerms,
    FingerprintVAE,
    VAEConfig,
    best_constant_fingerprint,
    elbo_terms,
    fit_vae,
    gaussian_kl,
    load_solubility_fingerprints,
    negative_elbo,
    pairwise_tanimoto,
    reconstruction_loss,
    reparameterize,
    tanimoto_similarity,
)


def random_bits(n, d, p, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=gen, dtype=torch.float64) < p).to(
        torch.float64
    )


# ------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def solubility():
    return load_solubility_fingerprints()


def test_solubility_fingerprints_have_the_documented_shapes_and_split(
    solubility,
):
    fp = solubility.fingerprints
    assert fp.shape == (1282, 2048) and fp.dtype == np.uint8
    assert set(np.unique(fp)) == {0, 1}
    assert int(solubility.is_test.sum()) == 257
    assert (
        solubility.aromatic_rings.min() == 0
        and solubility.heavy_atoms.min() >= 1
    )
    assert solubility.class_names == ("low", "medium", "high")
    assert (
        len(solubility.smiles)
        == len(solubility.names)
        == len(solubility.solubility)
        == 1282
    )
    assert 0.005 < fp.mean() < 0.02  # sparse: about 1 % of the bits are set
    assert fp.sum(1).min() >= 1


def test_solubility_classes_follow_the_log_solubility_thresholds(solubility):
    s, c = solubility.solubility, solubility.sol_class
    np.testing.assert_array_equal(
        c, np.where(s <= -3, 0, np.where(s <= -1, 1, 2))
    )


def test_solubility_file_matches_the_checksum_in_its_data_card():
    card = data_path("solubility_fingerprints.md").read_text()
    digest = hashlib.sha256(
        data_path("solubility_fingerprints.npz").read_bytes()
    ).hexdigest()
    assert digest in re.findall(r"[0-9a-f]{64}", card)


# ------------------------------------------------------------- loss terms


def test_gaussian_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(20, 5, generator=gen, dtype=torch.float64) * 2
    logvar = torch.randn(20, 5, generator=gen, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(
        gaussian_kl(mu, logvar, reduction="none"),
        expected,
        rtol=1e-12,
        atol=1e-12,
    )
    torch.testing.assert_close(
        gaussian_kl(mu, logvar), expected.mean(), rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(
        gaussian_kl(mu, logvar, reduction="sum"),
        expected.sum(),
        rtol=1e-12,
        atol=1e-12,
    )


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[-1.0, 0.3, 0.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(
        200_000, 3, generator=gen, dtype=torch.float64
    )
    log_q = (
        torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
        .log_prob(z)
        .sum(1)
    )
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    estimate = (log_q - log_p).mean()
    assert abs(estimate.item() - gaussian_kl(mu, logvar).item()) < 0.02


def test_gaussian_kl_is_zero_only_at_the_standard_normal():
    zeros = torch.zeros(3, 4)
    assert gaussian_kl(zeros, zeros).item() == 0.0
    assert gaussian_kl(zeros + 0.1, zeros).item() > 0
    assert gaussian_kl(zeros, zeros - 0.1).item() > 0


def test_reconstruction_loss_is_bce_from_logits_summed_over_bits():
    x = random_bits(6, 50, 0.2, seed=2)
    logits = (
        torch.randn(
            6,
            50,
            generator=torch.Generator().manual_seed(3),
            dtype=torch.float64,
        )
        * 3
    )
    expected = F.binary_cross_entropy_with_logits(
        logits, x, reduction="none"
    ).sum(1)
    torch.testing.assert_close(
        reconstruction_loss(logits, x, reduction="none"), expected
    )
    torch.testing.assert_close(reconstruction_loss(logits, x), expected.mean())
    torch.testing.assert_close(
        reconstruction_loss(logits, x, reduction="sum"), expected.sum()
    )


def test_reconstruction_gradient_wrt_logits_is_sigmoid_minus_target():
    x = random_bits(8, 64, 0.1, seed=4)
    logits = (
        torch.randn(
            8,
            64,
            generator=torch.Generator().manual_seed(5),
            dtype=torch.float64,
        )
        * 4
    )
    logits.requires_grad_(True)
    (grad,) = torch.autograd.grad(
        reconstruction_loss(logits, x, reduction="sum"), logits
    )
    torch.testing.assert_close(
        grad, torch.sigmoid(logits.detach()) - x, rtol=0, atol=1e-14
    )
    # The mean over fingerprints divides the same gradient by the batch size.
    (grad_mean,) = torch.autograd.grad(reconstruction_loss(logits, x), logits)
    torch.testing.assert_close(grad_mean, grad / 8, rtol=0, atol=1e-15)


def test_reconstruction_loss_is_finite_and_exact_for_extreme_logits():
    logits = torch.tensor([[1e4, -1e4, 1e4, -1e4]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
    # Two right bits cost nothing; two bits wrong by 1e4 each cost 1e4 nats.
    assert reconstruction_loss(logits, x).item() == pytest.approx(
        2e4, rel=1e-12
    )


def test_reconstruction_loss_is_exact_at_infinite_logits():
    inf = math.inf
    logits = torch.tensor(
        [[-inf, inf, inf, -inf, inf, -inf]], dtype=torch.float64
    ).requires_grad_()
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.25, 0.25]], dtype=torch.float64)
    per_bit = [
        reconstruction_loss(logits[:, [j]], x[:, [j]]).item() for j in range(6)
    ]
    # Right and certain costs nothing; wrong and certain costs infinity.
    assert per_bit == [0.0, 0.0, inf, inf, inf, inf]
    (grad,) = torch.autograd.grad(
        reconstruction_loss(logits, x, reduction="sum"), logits
    )
    # The limit of sigmoid(logit) - x at each infinite logit.
    expected = torch.tensor([[0.0, 0.0, 1.0, -1.0, 0.75, -0.25]])
    torch.testing.assert_close(grad, expected.double())
    right = logits.detach()[:, :2]
    assert reconstruction_loss(right, x[:, :2]).item() == 0.0


def test_reconstruction_loss_rejects_nan_logits_and_targets():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="logits contains NaN"):
        reconstruction_loss(torch.full((2, 3), math.nan), x)
    with pytest.raises(ValueError, match="target contains NaN"):
        reconstruction_loss(x, torch.full((2, 3), math.nan))


def test_reparameterize_is_mu_plus_sigma_times_standard_normal_noise():
    mu = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, math.log(4.0)]], dtype=torch.float64)
    eps = torch.randn(
        1, 2, generator=torch.Generator().manual_seed(3)
    ).double()
    torch.testing.assert_close(
        reparameterize(mu, logvar, rng=3),
        mu + torch.tensor([[1.0, 2.0]]).double() * eps,
    )
    z = reparameterize(mu.expand(100_000, 2), logvar.expand(100_000, 2), 0)
    torch.testing.assert_close(z.mean(0), mu[0], rtol=0, atol=0.02)
    torch.testing.assert_close(
        z.std(0), torch.tensor([1.0, 2.0]).double(), rtol=0.02, atol=0
    )


def test_reparameterized_draws_are_differentiable_in_mu_and_logvar():
    mu = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    logvar = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda m, v: reparameterize(m, v, rng=1), (mu, logvar))


def test_negative_elbo_is_reconstruction_plus_beta_kl():
    x = random_bits(5, 20, 0.2, seed=13)
    gen = torch.Generator().manual_seed(14)
    logits = torch.randn(5, 20, generator=gen, dtype=torch.float64)
    mu = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    for beta in (0.0, 1.0, 2.5):
        torch.testing.assert_close(
            negative_elbo(logits, x, mu, logvar, beta=beta),
            reconstruction_loss(logits, x) + beta * gaussian_kl(mu, logvar),
        )


# --------------------------------------------------------------- Tanimoto


def test_tanimoto_matches_sklearn_jaccard_score():
    a = random_bits(40, 30, 0.15, seed=6)
    b = random_bits(40, 30, 0.15, seed=7)
    a[0] = 0.0
    b[0] = 0.0  # both empty: 0/0 := 1, as sklearn's zero_division=1.0
    ours = tanimoto_similarity(a, b)
    ref = [
        jaccard_score(a[i].numpy(), b[i].numpy(), zero_division=1.0)
        for i in range(40)
    ]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-15)


def test_tanimoto_of_two_empty_fingerprints_is_one_and_of_one_is_zero():
    empty = torch.zeros(5)
    one = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])
    assert tanimoto_similarity(empty, empty).item() == 1.0
    assert tanimoto_similarity(empty, one).item() == 0.0
    assert tanimoto_similarity(one, one).item() == 1.0


def test_tanimoto_accepts_bool_and_numpy_and_broadcasts():
    a = np.array([[True, True, False], [False, True, True]])
    c = torch.tensor([1, 1, 0])
    np.testing.assert_allclose(tanimoto_similarity(a, c).numpy(), [1.0, 1 / 3])


def test_pairwise_tanimoto_matches_rowwise_similarity():
    a = random_bits(7, 25, 0.3, seed=8)
    b = random_bits(5, 25, 0.3, seed=9)
    b[2] = 0.0
    matrix = pairwise_tanimoto(a, b)
    assert matrix.shape == (7, 5)
    for i, j in itertools.product(range(7), range(5)):
        assert matrix[i, j].item() == pytest.approx(
            tanimoto_similarity(a[i], b[j]).item(), abs=1e-15
        )


def test_best_constant_fingerprint_of_identical_rows_is_that_row():
    row = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0], dtype=torch.float64)
    c = best_constant_fingerprint(row.expand(10, 8))
    torch.testing.assert_close(c, row)


def test_best_constant_fingerprint_is_a_local_optimum_beating_every_top_k():
    x = random_bits(60, 40, 0.1, seed=10)
    x[:, :3] = random_bits(
        60, 3, 0.7, seed=11
    )  # a few common bits, as in real fingerprints
    c = best_constant_fingerprint(x)
    score = tanimoto_similarity(x, c).mean().item()
    for j in range(40):
        flipped = c.clone()
        flipped[j] = 1 - flipped[j]
        assert tanimoto_similarity(x, flipped).mean().item() <= score + 1e-12
    order = torch.argsort(x.mean(0), descending=True, stable=True)
    for k in range(1, 41):
        top = torch.zeros(40, dtype=torch.float64)
        top[order[:k]] = 1
        assert tanimoto_similarity(x, top).mean().item() <= score + 1e-12


def test_best_constant_fingerprint_finds_the_brute_force_optimum():
    x = random_bits(30, 10, 0.35, seed=12)
    every = torch.tensor(
        list(itertools.product([0.0, 1.0], repeat=10)), dtype=torch.float64
    )
    best = pairwise_tanimoto(every, x).mean(1).max().item()
    found = tanimoto_similarity(x, best_constant_fingerprint(x)).mean().item()
    assert found == pytest.approx(best, abs=1e-12)


# ----------------------------------------------------- model and training


def tiny_problem(seed=0):
    """Three prototype fingerprints of 64 bits with a little noise: easy to
    reconstruct."""
    gen = torch.Generator().manual_seed(seed)
    prototypes = (torch.rand(3, 64, generator=gen) < 0.15).float()
    rows = prototypes[torch.arange(96) % 3]
    flips = (torch.rand(96, 64, generator=gen) < 0.01).float()
    return (rows + flips) % 2


def test_vae_shapes_and_deterministic_evaluation_mode():
    model = FingerprintVAE(VAEConfig(n_bits=64, hidden=16, latent=3), rng=0)
    x = tiny_problem()
    logits, mu, logvar = model(x)
    assert logits.shape == (96, 64) and mu.shape == logvar.shape == (96, 3)
    model.eval()
    torch.testing.assert_close(model(x)[0], model.decode(model.encode(x)[0]))
    torch.testing.assert_close(model(x)[0], model(x)[0], rtol=0, atol=0)


def test_vae_config_is_frozen():
    config = VAEConfig(n_bits=8, hidden=4, latent=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.latent = 3


def test_training_mode_draws_z_with_reparameterize_from_the_models_rng():
    torch.manual_seed(0)
    model = FingerprintVAE(VAEConfig(n_bits=64, hidden=16, latent=3), rng=5)
    x = tiny_problem()
    logits, mu, logvar = model(x)
    z = reparameterize(mu, logvar, rng=5)
    torch.testing.assert_close(logits, model.decode(z))


def fit_tiny(epochs=3, held_out=None, **options):
    torch.manual_seed(0)
    model = FingerprintVAE(VAEConfig(n_bits=64, hidden=16, latent=2), rng=1)
    config = TrainConfig(epochs=epochs, lr=1e-2, batch_size=32)
    history = fit_vae(
        model, tiny_problem(), held_out, config=config, rng=2, **options
    )
    return model, history


def test_fit_vae_lowers_the_negative_elbo_on_a_tiny_problem():
    torch.manual_seed(0)
    x = tiny_problem()
    model = FingerprintVAE(VAEConfig(n_bits=64, hidden=32, latent=2), rng=1)
    before = elbo_terms(model, x, n_samples=8, rng=2).neg_elbo
    config = TrainConfig(epochs=30, lr=2e-2, batch_size=32)
    history = fit_vae(model, x, x[:12], config=config, rng=3)
    after = elbo_terms(model, x, n_samples=8, rng=2).neg_elbo
    assert after < 0.5 * before
    assert isinstance(history, History) and len(history.loss) == 30
    assert set(history.logs) == {
        "reconstruction",
        "kl",
        "kl_weight",
        "held_out_reconstruction",
        "held_out_kl",
    }
    assert all(len(v) == 30 for v in history.logs.values())
    assert not model.training
    with torch.no_grad():
        recon = (model(x)[0] > 0).float()
    assert tanimoto_similarity(x, recon).mean().item() > 0.8


def test_fit_vae_loss_is_reconstruction_plus_the_warm_up_weight_times_kl():
    _, history = fit_tiny(epochs=4, kl_warmup=2, beta=0.5)
    logs = history.logs
    assert logs["kl_weight"] == [0.25, 0.5, 0.5, 0.5]
    for epoch in range(4):
        assert history.loss[epoch] == pytest.approx(
            logs["reconstruction"][epoch]
            + logs["kl_weight"][epoch] * logs["kl"][epoch],
            rel=1e-6,
        )


def test_fit_vae_takes_the_same_step_as_adam_on_negative_elbo():
    # One full-batch epoch is one Adam step on negative_elbo, with the
    # draws of z from the model's own rng.
    torch.manual_seed(0)
    x = tiny_problem()
    model = FingerprintVAE(VAEConfig(n_bits=64, hidden=8, latent=2), rng=4)
    twin = copy.deepcopy(model)
    fit_vae(model, x, config=TrainConfig(epochs=1, lr=1e-2), rng=0)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    logits, mu, logvar = twin(x)
    negative_elbo(logits, x, mu, logvar).backward()
    opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_fit_vae_is_deterministic_under_a_seed():
    def run():
        model, history = fit_tiny(held_out=tiny_problem()[:10], kl_warmup=2)
        return history, [p.detach().clone() for p in model.parameters()]

    (h1, p1), (h2, p2) = run(), run()
    assert h1 == h2
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_evaluating_on_held_out_data_does_not_change_the_training_run():
    def run(held_out):
        _, history = fit_tiny(held_out=held_out)
        return history.loss, history.logs["kl"]

    assert run(None) == run(tiny_problem(seed=1)[:10])


def test_fit_vae_logs_what_on_epoch_end_returns():
    _, history = fit_tiny(on_epoch_end=lambda epoch, model: {"e": epoch})
    assert history.logs["e"] == [0.0, 1.0, 2.0]


def test_fit_vae_stops_with_an_error_naming_the_learning_rate_on_divergence():
    torch.manual_seed(0)
    model = FingerprintVAE(VAEConfig(n_bits=64, hidden=16, latent=2), rng=1)
    with pytest.raises(FloatingPointError, match=r"lr=1e\+30"):
        fit_vae(model, tiny_problem(), config=TrainConfig(epochs=5, lr=1e30))


def test_fit_vae_rejects_an_empty_training_set():
    model = FingerprintVAE(VAEConfig(n_bits=64, hidden=16, latent=2))
    with pytest.raises(ValueError, match="train must hold at least one"):
        fit_vae(model, torch.zeros(0, 64), config=TrainConfig(epochs=1))


def test_elbo_terms_are_a_frozen_dataclass_whose_sum_is_the_negative_elbo():
    model, _ = fit_tiny()
    terms = elbo_terms(model, tiny_problem(), n_samples=2, rng=0)
    assert isinstance(terms, ELBOTerms)
    assert terms.neg_elbo == terms.reconstruction + terms.kl
    with pytest.raises(dataclasses.FrozenInstanceError):
        terms.kl = 0.0


def test_init_output_bias_makes_the_decoder_start_at_the_bit_frequencies():
    torch.manual_seed(0)
    model = FingerprintVAE(VAEConfig(n_bits=5, hidden=4, latent=2))
    freq = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    model.init_output_bias(freq)
    torch.testing.assert_close(
        torch.sigmoid(model.decoder[-1].bias), freq.clamp(1e-4, 1 - 1e-4)
    )


# --------------------------------------------------------- error messages


def test_errors_name_the_argument_and_what_was_expected():
    x = torch.zeros(2, 4)
    with pytest.raises(
        ValueError,
        match=r"logits must have shape \(N, n_bits\); got shape \(4,\)",
    ):
        reconstruction_loss(torch.zeros(4), torch.zeros(4))
    with pytest.raises(
        ValueError, match="target must be a tensor of the same shape as"
    ):
        reconstruction_loss(x, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="target must hold bits in"):
        reconstruction_loss(x, x + 2)
    with pytest.raises(ValueError, match="reduction must be one of"):
        reconstruction_loss(x, x, reduction="avg")
    with pytest.raises(
        ValueError,
        match=(
            r"mu and logvar must have the same shape \(N, K\); got \(2, 4\)"
            r" and \(2, 3\)"
        ),
    ):
        gaussian_kl(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="a must hold binary fingerprints"):
        tanimoto_similarity(torch.tensor([0.5, 1.0]), torch.tensor([1.0, 1.0]))
    with pytest.raises(
        ValueError,
        match="a and b must have the same number of bits; got 2 and 3",
    ):
        tanimoto_similarity(torch.ones(2), torch.ones(3))
    with pytest.raises(
        ValueError, match=r"b must have shape \(N, D\); got \(3,\)"
    ):
        pairwise_tanimoto(torch.ones(2, 3), torch.ones(3))
    with pytest.raises(
        ValueError, match=r"max_bits must be an integer in \[1, 4\]; got 9"
    ):
        best_constant_fingerprint(x, max_bits=9)
    with pytest.raises(
        ValueError, match="latent must be an integer >= 1; got 0"
    ):
        VAEConfig(latent=0)
    model = FingerprintVAE(VAEConfig(n_bits=4, hidden=3, latent=2))
    with pytest.raises(ValueError, match="x must have 4 bits per row; got 5"):
        elbo_terms(model, torch.zeros(2, 5))
    with pytest.raises(
        ValueError, match="n_samples must be an integer >= 1; got 0"
    ):
        elbo_terms(model, x, n_samples=0)
    config = TrainConfig(epochs=1)
    with pytest.raises(
        ValueError, match="beta must be a finite number >= 0; got -1"
    ):
        fit_vae(model, x, config=config, beta=-1)
    with pytest.raises(
        ValueError, match="kl_warmup must be an integer >= 0; got 1.5"
    ):
        fit_vae(model, x, config=config, kl_warmup=1.5)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        fit_vae(model, x, config={"epochs": 1})
    with pytest.raises(
        ValueError, match=r"bit_frequency must have shape \(4,\); got \(3,\)"
    ):
        model.init_output_bias(torch.zeros(3))
    with pytest.raises(
        ValueError, match="bit_frequency must hold frequencies in"
    ):
        model.init_output_bias(torch.tensor([0.0, 0.5, 1.5, 0.2]))

"""Tests of xentlib.biology: hairpin data and stability rule, threshold fits, localisation."""

import copy
import hashlib
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.metrics import hamming_loss as sk_hamming_loss

import xentlib
from xentlib.biology import (
    COMPARTMENTS,
    DUAL_LOCALISATIONS,
    LocalisationMLP,
    StabilityLogistic,
    activity_probability,
    bootstrap_thresholds,
    exact_match_accuracy,
    fit_logistic_newton,
    hamming_loss,
    load_hairpins,
    logistic_threshold_standard_error,
    sample_activity,
    simulate_localisation,
    soft_targets,
    threshold_label_sets,
    top1_label_sets,
)
from xentlib.training import TrainConfig, fit, predict


def _sklearn_unpenalised(x, y, sample_weight=None):
    model = LogisticRegression(C=1e10, tol=1e-12, max_iter=10_000)
    model.fit(
        np.asarray(x)[:, None], np.asarray(y), sample_weight=sample_weight
    )
    return model.coef_[0, 0], model.intercept_[0]


def _rule_data(n, threshold=-5.0, scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = (
        -12 * torch.rand(n, generator=gen, dtype=torch.float64) + 2
    )  # dG in [-10, 2] kcal/mol
    return x, sample_activity(x, threshold, scale, generator=gen)


# --------------------------------------------------------------------------- hairpin data


@pytest.fixture(scope="module")
def hairpins():
    return load_hairpins()


def test_hairpin_file_matches_the_checksum_in_its_data_card():
    digest = hashlib.sha256(
        xentlib.data_path("hairpins.csv.gz").read_bytes()
    ).hexdigest()
    card = xentlib.data_path("hairpins.md").read_text()
    assert re.search(r"\b[0-9a-f]{64}\b", card).group(0) == digest


def test_hairpins_are_dna_with_consistent_design_fields(hairpins):
    assert len(hairpins) == 3000
    assert len(set(hairpins.id)) == len(hairpins)
    for seq, structure, length in zip(
        hairpins.sequence, hairpins.structure, hairpins.length
    ):
        assert set(seq) <= set("ACGT") and len(seq) == length == len(structure)
        assert structure.count("(") == structure.count(")")
    parts = (
        hairpins.flank5_len
        + 2 * hairpins.stem_len
        + hairpins.loop_len
        + hairpins.flank3_len
    )
    np.testing.assert_array_equal(parts, hairpins.length)
    assert hairpins.stem_len.min() >= 4 and hairpins.stem_len.max() <= 10
    assert (hairpins.stem_gc <= hairpins.stem_len).all() and (
        hairpins.stem_mismatches <= 2
    ).all()
    assert np.isfinite(hairpins.dg).all()


def test_longer_stems_fold_more_stably_on_average(hairpins):
    means = [hairpins.dg[hairpins.stem_len == n].mean() for n in range(4, 11)]
    assert all(a > b for a, b in zip(means, means[1:]))
    perfect = hairpins.stem_mismatches == 0
    assert (
        hairpins.dg[perfect].mean()
        < hairpins.dg[hairpins.stem_mismatches == 2].mean()
    )


# --------------------------------------------------------------------------- the stability rule


def test_activity_probability_is_the_logistic_rule_and_half_at_the_threshold():
    dg = np.linspace(-15, 3, 50)
    np.testing.assert_allclose(
        activity_probability(dg, -5.0, 0.8).numpy(),
        expit((-5.0 - dg) / 0.8),
        rtol=1e-12,
    )
    assert activity_probability(torch.tensor([-5.0]), -5.0, 2.0).item() == 0.5
    p = activity_probability(
        torch.linspace(-20, 5, 100, dtype=torch.float64), -5.0, 1.0
    )
    assert (p.diff() < 0).all(), (
        "more stable (more negative dG) must mean more likely active"
    )


def test_activity_probability_does_not_overflow_for_extreme_free_energies():
    p = activity_probability(
        torch.tensor([-1e6, 1e6], dtype=torch.float64), 0.0, 0.1
    )
    assert p.tolist() == [1.0, 0.0]


def test_sampled_activity_is_seeded_and_follows_the_rule():
    dg = torch.full((200_000,), -4.0, dtype=torch.float64)
    a = sample_activity(
        dg, -5.0, 1.0, generator=torch.Generator().manual_seed(3)
    )
    b = sample_activity(
        dg, -5.0, 1.0, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert abs(a.mean().item() - expit(-1.0)) < 0.005


@pytest.mark.parametrize(
    "threshold, scale, match",
    [
        (-5.0, 0.0, "scale must be positive"),
        (float("nan"), 1.0, "threshold must be a finite number"),
        (-5.0, "1", "scale must be a finite number"),
    ],
)
def test_activity_rule_rejects_bad_parameters(threshold, scale, match):
    with pytest.raises(ValueError, match=match):
        activity_probability(torch.zeros(3), threshold, scale)


# --------------------------------------------------------------------------- fitting the threshold


def test_newton_fit_matches_unpenalised_scikit_learn():
    x, y = _rule_data(3000)
    w, b = fit_logistic_newton(x, y).tolist()
    w_ref, b_ref = _sklearn_unpenalised(x, y)
    assert w == pytest.approx(w_ref, rel=1e-6) and b == pytest.approx(
        b_ref, rel=1e-6
    )


def test_weighted_newton_fit_equals_a_fit_on_repeated_rows():
    x, y = _rule_data(500)
    counts = torch.randint(
        0, 4, (500,), generator=torch.Generator().manual_seed(1)
    ).double()
    w_ref, b_ref = _sklearn_unpenalised(x, y, sample_weight=counts.numpy())
    repeated = fit_logistic_newton(
        x.repeat_interleave(counts.long()), y.repeat_interleave(counts.long())
    )
    batched = fit_logistic_newton(
        x, y, torch.stack([torch.ones(500, dtype=torch.float64), counts])
    )
    torch.testing.assert_close(batched[1], repeated, rtol=1e-9, atol=1e-12)
    assert batched[1, 0].item() == pytest.approx(w_ref, rel=1e-6)
    torch.testing.assert_close(
        batched[0], fit_logistic_newton(x, y), rtol=1e-12, atol=1e-12
    )


def test_gradient_descent_on_cross_entropy_reaches_the_maximum_likelihood_threshold():
    x, y = _rule_data(2000)
    model = StabilityLogistic(x.mean().item(), x.std().item()).double()
    history = fit(
        model,
        xentlib.binary_cross_entropy,
        x,
        y,
        config=TrainConfig(epochs=300, lr=0.1),
    )
    assert history.loss[-1] < history.loss[0]
    w, b = fit_logistic_newton(x, y).tolist()
    assert model.threshold() == pytest.approx(-b / w, abs=1e-3)
    assert model.coefficients()[0] == pytest.approx(w, rel=1e-3)
    logits = predict(model, x)
    torch.testing.assert_close(logits, w * x + b, rtol=1e-3, atol=1e-3)


def test_fitted_threshold_recovers_the_true_one_within_its_standard_error():
    x, y = _rule_data(20_000, threshold=-4.0, scale=0.7, seed=5)
    w, b = fit_logistic_newton(x, y).tolist()
    se, _ = logistic_threshold_standard_error(x, w, b)
    assert abs(-b / w - (-4.0)) < 4 * se and se < 0.05
    assert -1 / w == pytest.approx(0.7, rel=0.1)


def test_fisher_information_is_the_hessian_of_the_summed_cross_entropy():
    x, y = _rule_data(400)
    w, b = fit_logistic_newton(x, y).tolist()
    _, cov = logistic_threshold_standard_error(x, w, b)

    def summed_loss(theta):
        return xentlib.binary_cross_entropy(
            theta[0] * x + theta[1], y, reduction="sum"
        )

    hessian = torch.autograd.functional.hessian(
        summed_loss, torch.tensor([w, b], dtype=torch.float64)
    )
    torch.testing.assert_close(
        torch.linalg.inv(cov), hessian, rtol=1e-10, atol=1e-10
    )


def test_threshold_standard_error_matches_the_spread_over_repeated_experiments():
    x, _ = _rule_data(1000)
    gen = torch.Generator().manual_seed(11)
    labels = torch.stack(
        [sample_activity(x, -5.0, 1.0, generator=gen) for _ in range(300)]
    )
    # One batched fit of all 300 experiments: each example appears once as a positive and once
    # as a negative, and the weights (y, 1 - y) keep the one that experiment observed.
    doubled_x = torch.cat([x, x])
    doubled_y = torch.cat([torch.ones_like(x), torch.zeros_like(x)])
    wb = fit_logistic_newton(
        doubled_x, doubled_y, torch.cat([labels, 1 - labels], dim=1)
    )
    torch.testing.assert_close(
        wb[0], fit_logistic_newton(x, labels[0]), rtol=1e-9, atol=1e-12
    )
    thresholds = (-wb[:, 1] / wb[:, 0]).numpy()
    w_true, b_true = -1.0, -5.0  # the rule itself: logit = (-5 - x) / 1
    se, _ = logistic_threshold_standard_error(x, w_true, b_true)
    assert np.std(thresholds) == pytest.approx(se, rel=0.15)


def test_bootstrap_is_seeded_and_agrees_with_the_standard_error():
    x, y = _rule_data(2000)
    a = bootstrap_thresholds(
        x, y, 400, generator=torch.Generator().manual_seed(2)
    )
    b = bootstrap_thresholds(
        x, y, 400, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(a, b) and a.shape == (400,)
    w, b0 = fit_logistic_newton(x, y).tolist()
    se, _ = logistic_threshold_standard_error(x, w, b0)
    assert a.std().item() == pytest.approx(se, rel=0.2)
    assert abs(a.mean().item() - (-b0 / w)) < se


def test_threshold_fits_reject_bad_inputs():
    x, y = _rule_data(50)
    with pytest.raises(ValueError, match="y must hold 0/1 labels"):
        fit_logistic_newton(x, y * 0.5)
    with pytest.raises(ValueError, match=r"y must have shape \(50,\)"):
        fit_logistic_newton(x, y[:10])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fit_logistic_newton(x, y, -torch.ones(50))
    with pytest.raises(ValueError, match="x must not be constant"):
        fit_logistic_newton(torch.ones(50), y)
    with pytest.raises(
        ValueError, match="weight must be a finite non-zero number"
    ):
        logistic_threshold_standard_error(x, 0.0, 1.0)
    with pytest.raises(ValueError, match="n_boot must be a positive integer"):
        bootstrap_thresholds(x, y, 0)
    with pytest.raises(ValueError, match="spread must be positive"):
        StabilityLogistic(0.0, 0.0)
    with pytest.raises(ValueError, match="weight is zero"):
        StabilityLogistic(0.0, 1.0).threshold()


# --------------------------------------------------------------------------- localisation data


def test_simulated_proteome_has_one_or_two_compartments_and_the_requested_dual_share():
    data = simulate_localisation(
        6000, generator=torch.Generator().manual_seed(0)
    )
    k = len(COMPARTMENTS)
    assert data.features.shape == (6000, k * 3 + 8) and data.labels.shape == (
        6000,
        k,
    )
    sizes = data.labels.sum(1)
    assert set(sizes.unique().tolist()) == {1.0, 2.0}
    assert abs(data.is_dual.float().mean().item() - 1 / 3) < 0.02
    pairs = {
        tuple(row.nonzero().flatten().tolist())
        for row in data.labels[data.is_dual]
    }
    assert pairs == set(DUAL_LOCALISATIONS)


def test_simulated_proteins_carry_the_signals_of_every_compartment_they_sit_in():
    data = simulate_localisation(
        4000, signal_strength=2.0, generator=torch.Generator().manual_seed(1)
    )
    signal = (
        data.features[:, : 3 * len(COMPARTMENTS)]
        .reshape(4000, len(COMPARTMENTS), 3)
        .mean(-1)
    )
    inside = signal[data.labels == 1].mean().item()
    outside = signal[data.labels == 0].mean().item()
    assert inside == pytest.approx(2.0, abs=0.05) and outside == pytest.approx(
        0.0, abs=0.05
    )


def test_simulation_is_seeded():
    a = simulate_localisation(100, generator=torch.Generator().manual_seed(4))
    b = simulate_localisation(100, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.features, b.features) and torch.equal(
        a.labels, b.labels
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_proteins": 0}, "n_proteins must be an integer >= 1"),
        ({"dual_fraction": 1.5}, "dual_fraction must be in"),
        ({"signal_features": 0}, "signal_features must be"),
        ({"signal_strength": -1.0}, "signal_strength must be"),
    ],
)
def test_simulation_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_localisation(**{"n_proteins": 10, **kwargs})


# --------------------------------------------------------------------------- label sets and metrics


def test_soft_targets_split_a_protein_evenly_over_its_compartments():
    labels = torch.tensor([[1, 0, 0], [0, 1, 1]])
    t = soft_targets(labels)
    torch.testing.assert_close(
        t, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    )
    with pytest.raises(ValueError, match="at least one compartment"):
        soft_targets(torch.tensor([[0, 0, 0]]))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_hamming_loss_and_exact_match_agree_with_scikit_learn(n, k, seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, (n, k))
    pred = np.where(rng.random((n, k)) < 0.3, 1 - target, target)
    assert hamming_loss(
        torch.as_tensor(pred), torch.as_tensor(target)
    ) == pytest.approx(sk_hamming_loss(target, pred))
    assert exact_match_accuracy(
        torch.as_tensor(pred), torch.as_tensor(target)
    ) == pytest.approx(accuracy_score(target, pred))


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 10), st.integers(0, 2**31 - 1))
def test_a_softmax_can_put_more_than_one_half_on_at_most_one_class(k, seed):
    logits = (
        torch.randn(64, k, generator=torch.Generator().manual_seed(seed)) * 5
    )
    prob = torch.softmax(logits, dim=1)
    assert (threshold_label_sets(prob).sum(1) <= 1).all()
    top1 = top1_label_sets(prob)
    assert (top1.sum(1) == 1).all() and torch.equal(
        top1.argmax(1), prob.argmax(1)
    )


def test_a_single_label_prediction_misses_part_of_every_two_compartment_set():
    target = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 1, 0]])
    pred = torch.tensor([[1, 0, 0, 0, 0], [1, 0, 0, 0, 0]])
    assert exact_match_accuracy(pred, target) == 0.0
    assert hamming_loss(pred, target) == pytest.approx((1 + 3) / 10)


def test_label_metrics_reject_bad_inputs():
    t = torch.tensor([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="pred must have the shape of target"):
        hamming_loss(torch.tensor([[1, 0, 0]]), t)
    with pytest.raises(ValueError, match="pred must hold 0/1 indicators"):
        exact_match_accuracy(torch.tensor([[2, 0], [0, 1]]), t)
    with pytest.raises(
        ValueError, match=r"pred must have shape \(N, K\) of 0/1 indicators"
    ):
        hamming_loss(torch.tensor([1, 0]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="target is empty"):
        exact_match_accuracy(torch.zeros(0, 2), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="threshold must be in"):
        threshold_label_sets(torch.full((1, 2), 0.5), threshold=1.0)
    with pytest.raises(
        ValueError, match=r"prob must hold probabilities in \[0, 1\]"
    ):
        threshold_label_sets(torch.tensor([[1.5, 0.0]]))


def test_sigmoid_heads_learn_two_compartment_sets_that_a_softmax_cannot():
    data = simulate_localisation(
        1200, signal_strength=2.5, generator=torch.Generator().manual_seed(0)
    )
    x, y = data.features, data.labels
    torch.manual_seed(0)
    softmax_net = LocalisationMLP(x.shape[1], hidden=16)
    sigmoid_net = copy.deepcopy(softmax_net)
    loss_soft = fit(
        softmax_net,
        xentlib.cross_entropy,
        x[:800],
        soft_targets(y[:800]),
        config=TrainConfig(epochs=80, lr=5e-2),
    )
    loss_sig = fit(
        sigmoid_net,
        xentlib.binary_cross_entropy,
        x[:800],
        y[:800],
        config=TrainConfig(epochs=80, lr=5e-2),
    )
    assert loss_soft.loss[-1] < loss_soft.loss[0]
    assert loss_sig.loss[-1] < loss_sig.loss[0]
    dual = data.is_dual[800:]
    test_y = y[800:][dual]
    soft_pred = top1_label_sets(
        torch.softmax(predict(softmax_net, x[800:][dual]), 1)
    )
    sig_pred = threshold_label_sets(
        torch.sigmoid(predict(sigmoid_net, x[800:][dual]))
    )
    assert exact_match_accuracy(soft_pred, test_y) == 0.0
    assert hamming_loss(soft_pred, test_y) >= 1 / len(COMPARTMENTS)
    assert exact_match_accuracy(sig_pred, test_y) > 0.8

"""The demographic-parity penalty, the group metrics and the fairness data sets (chapter 11)."""

import hashlib
import re

import numpy as np
import pytest
import torch
from fairlearn import (
    metrics as fairlearn_metrics,
)  # the independent reference (a test-only requirement)
from torch.nn import functional as F

import xentlib
from xentlib.fairness import (
    bootstrap_gap_interval,
    demographic_parity_gap,
    demographic_parity_penalty,
    equalized_odds_gap,
    equalized_odds_rates,
    fair_binary_cross_entropy,
    fit_fair_logistic,
    load_adult,
    load_german_credit,
    selection_rates,
)
from xentlib.training import predict


def _random_decisions(n, n_groups, seed):
    g = torch.Generator().manual_seed(seed)
    group = torch.randint(0, n_groups, (n,), generator=g)
    target = torch.randint(0, 2, (n,), generator=g)
    # approval depends on the group and the label, so that the gaps are not all zero
    p = 0.2 + 0.5 * target + 0.1 * group / max(n_groups - 1, 1)
    decisions = (torch.rand(n, generator=g) < p).long()
    return decisions, target, group


@pytest.fixture(scope="module")
def adult():
    return load_adult()


@pytest.fixture(scope="module")
def adult_decisions(adult):
    # Real decisions from a real rule: approve the more educated and the longer working.
    col = adult.feature_names.index
    decisions = (
        (adult.x[:, col("education_num")] + adult.x[:, col("hours_per_week")])
        > 0.8
    ).long()
    return decisions, adult.y.long(), adult.group


# ----------------------------------------------------------------- metrics against fairlearn


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_groups", [2, 3])
def test_parity_gap_equals_fairlearns_demographic_parity_difference(
    seed, n_groups
):
    decisions, target, group = _random_decisions(500, n_groups, seed)
    ours = demographic_parity_gap(decisions, group)
    theirs = fairlearn_metrics.demographic_parity_difference(
        target.numpy(), decisions.numpy(), sensitive_features=group.numpy()
    )
    assert ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_groups", [2, 3])
def test_equalized_odds_gap_equals_fairlearns_equalized_odds_difference(
    seed, n_groups
):
    decisions, target, group = _random_decisions(500, n_groups, seed)
    ours = equalized_odds_gap(decisions, target, group)
    theirs = fairlearn_metrics.equalized_odds_difference(
        target.numpy(), decisions.numpy(), sensitive_features=group.numpy()
    )
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_gaps_equal_fairlearns_on_the_adult_data(adult_decisions):
    decisions, target, group = adult_decisions
    kwargs = dict(sensitive_features=group.numpy())
    assert demographic_parity_gap(decisions, group) == pytest.approx(
        fairlearn_metrics.demographic_parity_difference(
            target.numpy(), decisions.numpy(), **kwargs
        ),
        abs=1e-12,
    )
    assert equalized_odds_gap(decisions, target, group) == pytest.approx(
        fairlearn_metrics.equalized_odds_difference(
            target.numpy(), decisions.numpy(), **kwargs
        ),
        abs=1e-12,
    )
    assert (
        demographic_parity_gap(decisions, group) > 0.05
    )  # a real gap, not a trivial zero


def test_group_rates_equal_fairlearns_metric_frame(adult_decisions):
    decisions, target, group = adult_decisions
    frame = fairlearn_metrics.MetricFrame(
        metrics={
            "sel": fairlearn_metrics.selection_rate,
            "tpr": fairlearn_metrics.true_positive_rate,
            "fpr": fairlearn_metrics.false_positive_rate,
        },
        y_true=target.numpy(),
        y_pred=decisions.numpy(),
        sensitive_features=group.numpy(),
    )
    groups, sel = selection_rates(decisions, group)
    rates = equalized_odds_rates(decisions, target, group)
    assert groups.tolist() == rates.groups.tolist() == [0, 1]
    np.testing.assert_allclose(
        sel.numpy(), frame.by_group["sel"].to_numpy(), atol=1e-12
    )
    np.testing.assert_allclose(
        rates.tpr.numpy(), frame.by_group["tpr"].to_numpy(), atol=1e-12
    )
    np.testing.assert_allclose(
        rates.fpr.numpy(), frame.by_group["fpr"].to_numpy(), atol=1e-12
    )


def test_parity_gap_is_zero_for_equal_approval_rates_and_accepts_booleans():
    decisions = torch.tensor([1, 0, 1, 0, 1, 1, 0, 0], dtype=torch.bool)
    group = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert demographic_parity_gap(decisions, group) == 0.0
    assert demographic_parity_gap(decisions.numpy(), group.numpy()) == 0.0


# ----------------------------------------------------------------- the penalty


def test_parity_penalty_is_zero_when_groups_are_treated_alike():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, generator=g, dtype=torch.float64)
    # each group gets the very same logits, in a different order
    logits = torch.cat([z, z[torch.randperm(50, generator=g)]])
    group = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    assert demographic_parity_penalty(logits, group).item() == pytest.approx(
        0.0, abs=1e-28
    )
    assert (
        demographic_parity_penalty(
            torch.full((7,), 2.5), torch.tensor([0, 1, 1, 0, 1, 0, 0])
        ).item()
        == 0.0
    )
    # and then the fair loss is plain binary cross-entropy, whatever the weight
    y = (torch.rand(100, generator=g, dtype=torch.float64) < 0.5).double()
    for weight in (0.0, 1.0, 1e3):
        torch.testing.assert_close(
            fair_binary_cross_entropy(logits, y, group, parity_weight=weight),
            F.binary_cross_entropy_with_logits(logits, y),
            rtol=1e-12,
            atol=1e-12,
        )


def test_parity_penalty_is_the_squared_gap_of_mean_probabilities():
    rng = np.random.default_rng(1)
    z = rng.normal(size=200) * 2
    group = rng.integers(0, 2, size=200)
    p = 1 / (1 + np.exp(-z))
    expected = (p[group == 1].mean() - p[group == 0].mean()) ** 2
    got = demographic_parity_penalty(
        torch.tensor(z), torch.tensor(group)
    ).item()
    assert got == pytest.approx(expected, rel=1e-12)
    # symmetric in the two groups, blind to the order of the rows
    assert demographic_parity_penalty(
        torch.tensor(z), torch.tensor(1 - group)
    ).item() == pytest.approx(got, rel=1e-12)
    perm = rng.permutation(200)
    assert demographic_parity_penalty(
        torch.tensor(z[perm]), torch.tensor(group[perm])
    ).item() == pytest.approx(got, rel=1e-12)


def test_fair_loss_is_cross_entropy_plus_weighted_penalty_and_sum_is_n_times_mean():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(64, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (64,), generator=g).double()
    group = torch.randint(0, 2, (64,), generator=g)
    mean = fair_binary_cross_entropy(z, y, group, parity_weight=4.0)
    torch.testing.assert_close(
        mean,
        xentlib.binary_cross_entropy(z, y)
        + 4.0 * demographic_parity_penalty(z, group),
    )
    torch.testing.assert_close(
        fair_binary_cross_entropy(z, y, group, 4.0, reduction="sum"), 64 * mean
    )
    torch.testing.assert_close(
        fair_binary_cross_entropy(z, y, group, 0.0),
        F.binary_cross_entropy_with_logits(z, y),
    )


def test_fair_loss_gradients_pass_gradcheck_and_match_the_formula():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(20, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (20,), generator=g).double()
    group = torch.randint(0, 2, (20,), generator=g)
    assert torch.autograd.gradcheck(
        lambda t: fair_binary_cross_entropy(t, y, group, parity_weight=3.0),
        (z,),
    )
    # dR/dz_i = 2 (pbar_1 - pbar_0) p_i (1 - p_i) (+1/|G_1| or -1/|G_0|)
    (grad,) = torch.autograd.grad(demographic_parity_penalty(z, group), z)
    p = torch.sigmoid(z.detach())
    ones = group == 1
    gap = p[ones].mean() - p[~ones].mean()
    sign = torch.where(
        ones, 1.0 / ones.sum().double(), -1.0 / (~ones).sum().double()
    )
    torch.testing.assert_close(
        grad, 2 * gap * p * (1 - p) * sign, rtol=1e-12, atol=1e-15
    )


def test_fair_loss_is_finite_for_extreme_logits():
    z = torch.tensor([1e4, -1e4, 30.0, -30.0], requires_grad=True)
    loss = fair_binary_cross_entropy(
        z, torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([0, 1, 0, 1]), 10.0
    )
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


# ----------------------------------------------------------------- training


def _biased_problem(n=2000, seed=0):
    """Two features: one says the label, the other is a proxy for the group."""
    g = torch.Generator().manual_seed(seed)
    group = torch.randint(0, 2, (n,), generator=g)
    y = (
        torch.rand(n, generator=g) < torch.where(group == 1, 0.2, 0.5)
    ).float()
    x = torch.stack(
        [
            y + 0.8 * torch.randn(n, generator=g),
            group + 0.5 * torch.randn(n, generator=g),
        ],
        dim=1,
    )
    return x, y, group


def test_parity_weight_shrinks_the_gap_of_a_trained_model():
    x, y, group = _biased_problem()
    plain = fit_fair_logistic(x, y, group, 0.0, epochs=200)
    fair = fit_fair_logistic(x, y, group, 20.0, epochs=200)
    gap_plain = demographic_parity_gap(predict(plain, x) > 0, group)
    gap_fair = demographic_parity_gap(predict(fair, x) > 0, group)
    assert gap_plain > 0.2
    assert gap_fair < gap_plain / 4


def test_unpenalised_fit_matches_scikit_learns_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    x, y, group = _biased_problem(seed=1)
    model = fit_fair_logistic(x, y, group, 0.0, epochs=500, lr=0.05)
    ref = LogisticRegression(C=1e6, max_iter=1000).fit(x.numpy(), y.numpy())
    ours = torch.cat(
        [model[0].weight.detach().flatten(), model[0].bias.detach()]
    )
    theirs = torch.tensor(
        np.concatenate([ref.coef_.ravel(), ref.intercept_]),
        dtype=torch.float32,
    )
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-3)


def test_fit_fair_logistic_minimises_fair_binary_cross_entropy():
    # The fast training path must be the public loss: replay it with xentlib.training.fit.
    from torch import nn

    from xentlib.training import TrainConfig, fit

    x, y, group = _biased_problem(300)
    x = x.double()
    trained = fit_fair_logistic(x, y, group, 3.0, epochs=15, lr=0.05, seed=4)
    replay = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0)).double()
    start = fit_fair_logistic(x, y, group, 3.0, epochs=0, seed=4)
    replay.load_state_dict(start.state_dict())
    fit(
        replay,
        lambda z, t: fair_binary_cross_entropy(
            z, t[:, 0], t[:, 1].long(), parity_weight=3.0
        ),
        x,
        torch.stack([y.double(), group.double()], 1),
        config=TrainConfig(epochs=15, lr=0.05),
    )
    for a, b in zip(trained.parameters(), replay.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fit_fair_logistic_repeats_exactly_under_the_same_seed():
    x, y, group = _biased_problem(500)
    a = fit_fair_logistic(x, y, group, 5.0, epochs=20, seed=3)
    b = fit_fair_logistic(x, y, group, 5.0, epochs=20, seed=3)
    assert all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())
    )


# ----------------------------------------------------------------- bootstrap


def test_bootstrap_interval_is_repeatable_and_brackets_the_difference():
    decisions, _, group = _random_decisions(400, 2, 5)
    a = bootstrap_gap_interval(
        decisions, group, 1000, generator=torch.Generator().manual_seed(0)
    )
    b = bootstrap_gap_interval(
        decisions, group, 1000, generator=torch.Generator().manual_seed(0)
    )
    assert (a.gap, a.low, a.high) == (b.gap, b.low, b.high)
    assert a.low < a.difference < a.high
    assert a.gap == pytest.approx(
        demographic_parity_gap(decisions, group), abs=1e-12
    )
    assert a.samples.shape == (1000,)


def test_bootstrap_interval_agrees_with_resampling_rows():
    decisions, _, group = _random_decisions(300, 2, 6)
    ours = bootstrap_gap_interval(
        decisions, group, 4000, generator=torch.Generator().manual_seed(1)
    )
    # the textbook stratified bootstrap: resample each group's rows with replacement
    rng = np.random.default_rng(0)
    d, grp = decisions.numpy(), group.numpy()
    diffs = []
    for _ in range(4000):
        rates = [
            rng.choice(d[grp == k], size=(grp == k).sum(), replace=True).mean()
            for k in (0, 1)
        ]
        diffs.append(rates[1] - rates[0])
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert ours.low == pytest.approx(low, abs=0.01)
    assert ours.high == pytest.approx(high, abs=0.01)


def test_bootstrap_interval_narrows_like_one_over_root_n():
    widths = []
    for n in (400, 6400):
        decisions, _, group = _random_decisions(n, 2, 7)
        r = bootstrap_gap_interval(
            decisions, group, 4000, generator=torch.Generator().manual_seed(2)
        )
        widths.append(r.high - r.low)
    assert (
        0.2 < widths[1] / widths[0] < 0.3
    )  # sixteen times the data, a quarter of the width


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: demographic_parity_penalty(
                torch.zeros(4), torch.tensor([1, 1, 1, 1])
            ),
            "at least two groups",
        ),
        (
            lambda: demographic_parity_penalty(
                torch.zeros(4), torch.tensor([0, 1, 2, 1])
            ),
            "0/1 labels",
        ),
        (
            lambda: demographic_parity_penalty(
                torch.zeros(4, 1), torch.tensor([0, 1, 0, 1])
            ),
            r"shape \(N,\)",
        ),
        (
            lambda: demographic_parity_penalty(
                torch.zeros(4), torch.tensor([0, 1, 0])
            ),
            r"group must have shape \(4,\)",
        ),
        (
            lambda: demographic_parity_penalty(
                torch.tensor([0.0, float("nan")]), torch.tensor([0, 1])
            ),
            "NaN",
        ),
        (
            lambda: fair_binary_cross_entropy(
                torch.zeros(2),
                torch.ones(2),
                torch.tensor([0, 1]),
                reduction="none",
            ),
            "batch",
        ),
        (
            lambda: fair_binary_cross_entropy(
                torch.zeros(2),
                torch.ones(2),
                torch.tensor([0, 1]),
                parity_weight=-1.0,
            ),
            "parity_weight",
        ),
        (
            lambda: fair_binary_cross_entropy(
                torch.zeros(2), torch.ones(3), torch.tensor([0, 1])
            ),
            "target",
        ),
        (
            lambda: demographic_parity_gap(
                torch.tensor([0, 2, 1]), torch.tensor([0, 1, 1])
            ),
            "decisions must hold 0/1",
        ),
        (
            lambda: demographic_parity_gap(
                torch.tensor([0, 1]), torch.tensor([0.5, 1.0])
            ),
            "integer group labels",
        ),
        (
            lambda: equalized_odds_rates(
                torch.tensor([1, 0, 1, 0]),
                torch.tensor([1, 1, 1, 0]),
                torch.tensor([0, 0, 1, 1]),
            ),
            "group 0 lacks one",
        ),
        (
            lambda: bootstrap_gap_interval(
                torch.tensor([1, 0]), torch.tensor([0, 1]), level=1.5
            ),
            "level",
        ),
        (
            lambda: bootstrap_gap_interval(
                torch.tensor([1, 0]), torch.tensor([0, 1]), n_resamples=0
            ),
            "n_resamples",
        ),
        (lambda: load_german_credit(test_fraction=1.0), "test_fraction"),
        (
            lambda: fit_fair_logistic(
                torch.zeros(4, 2),
                torch.tensor([0, 1, 0, 1]),
                torch.tensor([0, 0, 1, 1]),
                -2.0,
                epochs=1,
            ),
            "parity_weight",
        ),
        (
            lambda: fit_fair_logistic(
                torch.zeros(4, 2),
                torch.tensor([0, 2, 0, 1]),
                torch.tensor([0, 0, 1, 1]),
                epochs=1,
            ),
            "y must hold 0/1",
        ),
    ],
)
def test_bad_input_raises_a_message_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ----------------------------------------------------------------- data


def _card_checksum(card):
    text = xentlib.data_path(card).read_text().split("## Checksum")[1]
    return re.search(r"\b([0-9a-f]{64})\b", text).group(1)


@pytest.mark.parametrize(
    "name, card",
    [
        ("adult.csv.gz", "adult.md"),
        ("german_credit.csv.gz", "german_credit.md"),
    ],
)
def test_data_files_match_the_checksums_on_their_cards(name, card):
    digest = hashlib.sha256(xentlib.data_path(name).read_bytes()).hexdigest()
    assert digest == _card_checksum(card)


def test_adult_has_the_documented_rows_base_rates_and_no_sex_feature(adult):
    assert adult.x.shape == (45222, len(adult.feature_names))
    assert int(adult.train.sum()) == 30162
    assert not any(name.startswith("sex") for name in adult.feature_names)
    women, men = adult.group == 1, adult.group == 0
    assert int(women.sum()) == 14695
    assert adult.y[women].mean().item() == pytest.approx(0.1136, abs=5e-4)
    assert adult.y[men].mean().item() == pytest.approx(0.3125, abs=5e-4)
    numeric = adult.x[adult.train][:, :5].double()
    torch.testing.assert_close(
        numeric.mean(0), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-5
    )
    torch.testing.assert_close(
        numeric.std(0, unbiased=False),
        torch.ones(5, dtype=torch.float64),
        rtol=0,
        atol=1e-5,
    )


def test_german_credit_has_the_documented_rows_and_a_seeded_split():
    a, b, c = (
        load_german_credit(seed=0),
        load_german_credit(seed=0),
        load_german_credit(seed=1),
    )
    assert (
        a.x.shape[0] == 1000
        and int(a.y.sum()) == 700
        and int(a.group.sum()) == 310
    )
    assert int(a.train.sum()) == 700
    assert torch.equal(a.train, b.train) and torch.equal(a.x, b.x)
    assert not torch.equal(a.train, c.train)

"""The shared training loop and the calibration measures."""

import numpy as np
import pytest
import torch
from torch import nn

import xentlib
from xentlib.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from xentlib.training import TrainConfig, accuracy, fit, predict


def _blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (
        torch.randn(n, 2, generator=g, dtype=torch.float64)
        + 3.0 * y[:, None].double()
    )
    return x, y


def test_fit_decreases_the_loss_on_a_separable_problem():
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Linear(2, 2).double()
    history = fit(
        model,
        xentlib.cross_entropy,
        x,
        y,
        config=TrainConfig(epochs=50, lr=0.1),
    )
    assert len(history.loss) == 50
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert accuracy(predict(model, x), y) > 0.95


@pytest.mark.parametrize("batch_size", [None, 32])
def test_fit_repeats_exactly_under_the_same_seed(batch_size):
    x, y = _blobs()

    def run():
        torch.manual_seed(1)
        model = nn.Linear(2, 2).double()
        fit(
            model,
            xentlib.cross_entropy,
            x,
            y,
            config=TrainConfig(epochs=5, batch_size=batch_size),
            rng=torch.Generator().manual_seed(2),
        )
        return model.weight.detach().clone()

    assert torch.equal(run(), run())


def test_full_batch_sgd_is_plain_gradient_descent():
    x, y = _blobs(50)
    model = nn.Linear(2, 2, bias=False).double()
    w0 = model.weight.detach().clone()
    w = w0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(xentlib.cross_entropy(x @ w.T, y), w)
    fit(
        model,
        xentlib.cross_entropy,
        x,
        y,
        config=TrainConfig(epochs=1, lr=0.3, optimizer="sgd"),
    )
    torch.testing.assert_close(model.weight.detach(), w0 - 0.3 * grad)


def test_fit_without_target_feeds_the_input_to_the_loss():
    x = torch.rand(40, 3, dtype=torch.float64)
    model = nn.Linear(3, 3).double()
    history = fit(
        model,
        lambda out, inp: ((out - inp) ** 2).mean(),
        x,
        config=TrainConfig(epochs=200, lr=0.05),
    )
    assert history.loss[-1] < 1e-2


def test_fit_rejects_bad_arguments():
    x, y = _blobs(10)
    model = nn.Linear(2, 2).double()
    with pytest.raises(ValueError, match="epochs must be"):
        fit(model, xentlib.cross_entropy, x, y, config=TrainConfig(epochs=-1))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fit(
            model,
            xentlib.cross_entropy,
            x,
            y,
            config=TrainConfig(epochs=1, optimizer="lbfgs"),
        )
    with pytest.raises(
        ValueError, match="inputs and target must have one row per example"
    ):
        fit(
            model,
            xentlib.cross_entropy,
            x,
            y[:5],
            config=TrainConfig(epochs=1),
        )


def test_fit_calls_on_epoch_end_after_each_epoch_in_training_mode_again():
    x, y = _blobs(40)
    model = nn.Linear(2, 2).double()
    seen = []

    def after(epoch, m):
        seen.append((epoch, accuracy(predict(m, x), y)))
        m.eval()  # fit must put the model back in training mode

    fit(
        model,
        xentlib.cross_entropy,
        x,
        y,
        config=TrainConfig(epochs=3, lr=0.1),
        on_epoch_end=after,
    )
    assert [e for e, _ in seen] == [0, 1, 2]
    assert model.training


def test_fit_averages_the_logs_a_loss_returns_over_each_epoch():
    x, y = _blobs(64)
    model = nn.Linear(2, 2).double()

    def loss_with_terms(out, target):
        loss = xentlib.cross_entropy(out, target)
        return loss, {"double": 2 * loss.detach(), "rows": len(target)}

    history = fit(
        model,
        loss_with_terms,
        x,
        y,
        config=TrainConfig(epochs=3, lr=0.1, batch_size=24),
        rng=0,
    )
    assert set(history.logs) == {"double", "rows"}
    # weighted by batch size, as the loss itself is
    for loss, double in zip(history.loss, history.logs["double"]):
        assert double == pytest.approx(2 * loss)
    # batches of 24, 24 and 16 rows: (24 * 24 + 24 * 24 + 16 * 16) / 64
    assert history.logs["rows"] == [pytest.approx(22.0)] * 3


def test_fit_logs_what_on_epoch_end_returns():
    x, y = _blobs(40)
    model = nn.Linear(2, 2).double()
    history = fit(
        model,
        xentlib.cross_entropy,
        x,
        y,
        config=TrainConfig(epochs=4, lr=0.1),
        on_epoch_end=lambda epoch, m: {"epoch": epoch},
    )
    assert history.logs == {"epoch": [0, 1, 2, 3]}


@pytest.mark.parametrize("lr", [1e30, 1e300])
def test_fit_stops_with_an_error_naming_the_epoch_and_lr_when_it_diverges(lr):
    x, y = _blobs(40)
    x = x * 1e3
    model = nn.Linear(2, 2).double()
    with pytest.raises(FloatingPointError) as err:
        fit(
            model,
            lambda out, t: ((out - t[:, None]) ** 2).mean(),
            x,
            y.double(),
            config=TrainConfig(epochs=50, lr=lr, optimizer="sgd"),
        )
    message = str(err.value)
    assert "training diverged in epoch" in message
    assert f"lr={lr:g}" in message


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 2.5, "epochs must be a non-negative integer"),
        ("epochs", True, "epochs must be a non-negative integer"),
        ("lr", float("inf"), "lr must be a finite positive number"),
        ("lr", float("nan"), "lr must be a finite positive number"),
        ("lr", 0.0, "lr must be a finite positive number"),
        ("batch_size", 0, "batch_size must be a positive integer or None"),
        ("batch_size", -3, "batch_size must be a positive integer or None"),
        ("weight_decay", float("inf"), "weight_decay must be a finite"),
        ("weight_decay", -1.0, "weight_decay must be a finite"),
        ("optimizer", "lbfgs", "optimizer must be one of"),
    ],
)
def test_train_config_rejects_bad_settings_naming_the_field(
    field, value, message
):
    settings = {"epochs": 1, field: value}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_train_config_is_frozen():
    config = TrainConfig(epochs=1)
    with pytest.raises(AttributeError):
        config.lr = 1.0


@pytest.mark.parametrize("batch_size", [0, -1, 2.0])
def test_predict_rejects_a_batch_size_that_is_not_a_positive_integer(
    batch_size,
):
    with pytest.raises(ValueError, match="batch_size must be a positive"):
        predict(nn.Linear(2, 2), torch.zeros(3, 2), batch_size=batch_size)


@pytest.mark.parametrize(
    "prediction, target, message",
    [
        (torch.eye(3), torch.tensor([0, 1, 9]), r"in \[0, 2\]"),
        (torch.eye(3), torch.tensor([0, 1, -1]), "class indices >= 0"),
        (torch.eye(3), torch.tensor([0.0, 1.0, 2.0]), "integer class"),
        (torch.full((3, 3), float("nan")), torch.tensor([0, 1, 2]), "NaN"),
        (torch.tensor([0.5, 1.0, 2.0]), torch.tensor([0, 1, 2]), "integer"),
    ],
)
def test_accuracy_rejects_targets_and_scores_it_cannot_score(
    prediction, target, message
):
    with pytest.raises(ValueError, match=message):
        accuracy(prediction, target)


def test_accuracy_takes_labels_or_scores():
    target = torch.tensor([0, 1, 2, 1])
    assert accuracy(torch.tensor([0, 1, 1, 1]), target) == 0.75
    assert accuracy(torch.eye(3)[[0, 1, 2, 0]], target) == 0.75
    with pytest.raises(
        ValueError, match="prediction must hold one class per target"
    ):
        accuracy(torch.tensor([0, 1]), target)


def _reference_ece(conf, outcome, n_bins):
    """Straightforward loop over bins ((m-1)/M, m/M], the first including 0."""
    total = 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        mask = (conf > lo) & (conf <= hi) if m else (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(
                outcome[mask].mean() - conf[mask].mean()
            )
    return total


def test_binary_ece_matches_a_direct_loop():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < p**2).astype(float)
    assert expected_calibration_error(p, y) == pytest.approx(
        _reference_ece(p, y, 15), abs=1e-12
    )


def test_top_label_ece_matches_a_direct_loop():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4) * 0.5, size=500)
    y = rng.integers(0, 4, size=500)
    conf, pred = probs.max(1), probs.argmax(1)
    expected = _reference_ece(conf, (pred == y).astype(float), 10)
    assert expected_calibration_error(
        probs, torch.as_tensor(y), n_bins=10
    ) == pytest.approx(expected, abs=1e-12)


def test_calibrated_predictions_have_small_ece_confident_wrong_ones_large():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=200_000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    assert expected_calibration_error(p, y) < 0.01
    assert expected_calibration_error(
        np.ones(10), np.zeros(10)
    ) == pytest.approx(1.0)


def test_bin_edges_are_right_closed():
    conf, freq, count = reliability_curve(
        torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, 1.0, 1.0]), n_bins=2
    )
    assert count.tolist() == [2.0, 1.0]
    assert conf[0].item() == pytest.approx(0.25)
    assert freq[1].item() == 1.0


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError, match="prob must hold probabilities in"):
        expected_calibration_error(torch.tensor([1.5]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="target must hold 0/1 labels"):
        expected_calibration_error(torch.tensor([0.5]), torch.tensor([2.0]))
    with pytest.raises(
        ValueError, match=r"target must hold class indices in \[0, 1\]"
    ):
        expected_calibration_error(
            torch.tensor([[0.5, 0.5]]), torch.tensor([2])
        )
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        expected_calibration_error(
            torch.tensor([0.5]), torch.tensor([1.0]), n_bins=0
        )


# fit_temperature (chapter 14) ------------------------------------------


def _tempered_sample(t0, n=10_000, c=10, seed=0):
    """Logits z and labels drawn from softmax(z / t0): the true temperature
    is t0."""
    g = torch.Generator().manual_seed(seed)
    z = 3.0 * torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.multinomial(
        torch.softmax(z / t0, dim=1), 1, generator=g
    ).squeeze(1)
    return z, y


@pytest.mark.parametrize("t0", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(t0):
    z, y = _tempered_sample(t0)
    assert fit_temperature(z, y) == pytest.approx(t0, rel=0.05)


def test_fit_temperature_matches_scipys_bounded_minimiser_of_the_nll():
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    z, y = _tempered_sample(1.7, n=2000, c=5, seed=3)
    zn, yn = z.numpy(), y.numpy()

    def nll(log_t):
        s = zn / np.exp(log_t)
        return float(np.mean(logsumexp(s, axis=1) - s[np.arange(len(yn)), yn]))

    ref = minimize_scalar(
        nll,
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert fit_temperature(z, y) == pytest.approx(
        float(np.exp(ref.x)), rel=1e-6
    )


def test_fitted_temperature_satisfies_the_optimality_condition():
    z, y = _tempered_sample(2.0, n=3000, seed=4)
    t = fit_temperature(z, y)
    p = torch.softmax(z / t, dim=1)
    slope = ((p * z).sum(1) - z.gather(1, y[:, None]).squeeze(1)).mean()
    assert abs(slope.item()) < 1e-8


def test_temperature_scaling_never_changes_the_prediction_or_the_accuracy():
    z, y = _tempered_sample(0.7, n=2000, seed=5)
    t = fit_temperature(z[:1000], y[:1000])
    scaled = torch.softmax(z / t, dim=1)
    assert torch.equal(scaled.argmax(1), z.argmax(1))
    assert accuracy(scaled, y) == accuracy(z, y)


def test_fit_temperature_lowers_overconfident_nll_and_ignores_row_shifts():
    z, y = _tempered_sample(1.0, n=4000, seed=6)
    overconfident = 3.0 * z  # as if trained to three times the right scale
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(3.0, rel=0.05)
    assert xentlib.cross_entropy(overconfident / t, y) < xentlib.cross_entropy(
        overconfident, y
    )
    shifted = overconfident + torch.arange(4000, dtype=torch.float64)[:, None]
    assert fit_temperature(shifted, y) == pytest.approx(t, rel=1e-9)


def test_fit_temperature_returns_the_lower_bound_when_every_example_is_right():
    z = torch.tensor([[3.0, 0.0, -1.0], [0.0, 2.0, 1.0]])
    assert fit_temperature(z, torch.tensor([0, 1]), bounds=(0.1, 10.0)) == 0.1


def test_fit_temperature_rejects_bad_input():
    z = torch.zeros(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        fit_temperature(z[0], y)
    with pytest.raises(ValueError, match="logits must be finite"):
        fit_temperature(torch.full((4, 3), float("nan")), y)
    with pytest.raises(
        ValueError,
        match=(
            r"target must hold class indices in \[0, 2\]; got values in"
            r" \[0, 5\]"
        ),
    ):
        fit_temperature(z, torch.tensor([0, 1, 5, 0]))
    with pytest.raises(
        ValueError, match="target must hold integer class indices"
    ):
        fit_temperature(z, y.double())
    with pytest.raises(ValueError, match=r"target must have shape \(4,\)"):
        fit_temperature(z, y[:2])
    with pytest.raises(
        ValueError, match="bounds must satisfy 0 < T_min < T_max"
    ):
        fit_temperature(z, y, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="bounds must be two numbers"):
        fit_temperature(z, y, bounds=(1.0,))
    with pytest.raises(
        ValueError, match="iterations must be a positive integer"
    ):
        fit_temperature(z, y, iterations=0)

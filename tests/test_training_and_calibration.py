"""The shared training loop and the calibration measures."""

import numpy as np
import pytest
import torch
from torch import nn

import xentlib
from xentlib.calibration import expected_calibration_error, reliability_curve
from xentlib.training import accuracy, fit, predict


def _blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64) + 3.0 * y[:, None].double()
    return x, y


def test_fit_decreases_the_loss_on_a_separable_problem():
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Linear(2, 2).double()
    history = fit(model, xentlib.cross_entropy, x, y, epochs=50, lr=0.1)
    assert len(history) == 50
    assert history[-1] < 0.5 * history[0]
    assert accuracy(predict(model, x), y) > 0.95


@pytest.mark.parametrize("batch_size", [None, 32])
def test_fit_repeats_exactly_under_the_same_seed(batch_size):
    x, y = _blobs()

    def run():
        torch.manual_seed(1)
        model = nn.Linear(2, 2).double()
        fit(model, xentlib.cross_entropy, x, y, epochs=5, batch_size=batch_size,
            generator=torch.Generator().manual_seed(2))
        return model.weight.detach().clone()

    assert torch.equal(run(), run())


def test_full_batch_sgd_is_plain_gradient_descent():
    x, y = _blobs(50)
    model = nn.Linear(2, 2, bias=False).double()
    w0 = model.weight.detach().clone()
    w = w0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(xentlib.cross_entropy(x @ w.T, y), w)
    fit(model, xentlib.cross_entropy, x, y, epochs=1, lr=0.3, optimizer="sgd")
    torch.testing.assert_close(model.weight.detach(), w0 - 0.3 * grad)


def test_fit_without_target_feeds_the_input_to_the_loss():
    x = torch.rand(40, 3, dtype=torch.float64)
    model = nn.Linear(3, 3).double()
    history = fit(model, lambda out, inp: ((out - inp) ** 2).mean(), x, epochs=200, lr=0.05)
    assert history[-1] < 1e-2


def test_fit_rejects_bad_arguments():
    x, y = _blobs(10)
    model = nn.Linear(2, 2).double()
    with pytest.raises(ValueError, match="epochs must be"):
        fit(model, xentlib.cross_entropy, x, y, epochs=-1)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fit(model, xentlib.cross_entropy, x, y, epochs=1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="target must have one row per input row"):
        fit(model, xentlib.cross_entropy, x, y[:5], epochs=1)


def test_accuracy_takes_labels_or_scores():
    target = torch.tensor([0, 1, 2, 1])
    assert accuracy(torch.tensor([0, 1, 1, 1]), target) == 0.75
    assert accuracy(torch.eye(3)[[0, 1, 2, 0]], target) == 0.75
    with pytest.raises(ValueError, match="prediction must hold one class per target"):
        accuracy(torch.tensor([0, 1]), target)


def _reference_ece(conf, outcome, n_bins):
    """Straightforward loop over bins ((m-1)/M, m/M], the first including 0."""
    total = 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        mask = (conf > lo) & (conf <= hi) if m else (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(outcome[mask].mean() - conf[mask].mean())
    return total


def test_binary_ece_matches_a_direct_loop():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < p**2).astype(float)
    assert expected_calibration_error(p, y) == pytest.approx(_reference_ece(p, y, 15), abs=1e-12)


def test_top_label_ece_matches_a_direct_loop():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4) * 0.5, size=500)
    y = rng.integers(0, 4, size=500)
    conf, pred = probs.max(1), probs.argmax(1)
    expected = _reference_ece(conf, (pred == y).astype(float), 10)
    assert expected_calibration_error(probs, torch.as_tensor(y), n_bins=10) == pytest.approx(expected, abs=1e-12)


def test_perfectly_calibrated_predictions_have_small_ece_and_confident_wrong_ones_large():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=200_000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    assert expected_calibration_error(p, y) < 0.01
    assert expected_calibration_error(np.ones(10), np.zeros(10)) == pytest.approx(1.0)


def test_bin_edges_are_right_closed():
    conf, freq, count = reliability_curve(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, 1.0, 1.0]), n_bins=2)
    assert count.tolist() == [2.0, 1.0]
    assert conf[0].item() == pytest.approx(0.25)
    assert freq[1].item() == 1.0


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError, match="prob must hold probabilities in"):
        expected_calibration_error(torch.tensor([1.5]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="target must hold 0/1 labels"):
        expected_calibration_error(torch.tensor([0.5]), torch.tensor([2.0]))
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 1\]"):
        expected_calibration_error(torch.tensor([[0.5, 0.5]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        expected_calibration_error(torch.tensor([0.5]), torch.tensor([1.0]), n_bins=0)

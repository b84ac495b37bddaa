"""Tests of xentlib.noisy_labels: transition matrices, label corruption, loss corrections, T estimation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax as scipy_softmax

from xentlib.noisy_labels import (
    backward_corrected_cross_entropy,
    corrupt_labels,
    estimate_transition_matrix,
    fit_and_evaluate,
    forward_corrected_cross_entropy,
    mlp_classifier,
    pair_flip_transition_matrix,
    symmetric_transition_matrix,
)
from xentlib.training import predict


def random_transition_matrix(c, gen, diag=0.6):
    """A random row-stochastic matrix with diagonal ``diag`` (diagonally dominant, so invertible)."""
    off = torch.rand(c, c, generator=gen, dtype=torch.float64) * (
        1 - torch.eye(c, dtype=torch.float64)
    )
    off = off / off.sum(1, keepdim=True) * (1 - diag)
    return off + diag * torch.eye(c, dtype=torch.float64)


# ---------------------------------------------------------------- transition matrices


def test_pair_flip_matrix_moves_each_class_to_the_next_one():
    T = pair_flip_transition_matrix(4, 0.3)
    expected = torch.tensor(
        [
            [0.7, 0.3, 0, 0],
            [0, 0.7, 0.3, 0],
            [0, 0, 0.7, 0.3],
            [0.3, 0, 0, 0.7],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(T, expected)


def test_symmetric_matrix_spreads_noise_evenly_and_rows_sum_to_one():
    T = symmetric_transition_matrix(5, 0.4)
    assert torch.allclose(
        T.diagonal(), torch.full((5,), 0.6, dtype=torch.float64)
    )
    off = T[~torch.eye(5, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, 0.1))
    torch.testing.assert_close(T.sum(1), torch.ones(5, dtype=torch.float64))


@pytest.mark.parametrize(
    "builder", [pair_flip_transition_matrix, symmetric_transition_matrix]
)
def test_zero_noise_gives_the_identity(builder):
    torch.testing.assert_close(
        builder(6, 0.0), torch.eye(6, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "args, match",
    [
        ((1, 0.2), "num_classes must be an integer >= 2; got 1"),
        ((3, 1.5), "noise must be a probability in"),
        ((3, -0.1), "noise must be a probability"),
        ((2.0, 0.1), "num_classes must be an integer"),
    ],
)
def test_transition_matrix_builders_reject_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        pair_flip_transition_matrix(*args)


# ---------------------------------------------------------------- corrupting labels


def test_corrupt_labels_hits_the_transition_rates_on_a_big_sample():
    T = pair_flip_transition_matrix(5, 0.4)
    clean = torch.arange(5).repeat_interleave(40_000)
    noisy = corrupt_labels(clean, T, torch.Generator().manual_seed(0))
    counts = torch.zeros(5, 5, dtype=torch.float64)
    counts.index_put_(
        (clean, noisy),
        torch.ones(clean.shape, dtype=torch.float64),
        accumulate=True,
    )
    rates = counts / counts.sum(1, keepdim=True)
    # Binomial standard error sqrt(0.24 / 40000) ~ 0.0024; 0.012 is five of them.
    assert (rates - T).abs().max() < 0.012
    assert bool((rates[T == 0] == 0).all()), (
        "a label was moved where T has probability zero"
    )


def test_corrupt_labels_is_deterministic_under_a_seed_and_keeps_dtype_shape():
    T = symmetric_transition_matrix(10, 0.5)
    clean = torch.randint(
        0, 10, (1000,), generator=torch.Generator().manual_seed(1)
    )
    a = corrupt_labels(clean, T, torch.Generator().manual_seed(3))
    b = corrupt_labels(clean, T, torch.Generator().manual_seed(3))
    c = corrupt_labels(clean, T, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == clean.shape and a.dtype == torch.long


def test_corrupt_labels_with_identity_leaves_labels_alone_and_accepts_empty():
    clean = torch.tensor([3, 0, 2, 2, 1])
    assert torch.equal(corrupt_labels(clean, torch.eye(4)), clean)
    assert (
        corrupt_labels(torch.zeros(0, dtype=torch.long), torch.eye(4)).numel()
        == 0
    )


@pytest.mark.parametrize(
    "target, T, match",
    [
        (
            torch.tensor([0, 5]),
            torch.eye(3),
            r"target must hold class indices in \[0, 2\]; got 5",
        ),
        (
            torch.tensor([0.0, 1.0]),
            torch.eye(3),
            "target must hold integer class indices",
        ),
        (torch.tensor([[0, 1]]), torch.eye(3), r"target must have shape"),
        ([0, 1], torch.eye(3), "target must be a torch.Tensor"),
        (
            torch.tensor([0, 1]),
            torch.ones(2, 3) / 3,
            (
                r"T must be a square \(C, C\) transition matrix; got shape"
                r" \(2, 3\)"
            ),
        ),
        (
            torch.tensor([0, 1]),
            torch.tensor([[0.5, 0.6], [0.0, 1.0]]),
            "T must sum to one along dimension 1",
        ),
        (
            torch.tensor([0, 1]),
            torch.tensor([[1.5, -0.5], [0.0, 1.0]]),
            r"T must hold probabilities in \[0, 1\]",
        ),
    ],
)
def test_corrupt_labels_rejects_bad_inputs(target, T, match):
    with pytest.raises(ValueError, match=match):
        corrupt_labels(target, T)


# ---------------------------------------------------------------- forward correction


def test_forward_correction_with_identity_T_is_plain_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(64, 7, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 7, (64,), generator=gen)
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            forward_corrected_cross_entropy(
                z, y, torch.eye(7), reduction=reduction
            ),
            F.cross_entropy(z, y, reduction=reduction),
            rtol=1e-12,
            atol=1e-12,
        )


def test_forward_correction_is_minus_log_of_the_noisy_label_probability():
    """Against scipy: -ln (T^T softmax(z))_y, computed naively in numpy."""
    gen = torch.Generator().manual_seed(1)
    T = random_transition_matrix(6, gen)
    z = torch.randn(50, 6, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 6, (50,), generator=gen)
    noisy_prob = scipy_softmax(z.numpy(), axis=1) @ T.numpy()  # row n: T^T p_n
    reference = -np.log(noisy_prob[np.arange(50), y.numpy()])
    got = forward_corrected_cross_entropy(z, y, T, reduction="none")
    np.testing.assert_allclose(got.numpy(), reference, rtol=1e-12)


def test_forward_correction_stays_finite_where_the_naive_formula_underflows():
    # Label 1 can only come from classes 0 and 1 under pair flips; both have probability ~e^-1000.
    T = pair_flip_transition_matrix(3, 0.4)
    z = torch.tensor([[-1000.0, -1000.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([1])
    naive = -torch.log((torch.softmax(z, 1) @ T)[0, 1])
    assert math.isinf(naive.item())
    got = forward_corrected_cross_entropy(z, y, T).item()
    assert math.isclose(
        got, 1000.0, rel_tol=1e-12
    )  # -ln(0.4 e^-1000 + 0.6 e^-1000) = 1000 (to rounding)


def test_forward_correction_gradient_matches_the_analytic_formula():
    """d loss / d z_k = p_k - p_k T_{k y} / (T^T p)_y for one row."""
    gen = torch.Generator().manual_seed(2)
    T = random_transition_matrix(5, gen)
    z = torch.randn(
        8, 5, generator=gen, dtype=torch.float64, requires_grad=True
    )
    y = torch.randint(0, 5, (8,), generator=gen)
    (grad,) = torch.autograd.grad(
        forward_corrected_cross_entropy(z, y, T, reduction="sum"), z
    )
    p = torch.softmax(z.detach(), 1)
    column = T[:, y].T  # (N, C): T_{k, y_n}
    analytic = p - p * column / (p * column).sum(1, keepdim=True)
    torch.testing.assert_close(grad, analytic, rtol=1e-12, atol=1e-14)


def test_forward_and_backward_corrections_pass_gradcheck():
    gen = torch.Generator().manual_seed(3)
    T = random_transition_matrix(4, gen)
    z = torch.randn(
        6, 4, generator=gen, dtype=torch.float64, requires_grad=True
    )
    y = torch.randint(0, 4, (6,), generator=gen)
    assert torch.autograd.gradcheck(
        lambda x: forward_corrected_cross_entropy(x, y, T), (z,)
    )
    assert torch.autograd.gradcheck(
        lambda x: backward_corrected_cross_entropy(x, y, T), (z,)
    )


@settings(max_examples=30, deadline=None)
@given(shift=st.floats(-50, 50), seed=st.integers(0, 10_000))
def test_forward_correction_is_shift_invariant_in_logits(shift, seed):
    gen = torch.Generator().manual_seed(seed)
    T = random_transition_matrix(4, gen)
    z = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (5,), generator=gen)
    torch.testing.assert_close(
        forward_corrected_cross_entropy(z + shift, y, T, reduction="none"),
        forward_corrected_cross_entropy(z, y, T, reduction="none"),
        rtol=1e-9,
        atol=1e-9,
    )


def test_forward_correction_expected_loss_is_minimised_by_the_clean_class():
    """Averaged over noisy labels of a class-2 example, the corrected loss drives p towards class 2."""
    T = pair_flip_transition_matrix(4, 0.4)
    z = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([z], lr=10.0)
    labels = torch.arange(4)
    weights = T[2]  # P(noisy label | true class 2)
    losses = []
    for _ in range(40):
        loss = (
            weights
            * forward_corrected_cross_entropy(
                z.expand(4, 4), labels, T, reduction="none"
            )
        ).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert (
        torch.softmax(z, 1)[0, 2] > 0.99
    )  # plain cross-entropy would settle on T[2] = (0, 0, 0.6, 0.4)


def test_forward_correction_reductions_agree():
    gen = torch.Generator().manual_seed(4)
    T = random_transition_matrix(3, gen)
    z = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (10,), generator=gen)
    rows = forward_corrected_cross_entropy(z, y, T, reduction="none")
    assert rows.shape == (10,)
    torch.testing.assert_close(
        forward_corrected_cross_entropy(z, y, T, reduction="sum"), rows.sum()
    )
    torch.testing.assert_close(
        forward_corrected_cross_entropy(z, y, T), rows.mean()
    )


def test_forward_correction_keeps_the_input_dtype():
    z = torch.randn(4, 3)
    out = forward_corrected_cross_entropy(
        z, torch.tensor([0, 1, 2, 0]), pair_flip_transition_matrix(3, 0.2)
    )
    assert out.dtype == torch.float32


# ---------------------------------------------------------------- backward correction


def test_backward_correction_with_identity_T_is_plain_cross_entropy():
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(32, 5, generator=gen, dtype=torch.float64) * 4
    y = torch.randint(0, 5, (32,), generator=gen)
    torch.testing.assert_close(
        backward_corrected_cross_entropy(z, y, torch.eye(5), reduction="none"),
        F.cross_entropy(z, y, reduction="none"),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("kind", ["pair_flip", "symmetric", "random"])
def test_backward_correction_is_unbiased_for_the_clean_loss_for_any_logits(
    kind,
):
    """sum over noisy labels j of T[y, j] * corrected(z, j) equals the clean loss -ln p_y, exactly."""
    gen = torch.Generator().manual_seed(6)
    c = 6
    T = {
        "pair_flip": pair_flip_transition_matrix(c, 0.4),
        "symmetric": symmetric_transition_matrix(c, 0.5),
        "random": random_transition_matrix(c, gen),
    }[kind]
    z = torch.randn(20, c, generator=gen, dtype=torch.float64) * 5
    # corrected[n, j]: the corrected loss of row n if its noisy label were j.
    corrected = torch.stack(
        [
            backward_corrected_cross_entropy(
                z, torch.full((20,), j), T, reduction="none"
            )
            for j in range(c)
        ],
        dim=1,
    )
    expected_over_noise = (
        corrected @ T.T
    )  # [n, y] = sum_j T[y, j] corrected[n, j]
    clean = -torch.log_softmax(z, 1)
    torch.testing.assert_close(
        expected_over_noise, clean, rtol=1e-10, atol=1e-10
    )


def test_backward_correction_can_go_negative_because_T_inverse_has_negative_entries():
    T = pair_flip_transition_matrix(4, 0.4)
    assert (torch.linalg.inv(T) < 0).any()
    # Row 3 of T^-1 weighs the loss of class 0 by about -1.38: a prediction that rules out
    # class 0 makes the corrected loss of a label-3 example far negative, and it keeps falling.
    z = torch.tensor([[-30.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([3])
    assert backward_corrected_cross_entropy(z, y, T).item() < -30
    assert (
        backward_corrected_cross_entropy(2 * z, y, T).item()
        < backward_corrected_cross_entropy(z, y, T).item()
    )


def test_backward_correction_rejects_a_singular_T():
    T = symmetric_transition_matrix(4, 0.75)  # every row uniform
    with pytest.raises(
        ValueError, match="T must be invertible for the backward correction"
    ):
        backward_corrected_cross_entropy(
            torch.zeros(2, 4), torch.tensor([0, 1]), T
        )


@pytest.mark.parametrize(
    "loss", [forward_corrected_cross_entropy, backward_corrected_cross_entropy]
)
@pytest.mark.parametrize(
    "z, y, T, reduction, match",
    [
        (
            torch.zeros(3, 4),
            torch.tensor([0, 1, 2]),
            torch.eye(3),
            "mean",
            (
                r"T must have shape \(4, 4\) to match the 4 classes of input;"
                r" got \(3, 3\)"
            ),
        ),
        (
            torch.zeros(3, 4),
            torch.tensor([0, 1, 4]),
            torch.eye(4),
            "mean",
            r"target must hold class indices in \[0, 3\]; got 4",
        ),
        (
            torch.zeros(3, 4),
            torch.tensor([0, 1]),
            torch.eye(4),
            "mean",
            r"target must have shape \(3,\)",
        ),
        (
            torch.zeros(4),
            torch.tensor([0]),
            torch.eye(4),
            "mean",
            r"input must have shape \(N, C\)",
        ),
        (
            torch.tensor([[0.0, float("nan")]]),
            torch.tensor([0]),
            torch.eye(2),
            "mean",
            "input contains NaN",
        ),
        (
            torch.zeros(3, 2),
            torch.tensor([0, 1, 1]),
            torch.tensor([[0.9, 0.2], [0.0, 1.0]]),
            "mean",
            "T must sum to one along dimension 1",
        ),
        (
            torch.zeros(3, 2),
            torch.tensor([0, 1, 1]),
            torch.eye(2),
            "avg",
            "reduction must be one of",
        ),
    ],
)
def test_corrected_losses_reject_bad_inputs(loss, z, y, T, reduction, match):
    with pytest.raises(ValueError, match=match):
        loss(z, y, T, reduction=reduction)


# ---------------------------------------------------------------- estimating T


def _noisy_posteriors_with_anchors(T, n_extra, gen):
    """P(noisy | x) = T^T P(clean | x) for one perfect anchor per class plus mixed examples."""
    c = T.shape[0]
    mixed = torch.distributions.Dirichlet(
        torch.full((c,), 0.3, dtype=torch.float64)
    ).sample((n_extra,))
    clean = torch.cat([torch.eye(c, dtype=torch.float64), mixed])
    return clean @ T, clean


def test_anchor_points_recover_T_exactly_from_perfect_posteriors():
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    T = pair_flip_transition_matrix(5, 0.3)
    noisy_prob, _ = _noisy_posteriors_with_anchors(T, 200, gen)
    torch.testing.assert_close(
        estimate_transition_matrix(noisy_prob, quantile=1.0),
        T,
        rtol=0,
        atol=1e-12,
    )


def test_anchor_quantile_below_one_skips_the_top_example():
    prob = torch.tensor(
        [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.05, 0.95]],
        dtype=torch.float64,
    )
    top = estimate_transition_matrix(prob, quantile=1.0)
    lower = estimate_transition_matrix(
        prob, quantile=0.75
    )  # rank 3 of 0..4 in increasing p_i
    torch.testing.assert_close(top, prob[[0, 4]])
    torch.testing.assert_close(lower, prob[[1, 3]])


def test_clean_split_estimate_averages_the_posteriors_of_each_class():
    T = symmetric_transition_matrix(3, 0.3)
    gen = torch.Generator().manual_seed(8)
    clean = torch.randint(0, 3, (300,), generator=gen)
    clean[:3] = torch.arange(3)
    # With one-hot clean posteriors, every example of class i has noisy posterior T[i].
    torch.testing.assert_close(
        estimate_transition_matrix(T[clean], clean), T, rtol=0, atol=1e-12
    )
    prob = torch.softmax(
        torch.randn(300, 3, generator=gen, dtype=torch.float64), 1
    )
    estimate = estimate_transition_matrix(prob, clean)
    torch.testing.assert_close(estimate[1], prob[clean == 1].mean(0))
    torch.testing.assert_close(
        estimate.sum(1), torch.ones(3, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "prob, clean, kwargs, match",
    [
        (
            torch.full((4, 2), 0.5),
            None,
            {"quantile": 1.5},
            r"quantile must be in \[0, 1\]; got 1.5",
        ),
        (
            torch.full((4, 2), 0.6),
            None,
            {},
            "noisy_prob must sum to one along dimension 1",
        ),
        (
            torch.full((4,), 0.5),
            None,
            {},
            r"noisy_prob must have shape \(N, C\)",
        ),
        (
            torch.full((4, 3), 1 / 3),
            torch.tensor([0, 0, 1, 1]),
            {},
            "class 2 is missing",
        ),
        (
            torch.full((4, 2), 0.5),
            torch.tensor([0, 1, 2, 0]),
            {},
            r"clean_target must hold class indices in \[0, 1\]",
        ),
    ],
)
def test_estimate_transition_matrix_rejects_bad_inputs(
    prob, clean, kwargs, match
):
    with pytest.raises(ValueError, match=match):
        estimate_transition_matrix(prob, clean, **kwargs)


# ---------------------------------------------------------------- model and training loop


def _tiny_problem():
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(120, 4, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y


def test_mlp_classifier_returns_logits_of_the_right_shape():
    model = mlp_classifier(4, 3, hidden=8, depth=3)
    assert model(torch.zeros(5, 4)).shape == (5, 3)
    assert sum(isinstance(m, torch.nn.Linear) for m in model) == 4


def test_fit_and_evaluate_lowers_the_loss_and_is_deterministic():
    x, y = _tiny_problem()

    def train():
        torch.manual_seed(0)
        model = mlp_classifier(4, 3, hidden=16)
        losses, scores = fit_and_evaluate(
            model,
            F.cross_entropy,
            x,
            y,
            lambda m: float(F.cross_entropy(predict(m, x), y)),
            epochs=15,
            lr=2e-2,
            batch_size=40,
            generator=torch.Generator().manual_seed(1),
        )
        return losses, scores

    losses, scores = train()
    assert len(losses) == len(scores) == 15
    assert losses[-1] < 0.5 * losses[0]
    assert (losses, scores) == train()


def test_fit_and_evaluate_restores_the_best_epoch():
    x, y = _tiny_problem()
    torch.manual_seed(0)
    model = mlp_classifier(4, 3, hidden=16)
    evaluate = lambda m: float(F.cross_entropy(predict(m, x), y))  # noqa: E731
    # A large learning rate makes the evaluated loss bounce, so the last epoch is not the best one.
    _, scores = fit_and_evaluate(
        model,
        F.cross_entropy,
        x,
        y,
        evaluate,
        epochs=25,
        lr=0.3,
        batch_size=16,
        restore_best="min",
        generator=torch.Generator().manual_seed(2),
    )
    assert evaluate(model) == min(scores)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": -1}, "epochs must be a non-negative integer"),
        ({"epochs": 2, "lr": 0.0}, "lr must be a finite positive number"),
        (
            {"epochs": 2, "restore_best": "best"},
            "restore_best must be None, 'min' or 'max'",
        ),
        (
            {"epochs": 2, "batch_size": 0},
            "batch_size must be a positive integer",
        ),
    ],
)
def test_fit_and_evaluate_rejects_bad_arguments(kwargs, match):
    x, y = _tiny_problem()
    with pytest.raises(ValueError, match=match):
        fit_and_evaluate(
            mlp_classifier(4, 3),
            F.cross_entropy,
            x,
            y,
            lambda m: 0.0,
            **kwargs,
        )

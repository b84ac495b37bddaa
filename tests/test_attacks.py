"""FGSM, PGD and adversarial training (xentlib.attacks, chapter 13)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from xentlib.attacks import (
    AdversarialTraining,
    adversarial_accuracy,
    fgsm_attack,
    fit_adversarial,
    pgd_attack,
)
from xentlib.losses import cross_entropy
from xentlib.models import mlp
from xentlib.training import TrainConfig, accuracy, fit, predict


def small_mlp(seed=0, d=12, classes=3, dtype=torch.float32):
    torch.manual_seed(seed)
    return mlp(d, classes, hidden=16, depth=1).to(dtype)


def unit_batch(n=32, d=12, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=dtype)
    x[0, :3] = torch.tensor(
        [0.0, 1.0, 0.0], dtype=dtype
    )  # pixels on the edges of the range
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


def two_feature_kinds(n, seed):
    """Labels +-1 (Tsipras et al. 2019's toy): feature 0 is 0.5 +- 0.3, agreeing with the label 90 % of the
    time (robust at eps 0.1, but only 90 % accurate); 40 weak features are 0.5 +- 0.05 plus noise, together
    almost perfectly predictive but each moved across by eps = 0.1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    s = (2 * y - 1).double()[:, None]
    agree = torch.where(
        torch.rand(n, 1, generator=g) < 0.9, 1.0, -1.0
    ).double()
    strong = 0.5 + 0.3 * s * agree
    weak = (
        0.5
        + 0.05 * s
        + 0.05 * torch.randn(n, 40, generator=g, dtype=torch.float64)
    )
    return torch.cat([strong, weak], dim=1).clamp(0, 1), y


# --- hand-checked cases -------------------------------------------------------------------------------------------


def test_fgsm_on_a_linear_softmax_model_steps_along_the_sign_of_w_transpose_p_minus_onehot():
    g = torch.Generator().manual_seed(1)
    model = nn.Linear(6, 4).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(4, 6, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(4, generator=g, dtype=torch.float64))
    x = 0.2 + 0.6 * torch.rand(10, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (10,), generator=g)
    eps = 0.3  # large enough that some pixels are clipped at 0 or 1
    with torch.no_grad():
        p = torch.softmax(model(x), dim=1)
        grad = (
            p - nn.functional.one_hot(y, 4).double()
        ) @ model.weight  # W^T (p - onehot), row by row
    expected = (x + eps * grad.sign()).clamp(0, 1)
    assert torch.equal(fgsm_attack(model, x, y, eps), expected)
    assert torch.equal(
        fgsm_attack(model, x, y, eps, clip=None), x + eps * grad.sign()
    )


def test_pgd_finds_the_exact_worst_case_of_a_two_class_linear_model():
    # Logits (0, v.x + c): the loss softplus(-s (v.x + c)) with s = +-1 for y = 1, 0 is monotone in the
    # margin, so the worst point of the ball is x - s eps sign(v) and the worst loss softplus(-s m + eps |v|_1).
    g = torch.Generator().manual_seed(2)
    v = torch.randn(8, generator=g, dtype=torch.float64)
    c = 0.3
    model = nn.Linear(8, 2).double()
    with torch.no_grad():
        model.weight.copy_(
            torch.stack([torch.zeros(8, dtype=torch.float64), v])
        )
        model.bias.copy_(torch.tensor([0.0, c], dtype=torch.float64))
    x = 0.3 + 0.4 * torch.rand(16, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (16,), generator=g)
    eps = 0.1
    s = (2 * y - 1).double()
    corner = x - eps * s[:, None] * v.sign()
    worst_loss = nn.functional.softplus(-s * (x @ v + c) + eps * v.abs().sum())
    x_adv = pgd_attack(
        model,
        x,
        y,
        eps,
        step_size=0.05,
        steps=5,
        random_start=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.allclose(x_adv, corner, rtol=0, atol=1e-12)
    with torch.no_grad():
        attained = cross_entropy(model(x_adv), y, reduction="none")
    assert torch.allclose(attained, worst_loss, rtol=1e-12, atol=0)


def test_pgd_with_one_step_of_size_epsilon_and_no_random_start_is_fgsm():
    model, (x, y) = small_mlp(), unit_batch()
    for eps in (0.0, 0.05, 0.3):
        assert torch.equal(
            pgd_attack(
                model,
                x,
                y,
                eps,
                step_size=eps or 1.0,
                steps=1,
                random_start=False,
            ),
            fgsm_attack(model, x, y, eps),
        )


# --- the constraints ----------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    eps=st.floats(0.0, 0.6),
    steps=st.integers(1, 6),
    step_ratio=st.floats(0.1, 3.0),
    random_start=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_attacks_never_leave_the_epsilon_ball_or_the_valid_range(
    eps, steps, step_ratio, random_start, seed
):
    model, (x, y) = small_mlp(seed % 5), unit_batch(seed=seed)
    step = max(step_ratio * eps, 1e-3)
    for x_adv in (
        fgsm_attack(model, x, y, eps),
        pgd_attack(
            model,
            x,
            y,
            eps,
            step,
            steps,
            random_start=random_start,
            generator=torch.Generator().manual_seed(seed),
        ),
    ):
        assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
        assert (x_adv - x).abs().max().item() <= eps + 1e-6
        assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0


def test_a_custom_clip_range_is_respected():
    model, (x, y) = small_mlp(), unit_batch()
    x = 2 * x - 1  # inputs in [-1, 1]
    for x_adv in (
        fgsm_attack(model, x, y, 0.4, clip=(-1, 1)),
        pgd_attack(model, x, y, 0.4, 0.1, 8, clip=(-1, 1)),
    ):
        assert x_adv.min().item() >= -1 and x_adv.max().item() <= 1
        assert (x_adv - x).abs().max().item() <= 0.4 + 1e-6


# --- what an attack does ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    x, y = two_feature_kinds(600, seed=0)
    x, y = x.float(), y
    torch.manual_seed(0)
    model = mlp(41, 2, hidden=32, depth=1)
    fit(
        model,
        cross_entropy,
        x,
        y,
        config=TrainConfig(epochs=60, lr=3e-2, batch_size=100),
        rng=torch.Generator().manual_seed(0),
    )
    return model, x, y


def test_attacks_increase_the_loss_and_pgd_more_than_fgsm(trained):
    model, x, y = trained
    with torch.no_grad():
        clean = cross_entropy(model(x), y).item()
        fgsm = cross_entropy(model(fgsm_attack(model, x, y, 0.1)), y).item()
        pgd = cross_entropy(
            model(
                pgd_attack(
                    model,
                    x,
                    y,
                    0.1,
                    0.025,
                    20,
                    generator=torch.Generator().manual_seed(0),
                )
            ),
            y,
        ).item()
    assert clean < fgsm <= pgd + 1e-6


def test_adversarial_accuracy_at_zero_epsilon_is_the_clean_accuracy(trained):
    model, x, y = trained
    clean = accuracy(predict(model, x), y)
    for attack in ("fgsm", "pgd"):
        # accuracy() averages in float32, adversarial_accuracy counts exactly
        assert adversarial_accuracy(model, x, y, 0.0, attack) == pytest.approx(
            clean, abs=1e-6
        )
    per_example = adversarial_accuracy(
        model,
        x,
        y,
        0.1,
        "pgd",
        batch_size=64,
        reduction="none",
        generator=torch.Generator().manual_seed(3),
    )
    assert per_example.shape == y.shape and per_example.dtype == torch.bool
    again = adversarial_accuracy(
        model,
        x,
        y,
        0.1,
        "pgd",
        batch_size=64,
        generator=torch.Generator().manual_seed(3),
    )
    assert again == pytest.approx(per_example.float().mean().item())


def test_attacks_use_evaluation_mode_restore_the_mode_and_leave_parameter_gradients_alone():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3)
    )
    x, y = unit_batch()
    model.train()
    first = fgsm_attack(model, x, y, 0.1)
    second = fgsm_attack(
        model, x, y, 0.1
    )  # dropout would make these differ in training mode
    assert torch.equal(first, second)
    pgd_attack(model, x, y, 0.1, 0.02, 3)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert not first.requires_grad and first.grad_fn is None
    model.eval()
    x_req = x.clone().requires_grad_(True)
    out = pgd_attack(model, x_req, y, 0.1, 0.02, 3)
    assert not model.training and not out.requires_grad and x_req.grad is None


def test_pgd_is_deterministic_under_a_seeded_generator():
    model, (x, y) = small_mlp(), unit_batch()
    a = pgd_attack(
        model, x, y, 0.2, 0.02, 3, generator=torch.Generator().manual_seed(7)
    )
    b = pgd_attack(
        model, x, y, 0.2, 0.02, 3, generator=torch.Generator().manual_seed(7)
    )
    c = pgd_attack(
        model, x, y, 0.2, 0.02, 3, generator=torch.Generator().manual_seed(8)
    )
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- adversarial training -----------------------------------------------------------------------------------------


def test_the_training_wrapper_returns_the_logits_of_pgd_examples():
    model, (x, y) = small_mlp(), unit_batch()
    wrapper = AdversarialTraining(
        model, 0.1, 0.03, 4, generator=torch.Generator().manual_seed(5)
    )
    assert list(wrapper.parameters()) == list(model.parameters())
    expected = model(
        pgd_attack(
            model,
            x,
            y,
            0.1,
            0.03,
            4,
            generator=torch.Generator().manual_seed(5),
        )
    )
    assert torch.equal(wrapper(x, y), expected)


def test_adversarial_training_lowers_its_loss_and_buys_robustness_that_plain_training_lacks(
    trained,
):
    # Plain training leans on the 40 weak features (near 100 % accurate together, each flipped by eps = 0.1);
    # the robust feature (90 % accurate, margin 0.3) survives eps = 0.1, and adversarial training must find it.
    standard, x, y = trained
    torch.manual_seed(0)
    robust = mlp(41, 2, hidden=32, depth=1)
    history = fit_adversarial(
        robust,
        x,
        y,
        0.1,
        0.03,
        5,
        epochs=30,
        lr=1e-2,
        batch_size=100,
        generator=torch.Generator().manual_seed(0),
    )
    assert history[-1] < 0.7 * history[0]
    x_test, y_test = (
        t.float() if t.is_floating_point() else t
        for t in two_feature_kinds(400, seed=1)
    )
    g = torch.Generator().manual_seed(0)
    standard_robust = adversarial_accuracy(
        standard, x_test, y_test, 0.1, "pgd", generator=g
    )
    robust_robust = adversarial_accuracy(
        robust, x_test, y_test, 0.1, "pgd", generator=g
    )
    assert accuracy(predict(standard, x_test), y_test) > 0.95
    assert standard_robust < 0.3 and robust_robust > 0.8


# --- agreement with an independent implementation (torchattacks) -------------------------------------------------


def test_fgsm_and_pgd_without_random_start_match_torchattacks_exactly():
    import torchattacks  # installed by `make` (see TEST_ONLY_NO_DEPS in the Makefile)

    model, (x, y) = (
        small_mlp(dtype=torch.float64),
        unit_batch(dtype=torch.float64),
    )
    assert torch.equal(
        fgsm_attack(model, x, y, 0.1), torchattacks.FGSM(model, eps=0.1)(x, y)
    )
    ours = pgd_attack(model, x, y, 0.1, 0.01, 15, random_start=False)
    theirs = torchattacks.PGD(
        model, eps=0.1, alpha=0.01, steps=15, random_start=False
    )(x, y)
    assert torch.equal(ours, theirs)


def test_pgd_with_random_start_gives_the_accuracy_torchattacks_gives(trained):
    import torchattacks  # installed by `make` (see TEST_ONLY_NO_DEPS in the Makefile)

    model, _, _ = trained
    x, y = two_feature_kinds(2000, seed=2)
    x = x.float()
    eps, alpha, steps = 0.06, 0.01, 10
    torch.manual_seed(
        0
    )  # torchattacks draws its random start from the global generator
    x_theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps)(x, y)
    with torch.no_grad():
        theirs = model(x_theirs).argmax(1) == y
    ours = adversarial_accuracy(
        model,
        x,
        y,
        eps,
        "pgd",
        steps=steps,
        step_size=alpha,
        generator=torch.Generator().manual_seed(1),
    )
    assert (
        0.1 < ours < 0.9
    )  # an informative comparison: neither all nor none survive
    assert abs(ours - theirs.double().mean().item()) < 0.03


# --- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda m, x, y: fgsm_attack(m, x, y, -0.1),
            "epsilon must be a finite number >= 0",
        ),
        (
            lambda m, x, y: fgsm_attack(m, x, y, math.nan),
            "epsilon must be a finite number >= 0",
        ),
        (
            lambda m, x, y: pgd_attack(m, x, y, -1.0, 0.1, 3),
            "epsilon must be a finite number >= 0",
        ),
        (
            lambda m, x, y: fgsm_attack(m, x, y, 0.1, clip=(1, 0)),
            "clip must be None or a pair",
        ),
        (
            lambda m, x, y: fgsm_attack(m, x, y, 0.1, clip=(0, 1, 2)),
            "clip must be None or a pair",
        ),
        (
            lambda m, x, y: fgsm_attack(m, x, y, 0.1, clip="01"),
            "clip must be None or a pair",
        ),
        (
            lambda m, x, y: fgsm_attack(m, x, y[:-1], 0.1),
            r"target must have shape \(32,\)",
        ),
        (
            lambda m, x, y: pgd_attack(m, x, y[:, None], 0.1, 0.1, 2),
            r"target must have shape \(32,\)",
        ),
        (
            lambda m, x, y: fgsm_attack(m, x, y.float(), 0.1),
            "target must be a tensor of integer class indices",
        ),
        (
            lambda m, x, y: fgsm_attack(m, x + 1, y, 0.1),
            r"input must lie inside clip = \(0, 1\)",
        ),
        (
            lambda m, x, y: fgsm_attack(m, (x * 255).long(), y, 0.1),
            "input must be a floating-point tensor",
        ),
        (
            lambda m, x, y: pgd_attack(m, x, y, 0.1, 0.0, 3),
            "step_size must be > 0",
        ),
        (
            lambda m, x, y: pgd_attack(m, x, y, 0.1, 0.1, 0),
            "steps must be an integer >= 1",
        ),
        (
            lambda m, x, y: adversarial_accuracy(m, x, y, 0.1, "cw"),
            "attack must be one of",
        ),
        (
            lambda m, x, y: adversarial_accuracy(
                m, x, y, 0.1, reduction="sum"
            ),
            "reduction must be 'mean' or 'none'",
        ),
        (
            lambda m, x, y: adversarial_accuracy(m, x[:0], y[:0], 0.1),
            "input is empty",
        ),
        (
            lambda m, x, y: AdversarialTraining(m, 0.1, 0.1, 0),
            "steps must be an integer >= 1",
        ),
        (
            lambda m, x, y: AdversarialTraining(m, 0.1, 0.0, 3),
            "step_size must be > 0",
        ),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_argument(call, match):
    model, (x, y) = small_mlp(), unit_batch()
    with pytest.raises(ValueError, match=match):
        call(model, x, y)

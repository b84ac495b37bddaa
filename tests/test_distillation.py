"""xentlib.distillation: the distillation loss against PyTorch and its own
identities, soft targets, the student's training."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

import xentlib
from xentlib.distillation import (
    distillation_loss,
    fit_student,
    soft_targets,
)
from xentlib.models import mlp
from xentlib.training import History, TrainConfig


def _case(n=6, c=5, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    student = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    teacher = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    target = torch.randint(0, c, (n,), generator=g)
    return student, teacher, target


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_soft_term_matches_pytorch_kl_div_times_t_squared(temperature):
    s, t, _ = _case()
    reference = (
        F.kl_div(
            F.log_softmax(s / temperature, 1),
            F.log_softmax(t / temperature, 1),
            reduction="batchmean",
            log_target=True,
        )
        * temperature**2
    )
    got = distillation_loss(s, t, temperature=temperature, alpha=1.0)
    torch.testing.assert_close(got, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_soft_term_is_cross_entropy_to_soft_targets_minus_the_teachers_entropy(
    temperature,
):
    s, t, _ = _case()
    p = soft_targets(t, temperature)
    rows = distillation_loss(
        s, t, temperature=temperature, alpha=1.0, reduction="none"
    )
    ce = xentlib.cross_entropy(s / temperature, p, reduction="none")
    torch.testing.assert_close(
        rows,
        temperature**2 * (ce - xentlib.entropy(p)),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_alpha_zero_is_plain_cross_entropy_with_the_labels(reduction):
    s, t, y = _case()
    got = distillation_loss(
        s, t, y, temperature=4.0, alpha=0.0, reduction=reduction
    )
    torch.testing.assert_close(
        got, xentlib.cross_entropy(s, y, reduction=reduction)
    )


def test_loss_is_the_alpha_mixture_of_its_two_terms():
    s, t, y = _case()
    soft = distillation_loss(
        s, t, temperature=2.0, alpha=1.0, reduction="none"
    )
    hard = xentlib.cross_entropy(s, y, reduction="none")
    got = distillation_loss(
        s, t, y, temperature=2.0, alpha=0.3, reduction="none"
    )
    torch.testing.assert_close(got, 0.3 * soft + 0.7 * hard)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_gradient_is_t_times_softened_difference_plus_hard_gradient(
    temperature, alpha
):
    s, t, y = _case()
    s.requires_grad_(True)
    (grad,) = torch.autograd.grad(
        distillation_loss(s, t, y, temperature=temperature, alpha=alpha), s
    )
    q, p = torch.softmax(s / temperature, 1), torch.softmax(t / temperature, 1)
    hard = torch.softmax(s, 1) - F.one_hot(y, s.shape[1]).double()
    expected = (alpha * temperature * (q - p) + (1 - alpha) * hard) / s.shape[
        0
    ]
    torch.testing.assert_close(grad, expected.detach(), rtol=1e-10, atol=1e-12)


def test_gradcheck_in_float64():
    s, t, y = _case(n=3, c=4)
    s.requires_grad_(True)
    assert gradcheck(
        lambda x: distillation_loss(x, t, y, temperature=2.5, alpha=0.6), (s,)
    )


def test_no_gradient_flows_into_the_teacher():
    s, t, y = _case()
    t.requires_grad_(True)
    s.requires_grad_(True)
    distillation_loss(s, t, y).backward()
    assert t.grad is None
    assert s.grad is not None


def test_soft_term_is_zero_when_the_student_matches_the_teacher_shifted():
    _, t, _ = _case()
    shift = torch.arange(t.shape[0], dtype=t.dtype)[
        :, None
    ]  # a constant per row changes no softmax
    rows = distillation_loss(
        t + shift, t, temperature=3.0, alpha=1.0, reduction="none"
    )
    assert rows.abs().max().item() < 1e-12


@settings(max_examples=40, deadline=None)
@given(
    st.floats(0.1, 50.0),
    st.floats(-100.0, 100.0),
    st.floats(-100.0, 100.0),
    st.integers(0, 2**16),
)
def test_loss_is_invariant_to_adding_constants_to_either_logit_row(
    temperature, a, b, seed
):
    s, t, y = _case(seed=seed)
    base = distillation_loss(s, t, y, temperature=temperature, alpha=0.5)
    shifted = distillation_loss(
        s + a, t + b, y, temperature=temperature, alpha=0.5
    )
    torch.testing.assert_close(shifted, base, rtol=1e-9, atol=1e-9)


def test_high_temperature_limit_is_matching_centred_logits():
    s, t, _ = _case(scale=1.0)
    c = s.shape[1]
    centred = (s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
    limit = (centred**2).sum(1) / (2 * c)
    rows = distillation_loss(
        s, t, temperature=1e3, alpha=1.0, reduction="none"
    )
    torch.testing.assert_close(rows, limit, rtol=1e-2, atol=0.0)


def test_loss_is_finite_for_extreme_logits():
    s = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]])
    t = torch.tensor([[-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([1, 0])
    s.requires_grad_(True)
    loss = distillation_loss(s, t, y, temperature=2.0, alpha=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_teacher_masked_class_with_minus_inf_contributes_nothing():
    s = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0, -float("inf")]], dtype=torch.float64)
    got = distillation_loss(s, t, temperature=2.0, alpha=1.0)
    p = torch.softmax(t / 2, 1)[0, :2]
    logq = torch.log_softmax(s / 2, 1)[0, :2]
    torch.testing.assert_close(got, 4.0 * (p * (p.log() - logq)).sum())


def test_reductions_agree():
    s, t, y = _case()
    rows = distillation_loss(s, t, y, reduction="none")
    assert rows.shape == (s.shape[0],)
    torch.testing.assert_close(
        distillation_loss(s, t, y, reduction="sum"), rows.sum()
    )
    torch.testing.assert_close(
        distillation_loss(s, t, y, reduction="mean"), rows.mean()
    )


def test_distillation_loss_rejects_bad_input():
    s, t, y = _case()
    with pytest.raises(
        ValueError, match="temperature must be a positive finite number; got 0"
    ):
        distillation_loss(s, t, y, temperature=0)
    with pytest.raises(
        ValueError, match="temperature must be a positive finite number"
    ):
        distillation_loss(s, t, y, temperature=float("inf"))
    with pytest.raises(
        ValueError, match=r"alpha must be a number in \[0, 1\]; got 1.5"
    ):
        distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match="target is needed when alpha < 1"):
        distillation_loss(s, t, alpha=0.5)
    with pytest.raises(
        ValueError,
        match=(
            r"teacher_logits must have the shape of student_logits \(6, 5\);"
            r" got \(6, 4\)"
        ),
    ):
        distillation_loss(s, t[:, :4], y)
    with pytest.raises(
        ValueError,
        match=r"student_logits must have shape \(N, C\); got \(5,\)",
    ):
        distillation_loss(s[0], t[0], y[:1])
    with pytest.raises(ValueError, match="student_logits contains NaN"):
        distillation_loss(torch.full_like(s, float("nan")), t, y)
    with pytest.raises(ValueError, match="reduction must be one of"):
        distillation_loss(s, t, y, reduction="batchmean")
    with pytest.raises(
        ValueError, match=r"target must hold class indices in \[0, 4\]"
    ):
        distillation_loss(s, t, torch.full_like(y, 7))


def test_soft_targets_at_t1_are_the_softmax_and_keep_the_class_order():
    _, t, _ = _case()
    torch.testing.assert_close(soft_targets(t, 1.0), torch.softmax(t, 1))
    for temperature in (0.3, 2.0, 50.0):
        p = soft_targets(t, temperature)
        torch.testing.assert_close(
            p.sum(1), torch.ones(t.shape[0], dtype=t.dtype)
        )
        assert torch.equal(p.argsort(1), t.argsort(1))


def test_soft_targets_flatten_towards_uniform_as_t_grows():
    _, t, _ = _case()
    entropies = [
        xentlib.entropy(soft_targets(t, temperature)).mean().item()
        for temperature in (1, 4, 16, 1e4)
    ]
    assert entropies == sorted(entropies)
    assert entropies[-1] == pytest.approx(
        torch.log(torch.tensor(5.0)).item(), abs=1e-6
    )
    with pytest.raises(
        ValueError,
        match="temperature must be a positive finite number; got -1",
    ):
        soft_targets(t, -1)
    with pytest.raises(ValueError, match="teacher_logits must have shape"):
        soft_targets(t[0])


def _blobs(n=60, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c
    centres = 3.0 * torch.randn(c, 4, generator=g)
    return centres[y] + torch.randn(n, 4, generator=g), y


def test_fit_student_without_teacher_is_cross_entropy_training_and_repeats():
    x, y = _blobs()

    def run(batch_size):
        torch.manual_seed(0)
        student = mlp(4, 3, hidden=8, depth=1)
        config = TrainConfig(epochs=60, lr=3e-2, batch_size=batch_size)
        history = fit_student(student, x, y, config=config, rng=0)
        return history, student(x).detach()

    (h1, out1), (h2, out2) = run(None), run(None)
    assert isinstance(h1, History)
    assert h1 == h2 and torch.equal(out1, out2)
    assert h1.loss[-1] < 0.2 * h1.loss[0]
    # the same as xentlib.training.fit with the cross-entropy
    torch.manual_seed(0)
    plain = mlp(4, 3, hidden=8, depth=1)
    config = TrainConfig(epochs=60, lr=3e-2, batch_size=16)
    reference = xentlib.training.fit(
        plain, xentlib.cross_entropy, x, y, config=config, rng=0
    )
    h3, out3 = run(16)
    torch.testing.assert_close(h3.loss, reference.loss)
    torch.testing.assert_close(out3, plain(x).detach())
    assert xentlib.training.accuracy(out1, y) > 0.95


def test_fit_student_with_soft_targets_only_learns_to_match_the_teacher():
    x, y = _blobs()
    torch.manual_seed(1)
    teacher = mlp(4, 3, hidden=8, depth=1)
    teacher_logits = teacher(x).detach()
    torch.manual_seed(2)
    student = mlp(4, 3, hidden=16, depth=1)
    before = distillation_loss(
        student(x), teacher_logits, temperature=2.0, alpha=1.0
    ).item()
    history = fit_student(
        student,
        x,
        y,
        teacher_logits,
        temperature=2.0,
        alpha=1.0,
        config=TrainConfig(epochs=150, lr=3e-2),
    )
    after = distillation_loss(
        student(x), teacher_logits, temperature=2.0, alpha=1.0
    ).item()
    assert history.loss[0] == pytest.approx(before)
    assert after < 0.05 * before
    assert torch.equal(student(x).argmax(1), teacher_logits.argmax(1))


def test_fit_student_keeps_the_teachers_rows_with_their_inputs_in_batches():
    # A teacher that names the next class, (y + 1) mod 3, with confidence:
    # a student trained on its soft targets alone in shuffled mini-batches
    # learns that rule only if each example meets its own teacher row.
    x, y = _blobs()
    teacher_logits = 6.0 * torch.nn.functional.one_hot((y + 1) % 3, 3)
    torch.manual_seed(2)
    student = mlp(4, 3, hidden=16, depth=1)
    fit_student(
        student,
        x,
        y,
        teacher_logits.float(),
        temperature=2.0,
        alpha=1.0,
        config=TrainConfig(epochs=60, lr=3e-2, batch_size=8),
        rng=0,
    )
    agree = student(x).argmax(1) == (y + 1) % 3
    assert agree.float().mean().item() > 0.95


def test_fit_student_stops_with_an_error_when_training_diverges():
    x, y = _blobs()
    student = mlp(4, 3, hidden=8, depth=1)
    with torch.no_grad():
        student[0].weight.mul_(1e38)
    with pytest.raises(FloatingPointError, match=r"lr=0\.01"):
        fit_student(
            student,
            x,
            y,
            torch.zeros(60, 3),
            config=TrainConfig(epochs=2, lr=0.01),
        )


def test_fit_student_rejects_bad_input():
    x, y = _blobs()
    student = mlp(4, 3, hidden=8, depth=1)
    config = TrainConfig(epochs=1)
    with pytest.raises(ValueError, match=r"inputs must have shape \(N, D\)"):
        fit_student(student, x[0], y, config=config)
    with pytest.raises(
        ValueError,
        match=r"teacher_logits must have one row per row of inputs \(60\)",
    ):
        fit_student(student, x, y, torch.zeros(5, 3), config=config)
    with pytest.raises(ValueError, match="target must hold class indices"):
        fit_student(student, x, y - 1, config=config)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        fit_student(student, x, y, config={"epochs": 1})


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"
)
def test_distillation_loss_on_cuda_matches_the_cpu():
    s, t, y = _case()
    cpu = distillation_loss(s, t, y, temperature=3.0, alpha=0.4)
    gpu = distillation_loss(
        s.cuda(), t.cuda(), y.cuda(), temperature=3.0, alpha=0.4
    )
    torch.testing.assert_close(gpu.cpu(), cpu)

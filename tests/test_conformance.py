"""xentlib.cross_entropy on a large random batch, row by row, against PyTorch
in float32 and SciPy in float64.

These checks used to be a section of chapter 1. PyTorch is not an independent
reference for the forward pass (xentlib calls ``log_softmax``), so the float32
comparison pins down that the options (probability targets, class weights,
label smoothing) and the analytic backward agree with PyTorch's to float32
rounding; the float64 comparison with SciPy, which shares no code with
PyTorch, is the independent one. tests/test_losses.py covers every option on
small inputs; these add a 4096-row batch and reduction="none".
"""

import numpy as np
import pytest
import scipy.special
import torch
import torch.nn.functional as F

import xentlib

N_ROWS, N_CLASSES, SCALE = 4096, 10, 3.0


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    logits = SCALE * torch.randn(N_ROWS, N_CLASSES, generator=g)
    labels = torch.randint(0, N_CLASSES, (N_ROWS,), generator=g)
    soft = torch.softmax(
        torch.randn(N_ROWS, N_CLASSES, generator=g, dtype=torch.float64), -1
    )
    weights = 0.5 + 1.5 * torch.rand(N_CLASSES, generator=g)
    return logits, labels, soft, weights


def _losses_and_gradients(fn, logits, target, options):
    z = logits.clone().requires_grad_()
    rows = fn(z, target, reduction="none", **options)
    (grad,) = torch.autograd.grad(rows.sum(), z)
    return rows.detach(), grad


@pytest.mark.parametrize(
    "setting", ["class indices", "probabilities", "weights and smoothing"]
)
def test_float32_rows_and_gradients_match_pytorch(batch, setting):
    logits, labels, soft, weights = batch
    target, options = {
        "class indices": (labels, {}),
        "probabilities": (soft.float(), {}),
        "weights and smoothing": (
            labels,
            {"weight": weights, "label_smoothing": 0.1},
        ),
    }[setting]
    ours, g_ours = _losses_and_gradients(
        xentlib.cross_entropy, logits, target, options
    )
    ref, g_ref = _losses_and_gradients(
        F.cross_entropy, logits, target, options
    )
    # within a few float32 rounding units of the loss itself (a loss of 10
    # is known to about 1e-6; one below 1 to about 1e-7)
    gap = (ours - ref).abs() / ref.abs().clamp_min(1.0)
    assert gap.max().item() < 1e-6
    # the gradient of the summed loss has entries softmax - target, of size 1
    assert (g_ours - g_ref).abs().max().item() < 1e-6


def test_float64_rows_match_scipy_logsumexp(batch):
    logits, labels, soft, _ = batch
    z = logits.double().numpy()
    y = labels.numpy()
    reference = scipy.special.logsumexp(z, axis=1) - z[np.arange(N_ROWS), y]
    reference_soft = -(
        soft.numpy() * scipy.special.log_softmax(z, axis=1)
    ).sum(1)
    ours = xentlib.cross_entropy(logits.double(), labels, reduction="none")
    ours_soft = xentlib.cross_entropy(logits.double(), soft, reduction="none")
    np.testing.assert_allclose(ours.numpy(), reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        ours_soft.numpy(), reference_soft, rtol=0, atol=1e-12
    )


def test_float32_rows_are_within_float32_resolution_of_float64(batch):
    logits, labels, _, _ = batch
    exact = xentlib.cross_entropy(logits.double(), labels, reduction="none")
    single = xentlib.cross_entropy(logits, labels, reduction="none")
    # losses reach about 20 nats here; float32 resolves those to ~2e-6
    assert (single.double() - exact).abs().max().item() < 1e-5

"""Rotation prediction, the fair random baseline and linear probes
(chapter 10)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import xentlib
from xentlib.self_supervised import (
    Classifier,
    ConvEncoder,
    EncoderConfig,
    LinearProbe,
    calibrate_batchnorm,
    extract_features,
    few_shot_indices,
    few_shot_probe_accuracies,
    fit_linear_probe,
    rotation_batch,
)
from xentlib.training import TrainConfig, accuracy, fit, predict


def _images(n=3, size=8, seed=0):
    return torch.rand(
        n, 1, size, size, generator=torch.Generator().manual_seed(seed)
    )


# --- rotations -------------------------------------------------------------


def test_rotation_batch_stacks_the_four_turns_with_their_labels():
    x = _images(5)
    rotated, labels = rotation_batch(x)
    assert rotated.shape == (20, 1, 8, 8)
    assert labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for k in range(4):
        torch.testing.assert_close(
            rotated[labels == k],
            torch.rot90(x, k, dims=(-2, -1)),
            rtol=0,
            atol=0,
        )


def test_a_quarter_turn_is_counter_clockwise():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    rotated, _ = rotation_batch(x)
    # The top-right pixel (2) moves to the top-left.
    assert rotated[1, 0].tolist() == [[2.0, 4.0], [1.0, 3.0]]
    assert rotated[2, 0].tolist() == [[4.0, 3.0], [2.0, 1.0]]


@given(k=st.integers(0, 3), seed=st.integers(0, 1000))
@settings(max_examples=20, deadline=None)
def test_turning_by_k_then_back_by_k_is_the_identity(k, seed):
    x = _images(2, 6, seed)
    rotated, labels = rotation_batch(x)
    back = torch.rot90(rotated[labels == k], -k, dims=(-2, -1))
    assert torch.equal(back, x)


def test_rotation_batch_rejects_non_square_or_non_image_input():
    with pytest.raises(ValueError, match=r"x must hold square images"):
        rotation_batch(torch.zeros(2, 1, 4, 5))
    with pytest.raises(
        ValueError,
        match=r"x must be a tensor of images of shape \(N, C, H, W\)",
    ):
        rotation_batch(torch.zeros(4, 4))


# --- the encoder -----------------------------------------------------------


def test_encoder_and_head_have_the_documented_shapes():
    torch.manual_seed(0)
    encoder = ConvEncoder(EncoderConfig(widths=(4, 8, 12)))
    x = _images(5, 32)
    assert encoder(x).shape == (5, 12) and encoder.feature_dim == 12
    assert encoder.blocks[0][0].weight.shape == (4, 1, 5, 5)
    assert Classifier(encoder, 4)(x).shape == (5, 4)
    with pytest.raises(
        ValueError, match=r"first_kernel must be a positive odd integer"
    ):
        EncoderConfig(first_kernel=4)


def test_block_features_are_pooled_maps_and_the_last_is_the_output():
    torch.manual_seed(0)
    encoder = ConvEncoder(EncoderConfig(widths=(3, 5, 7))).eval()
    x = _images(4, 16)
    pooled = encoder.block_features(x)
    assert [p.shape for p in pooled] == [(4, 3), (4, 5), (4, 7)]
    torch.testing.assert_close(pooled[-1], encoder(x))
    torch.testing.assert_close(
        pooled[0], encoder.blocks[0](x).mean(dim=(-2, -1))
    )
    encoder.train()
    torch.testing.assert_close(
        extract_features(encoder, x, blocks=1), pooled[1].detach()
    )
    torch.testing.assert_close(
        extract_features(encoder, x, blocks=-1), extract_features(encoder, x)
    )
    torch.testing.assert_close(
        extract_features(encoder, x, blocks=(0, 2)),
        torch.cat([pooled[0], pooled[2]], 1).detach(),
    )
    assert encoder.training  # the mode is restored
    with pytest.raises(ValueError, match=r"blocks must be an integer"):
        extract_features(encoder, x, blocks=3)


def test_extract_features_uses_evaluation_mode_without_gradients():
    torch.manual_seed(0)
    encoder = ConvEncoder(EncoderConfig(widths=(4, 8)))
    x = _images(10, 16)
    features = extract_features(encoder, x, batch_size=3)
    assert features.shape == (10, 8) and not features.requires_grad
    encoder.eval()
    torch.testing.assert_close(features, encoder(x).detach())


def _oriented_images(n=48, seed=0):
    """Images with an obvious 'up': a bright top row above noise."""
    x = 0.1 * torch.randn(
        n, 1, 12, 12, generator=torch.Generator().manual_seed(seed)
    )
    x[:, :, :2] += 2.0
    return x


def _pretext_run(seed):
    torch.manual_seed(seed)
    model = Classifier(
        ConvEncoder(EncoderConfig(widths=(4, 8), first_kernel=3)), 4
    )
    rotated, turns = rotation_batch(_oriented_images())
    history = fit(
        model,
        xentlib.cross_entropy,
        rotated,
        turns,
        config=TrainConfig(epochs=10, lr=2e-2, batch_size=16),
        rng=seed,
    )
    return model, history


def test_the_pretext_loss_decreases_and_the_turn_is_learned():
    model, history = _pretext_run(0)
    assert history.loss[-1] < 0.5 * history.loss[0]
    rotated, turns = rotation_batch(_oriented_images(seed=1))
    assert accuracy(predict(model, rotated), turns) > 0.9


def test_pretext_training_repeats_exactly_under_a_seed():
    (m1, h1), (m2, h2) = _pretext_run(3), _pretext_run(3)
    assert h1.loss == h2.loss
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


# --- the calibrated random baseline -----------------------------------------


def test_calibration_sets_the_statistics_of_the_data_and_no_weight():
    torch.manual_seed(0)
    encoder = ConvEncoder(EncoderConfig(widths=(4, 6)))
    weights = {
        k: v.clone()
        for k, v in encoder.state_dict().items()
        if "running" not in k and "num_batches" not in k
    }
    x = 3.0 + 2.0 * _images(40, 12)
    calibrate_batchnorm(encoder, x, batch_size=40)
    assert encoder.training  # the mode is restored
    for k, v in weights.items():
        assert torch.equal(encoder.state_dict()[k], v)
    # One batch: the running mean is that batch's mean of the convolution.
    conv, norm = encoder.blocks[0][0], encoder.blocks[0][1]
    with torch.no_grad():
        h = conv(x)
    torch.testing.assert_close(norm.running_mean, h.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(
        norm.running_var, h.var(dim=(0, 2, 3), unbiased=True)
    )
    assert norm.momentum == 0.1  # the layer's momentum is put back


def test_calibration_averages_the_batches_equally():
    torch.manual_seed(0)
    a = ConvEncoder(EncoderConfig(widths=(4,)))
    b = ConvEncoder(EncoderConfig(widths=(4,)))
    b.load_state_dict(a.state_dict())
    x = _images(40, 8)
    calibrate_batchnorm(a, x, batch_size=20)
    norm = a.blocks[0][1]
    with torch.no_grad():
        h = a.blocks[0][0](x)
    means = torch.stack([h[:20].mean((0, 2, 3)), h[20:].mean((0, 2, 3))])
    torch.testing.assert_close(norm.running_mean, means.mean(0))
    calibrate_batchnorm(b, x, batch_size=40)
    torch.testing.assert_close(norm.running_mean, b.blocks[0][1].running_mean)


# --- probes ----------------------------------------------------------------


def test_few_shot_indices_pick_per_class_examples_of_every_class():
    labels = torch.tensor([0, 1, 2] * 10)
    idx = few_shot_indices(labels, 4, rng=0)
    assert torch.bincount(labels[idx]).tolist() == [4, 4, 4]
    assert torch.equal(idx, few_shot_indices(labels, 4, rng=0))
    with pytest.raises(ValueError, match=r"class 0 has 10"):
        few_shot_indices(labels, 11)
    with pytest.raises(ValueError, match=r"labels must be a tensor"):
        few_shot_indices(labels.reshape(1, -1), 2)


def _blobs(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, -1.0]]
    )
    return centres[y] + torch.randn(n, 4, generator=g), y


def test_the_linear_probe_matches_scikit_learn_logistic_regression():
    x, y = _blobs(60)
    fit_ = fit_linear_probe(x.double(), y, 3, weight_decay=1e-2)
    scaled = (x - x.mean(0)) / (x.std(0) + 1e-6)
    # scikit-learn's C is 1 / (lambda * N); it leaves the intercept free.
    reference = LogisticRegression(
        C=1.0 / (1e-2 * len(x)), tol=1e-12, max_iter=10_000
    ).fit(scaled.double().numpy(), y.numpy())
    ours = torch.softmax(fit_.probe(x.double()), 1).detach().numpy()
    theirs = reference.predict_proba(scaled.double().numpy())
    assert np.abs(ours - theirs).max() < 1e-4


def test_the_linear_probe_ignores_the_scale_of_the_features():
    x, y = _blobs()
    a = predict(fit_linear_probe(x, y, 3).probe, x)
    b = predict(fit_linear_probe(1000.0 * x + 5.0, y, 3).probe, 1000.0 * x + 5)
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_linear_probe_rejects_a_bad_standard_deviation():
    for std in (torch.zeros(3), -torch.ones(3), torch.full((3,), np.nan)):
        with pytest.raises(ValueError, match=r"std must hold finite positive"):
            LinearProbe(torch.zeros(3), std, 2)
    with pytest.raises(ValueError, match=r"std must be a tensor"):
        LinearProbe(torch.zeros(3), torch.ones(2), 2)


def test_few_shot_probe_accuracies_repeat_and_use_the_same_draws():
    x, y = _blobs(300)
    xt, yt = _blobs(200, seed=1)

    def run(scale, seed):
        return few_shot_probe_accuracies(
            scale * x, y, scale * xt, yt, per_class=5, draws=3, rng=seed
        )

    acc = run(1.0, 0)
    assert acc.shape == (3,) and acc.dtype == torch.float64
    assert torch.equal(acc, run(1.0, 0))
    # The same draws: scaled features give the same probes.
    torch.testing.assert_close(acc, run(2.0, 0))
    assert acc.min() > 0.5


def test_mismatched_rows_are_rejected_naming_both_arguments():
    x, y = _blobs(30)
    with pytest.raises(ValueError, match=r"labels .*features"):
        fit_linear_probe(x, y[:-1], 3)
    with pytest.raises(ValueError, match=r"train_labels .*train_features"):
        few_shot_probe_accuracies(x, y[:-1], x, y, per_class=2, draws=1)
    with pytest.raises(ValueError, match=r"test_labels .*test_features"):
        few_shot_probe_accuracies(x, y, x, y[:-1], per_class=2, draws=1)

"""Rotation prediction, the crop sampler and linear probes (chapter 10)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import xentlib
from xentlib.self_supervised import (
    SOURCES,
    SPLITS,
    Classifier,
    ConvEncoder,
    EncoderConfig,
    RotationPredictor,
    brightness_gradient,
    crop_dataset,
    extract_features,
    few_shot_block_accuracies,
    few_shot_indices,
    few_shot_probe_accuracies,
    fit_linear_probe,
    load_sources,
    remove_brightness_gradient,
    rotation_batch,
    rotation_loss,
    sample_crops,
    split_mask,
)
from xentlib.training import TrainConfig, accuracy, fit, predict


@pytest.fixture(scope="module")
def sources():
    return load_sources()


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
    # The top-right pixel (2) moves to the top-left under a counter-clockwise turn.
    assert rotated[1, 0].tolist() == [[2.0, 4.0], [1.0, 3.0]]
    assert rotated[2, 0].tolist() == [[4.0, 3.0], [2.0, 1.0]]


@given(k=st.integers(0, 3), seed=st.integers(0, 1000))
@settings(max_examples=20, deadline=None)
def test_turning_by_k_then_back_by_k_is_the_identity(k, seed):
    x = _images(2, 6, seed)
    rotated, labels = rotation_batch(x)
    back = torch.rot90(rotated[labels == k], -k, dims=(-2, -1))
    assert torch.equal(back, x)


def test_four_turns_of_a_constant_image_are_identical():
    rotated, _ = rotation_batch(torch.full((1, 1, 7, 7), 0.3))
    assert all(torch.equal(rotated[0], rotated[k]) for k in range(4))


def test_rotation_batch_rejects_non_square_or_non_image_input():
    with pytest.raises(ValueError, match=r"x must hold square images"):
        rotation_batch(torch.zeros(2, 1, 4, 5))
    with pytest.raises(
        ValueError,
        match=(
            r"x must be a tensor of images of shape \(N, C, H, W\); got"
            r" \(4, 4\)"
        ),
    ):
        rotation_batch(torch.zeros(4, 4))


def test_rotation_loss_is_cross_entropy_against_the_applied_turns():
    x = _images(4)
    logits = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    _, labels = rotation_batch(x)
    torch.testing.assert_close(
        rotation_loss(logits, x), xentlib.cross_entropy(logits, labels)
    )
    torch.testing.assert_close(
        rotation_loss(logits, x, reduction="none"),
        torch.nn.functional.cross_entropy(logits, labels, reduction="none"),
    )


def test_rotation_loss_rejects_logits_of_the_wrong_shape():
    with pytest.raises(
        ValueError,
        match=(
            r"input must hold rotation logits of shape \(4N, 4\) = \(12, 4\)"
            r" for N = 3"
        ),
    ):
        rotation_loss(torch.zeros(3, 4), _images(3))


# --- crops -----------------------------------------------------------------


def test_crops_have_the_requested_shape_and_are_standardized():
    image = np.random.default_rng(0).random((100, 120))
    crops = sample_crops(
        image, 7, size=16, scale=2, generator=torch.Generator().manual_seed(0)
    )
    assert crops.shape == (7, 1, 16, 16) and crops.dtype == torch.float32
    flat = crops.reshape(7, -1).double()
    torch.testing.assert_close(
        flat.mean(1), torch.zeros(7, dtype=torch.float64), rtol=0, atol=1e-6
    )
    torch.testing.assert_close(
        flat.std(1), torch.ones(7, dtype=torch.float64), rtol=0, atol=1e-4
    )


def test_crops_repeat_under_a_seed_and_differ_across_seeds():
    image = np.random.default_rng(0).random((64, 64))

    def draw(seed):
        return sample_crops(
            image,
            5,
            size=8,
            scale=2,
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_a_crop_is_the_block_average_of_its_window():
    window = np.random.default_rng(1).random((8, 8))  # exactly one window fits
    crop = sample_crops(window, 1, size=4, scale=2, standardize=False)
    expected = window.reshape(4, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(crop[0, 0].numpy(), expected, rtol=1e-6)


def test_crops_stay_inside_the_valid_mask():
    image = np.zeros((60, 60))
    image[:, 30:] = 1.0  # forbidden half marked with ones
    crops = sample_crops(
        image,
        50,
        size=5,
        scale=2,
        valid=image == 0,
        standardize=False,
        generator=torch.Generator().manual_seed(0),
    )
    assert crops.max() == 0.0


def test_sample_crops_error_messages():
    image = np.zeros((20, 20))
    with pytest.raises(
        ValueError,
        match=(
            r"image must be a grayscale picture of shape \(H, W\); got shape"
            r" \(20, 20, 3"
        ),
    ):
        sample_crops(np.zeros((20, 20, 3)), 1)
    with pytest.raises(
        ValueError, match=r"size must be a positive integer; got 0"
    ):
        sample_crops(image, 1, size=0)
    with pytest.raises(
        ValueError, match=r"n must be a non-negative integer; got -1"
    ):
        sample_crops(image, -1, size=4)
    with pytest.raises(
        ValueError,
        match=r"valid must have the image's shape \(20, 20\); got \(10, 10\)",
    ):
        sample_crops(image, 1, size=4, valid=np.ones((10, 10), dtype=bool))
    with pytest.raises(ValueError, match=r"no 64x64 window fits"):
        sample_crops(image, 1, size=32, scale=2)


def test_the_three_splits_partition_every_picture():
    masks = [split_mask((130, 97), split) for split in SPLITS]
    total = sum(m.astype(int) for m in masks)
    assert (total == 1).all()
    fractions = [split_mask((512, 512), s).mean() for s in SPLITS]
    assert fractions == [0.5, 0.25, 0.25]


def test_split_mask_error_messages():
    with pytest.raises(
        ValueError,
        match=(
            r"split must be one of \('pretext', 'train', 'test'\); got 'val'"
        ),
    ):
        split_mask((10, 10), "val")
    with pytest.raises(
        ValueError, match=r"grid must be an integer of at least 2; got 1"
    ):
        split_mask((10, 10), "train", grid=1)


def test_the_bundled_pictures_load_as_grayscale_in_the_unit_interval(sources):
    assert [s.name for s in sources] == list(SOURCES)
    for s in sources:
        assert (
            s.pixels.ndim == 2 and s.pixels.min() >= 0 and s.pixels.max() <= 1
        )
    retina = sources[SOURCES.index("retina")]
    assert (
        retina.valid is not None
        and not retina.valid[0, 0]
        and retina.valid[700, 700]
    )
    with pytest.raises(
        ValueError, match=r"names must be among .*; got 'astronaut'"
    ):
        load_sources(("astronaut",))


def test_the_crop_scale_is_native_by_default_and_doubled_for_the_retina(
    sources,
):
    assert {s.name: s.scale for s in sources} == {
        name: 2 if name == "retina" else 1 for name in SOURCES
    }
    coarse = load_sources(("brick", "retina"), scale=3)
    assert [s.scale for s in coarse] == [3, 6]
    assert np.array_equal(
        coarse[0].pixels, sources[SOURCES.index("brick")].pixels
    )
    for bad in (0, 1.5, True):
        with pytest.raises(
            ValueError, match=r"scale must be a positive integer; got"
        ):
            load_sources(("brick",), scale=bad)


def test_crop_dataset_labels_each_crop_with_its_picture_and_repeats(sources):
    def draw():
        return crop_dataset(
            sources,
            3,
            split="test",
            generator=torch.Generator().manual_seed(5),
        )

    (x, y), (x2, y2) = draw(), draw()
    assert x.shape == (18, 1, 32, 32)
    assert y.tolist() == sum(([i] * 3 for i in range(6)), [])
    assert torch.equal(x, x2) and torch.equal(y, y2)
    with pytest.raises(
        ValueError, match=r"sources must hold at least one SourceImage"
    ):
        crop_dataset([], 3, split="test")


# --- brightness gradients --------------------------------------------------


def test_brightness_gradient_recovers_the_slopes_of_a_plane():
    u = torch.linspace(-1, 1, 9)[:, None].expand(9, 9)
    v = torch.linspace(-1, 1, 9)[None, :].expand(9, 9)
    plane = (0.5 + 0.3 * u - 0.2 * v).reshape(1, 1, 9, 9)
    torch.testing.assert_close(
        brightness_gradient(plane), torch.tensor([[0.3, -0.2]])
    )


def test_removing_the_gradient_leaves_a_standardized_image_without_slope():
    x = _images(4, 10)
    ramp = torch.linspace(0, 5, 10)[None, None, None, :]
    flat = remove_brightness_gradient(x + ramp)
    torch.testing.assert_close(
        brightness_gradient(flat), torch.zeros(4, 2), rtol=0, atol=1e-5
    )
    # Adding a plane does not change the result: only the structure is left.
    torch.testing.assert_close(
        flat, remove_brightness_gradient(x), rtol=0, atol=1e-5
    )
    torch.testing.assert_close(
        flat.reshape(4, -1).std(1), torch.ones(4), rtol=0, atol=1e-4
    )


def test_a_quarter_turn_turns_the_gradient_and_keeps_its_length():
    x = _images(6, 12)
    g = brightness_gradient(x)
    g_turned = brightness_gradient(torch.rot90(x, 1, dims=(-2, -1)))
    torch.testing.assert_close(g_turned.norm(dim=1), g.norm(dim=1))
    # Counter-clockwise: what increased to the right now increases upwards.
    torch.testing.assert_close(
        g_turned, torch.stack([-g[:, 1], g[:, 0]], dim=1)
    )


def test_gradient_functions_reject_colour_images():
    with pytest.raises(
        ValueError,
        match=r"x must be a floating tensor of images of shape \(N, 1, H, W\)",
    ):
        brightness_gradient(torch.zeros(2, 3, 4, 4))


# --- models ----------------------------------------------------------------


def test_encoder_and_heads_have_the_documented_shapes():
    torch.manual_seed(0)
    encoder = ConvEncoder(EncoderConfig(widths=(4, 8, 12)))
    x = _images(5, 32)
    assert encoder(x).shape == (5, 12) and encoder.feature_dim == 12
    assert encoder.first_layer.weight.shape == (4, 1, 5, 5)
    assert Classifier(encoder, 6)(x).shape == (5, 6)
    assert RotationPredictor(encoder)(x).shape == (20, 4)
    with pytest.raises(
        ValueError, match=r"first_kernel must be a positive odd integer; got 4"
    ):
        ConvEncoder(EncoderConfig(first_kernel=4))


def _oriented_images(n=48, seed=0):
    """Images with an obvious 'up': a bright top row above noise."""
    x = 0.1 * torch.randn(
        n, 1, 12, 12, generator=torch.Generator().manual_seed(seed)
    )
    x[:, :, :2] += 2.0
    return x


def _pretext_run(seed):
    torch.manual_seed(seed)
    model = RotationPredictor(
        ConvEncoder(EncoderConfig(widths=(4, 8), first_kernel=3))
    )
    history = fit(
        model,
        rotation_loss,
        _oriented_images(),
        config=TrainConfig(epochs=10, lr=2e-2, batch_size=16),
        rng=torch.Generator().manual_seed(seed),
    )
    return model, history


def test_the_pretext_loss_decreases_and_the_turn_is_learned_on_a_tiny_set():
    model, history = _pretext_run(0)
    assert history.loss[-1] < 0.5 * history.loss[0]
    x = _oriented_images(seed=1)
    _, labels = rotation_batch(x)
    assert accuracy(predict(model, x), labels) > 0.9


def test_pretext_training_repeats_exactly_under_a_seed():
    (m1, h1), (m2, h2) = _pretext_run(3), _pretext_run(3)
    assert h1 == h2
    assert torch.equal(
        m1.encoder.first_layer.weight, m2.encoder.first_layer.weight
    )


def test_extract_features_uses_evaluation_mode_without_gradients():
    torch.manual_seed(0)
    encoder = ConvEncoder(EncoderConfig(widths=(4, 8)))
    x = _images(10, 16)
    features = extract_features(encoder, x, batch_size=3)
    assert features.shape == (10, 8) and not features.requires_grad
    assert encoder.training  # the mode is restored
    encoder.eval()
    torch.testing.assert_close(features, encoder(x).detach())
    with pytest.raises(
        ValueError,
        match=(
            r"x must be a tensor of images of shape \(N, C, H, W\); got \(10,"
            r" 256\)"
        ),
    ):
        extract_features(encoder, x.reshape(10, -1))


def test_block_features_are_pooled_maps_of_every_depth_and_the_last_is_the_output():
    torch.manual_seed(0)
    encoder = ConvEncoder(EncoderConfig(widths=(3, 5, 7))).eval()
    x = _images(4, 16)
    pooled = encoder.block_features(x)
    assert [p.shape for p in pooled] == [(4, 3), (4, 5), (4, 7)]
    torch.testing.assert_close(pooled[-1], encoder(x))
    first = encoder.blocks[0](x).mean(
        dim=(-2, -1)
    )  # block 0 sees the full-resolution image
    torch.testing.assert_close(pooled[0], first)
    encoder.train()
    torch.testing.assert_close(
        extract_features(encoder, x, block=1), pooled[1].detach()
    )
    torch.testing.assert_close(
        extract_features(encoder, x, block=-1), extract_features(encoder, x)
    )
    assert encoder.training
    with pytest.raises(
        ValueError,
        match=r"block must be an integer in \[-3, 2\] or None; got 3",
    ):
        extract_features(encoder, x, block=3)


# --- probes ----------------------------------------------------------------


def test_few_shot_indices_pick_per_class_examples_of_every_class_repeatably():
    labels = torch.tensor([0, 1, 2] * 10)
    idx = few_shot_indices(labels, 4, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[idx]).tolist() == [4, 4, 4]
    assert torch.equal(
        idx, few_shot_indices(labels, 4, torch.Generator().manual_seed(0))
    )
    with pytest.raises(
        ValueError,
        match=(
            r"class 0 has 10 examples; per_class must be at most that, got 11"
        ),
    ):
        few_shot_indices(labels, 11)
    with pytest.raises(
        ValueError, match=r"per_class must be a positive integer; got 0"
    ):
        few_shot_indices(labels, 0)


def _blobs(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, -1.0]]
    )
    return centres[y] + torch.randn(n, 4, generator=g), y


def test_the_linear_probe_matches_scikit_learn_logistic_regression():
    x, y = _blobs()
    xt, yt = _blobs(seed=1)
    probe = fit_linear_probe(x, y, 3, epochs=500, weight_decay=1e-3)
    ours = predict(probe, xt).argmax(1).numpy()
    scaled = (x - x.mean(0)) / x.std(0)
    reference = LogisticRegression(C=1.0 / (1e-3 * len(x))).fit(
        scaled.numpy(), y.numpy()
    )
    theirs = reference.predict(((xt - x.mean(0)) / x.std(0)).numpy())
    assert np.mean(ours == theirs) >= 0.98
    assert (
        abs(accuracy(predict(probe, xt), yt) - np.mean(theirs == yt.numpy()))
        <= 0.02
    )


def test_the_linear_probe_ignores_the_scale_of_the_features():
    x, y = _blobs()
    a = predict(fit_linear_probe(x, y, 3, epochs=100), x)
    b = predict(
        fit_linear_probe(1000.0 * x + 5.0, y, 3, epochs=100), 1000.0 * x + 5.0
    )
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_few_shot_probe_accuracies_repeat_under_a_seed_and_use_the_same_draws():
    x, y = _blobs(300)
    xt, yt = _blobs(200, seed=1)

    def run(features, seed):
        return few_shot_probe_accuracies(
            features,
            y,
            xt if features is x else 2 * xt,
            yt,
            per_class=5,
            draws=3,
            generator=torch.Generator().manual_seed(seed),
            epochs=40,
            lr=0.1,
        )

    acc = run(x, 0)
    assert acc.shape == (3,) and acc.dtype == torch.float64
    assert torch.equal(acc, run(x, 0))
    # Same draws: features scaled by 2 give the same probes (the probe standardizes them).
    torch.testing.assert_close(acc, run(2 * x, 0))
    assert acc.min() > 0.5
    with pytest.raises(
        ValueError, match=r"draws must be a positive integer; got 0"
    ):
        few_shot_probe_accuracies(x, y, xt, yt, per_class=5, draws=0)
    with pytest.raises(
        ValueError,
        match=(
            r"test_features must have shape \(M, 4\) like the training"
            r" features"
        ),
    ):
        few_shot_probe_accuracies(x, y, xt[:, :3], yt, per_class=5, draws=1)


def test_fit_linear_probe_error_messages():
    x, y = _blobs(10)
    with pytest.raises(
        ValueError,
        match=r"features must be a tensor of shape \(N, D\); got \(10,\)",
    ):
        fit_linear_probe(x[:, 0], y, 3)
    with pytest.raises(
        ValueError,
        match=(
            r"labels must be a tensor of shape \(10,\), one per feature row;"
            r" got \(9,\)"
        ),
    ):
        fit_linear_probe(x, y[:9], 3)
    with pytest.raises(
        ValueError, match=r"target must hold class indices in \[0, 1\]"
    ):
        fit_linear_probe(x, y, 2)


def _encoder_and_blob_images(seed=0):
    """Images whose class is a bright blob in one of three places, and a small random encoder."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat_interleave(40)
    x = 0.3 * torch.randn(len(y), 1, 8, 8, generator=g)
    for c, (r, col) in enumerate([(1, 1), (1, 5), (5, 3)]):
        x[y == c, :, r : r + 2, col : col + 2] += 2.0
    torch.manual_seed(seed)
    return ConvEncoder(EncoderConfig(widths=(4, 6), first_kernel=3)), x, y


def test_few_shot_block_accuracies_probe_every_block_on_the_same_draws():
    encoder, x, y = _encoder_and_blob_images()
    xe, ye = x.flip(0), y.flip(0)
    sets = {"a": (xe, ye), "b": (xe[:30], ye[:30])}
    acc = few_shot_block_accuracies(
        encoder, x, y, sets, per_class=5, draws=3, seed=7, epochs=50
    )
    assert (
        set(acc) == {"a", "b"}
        and acc["a"].shape == (2, 3)
        and acc["a"].dtype == torch.float64
    )
    for block in range(
        2
    ):  # each row is few_shot_probe_accuracies of that block, with a fresh generator per block
        for name, (xs, ys) in sets.items():
            reference = few_shot_probe_accuracies(
                extract_features(encoder, x, block),
                y,
                extract_features(encoder, xs, block),
                ys,
                per_class=5,
                draws=3,
                generator=torch.Generator().manual_seed(7),
                epochs=50,
            )
            torch.testing.assert_close(
                acc[name][block], reference, rtol=0, atol=0
            )
    again = few_shot_block_accuracies(
        encoder, x, y, sets, per_class=5, draws=3, seed=7, epochs=50
    )
    assert all(torch.equal(acc[k], again[k]) for k in sets)
    assert (
        acc["a"].mean() > 0.5
    )  # the blobs are easy: the probes learn something
    with pytest.raises(ValueError, match=r"seed must be an integer; got 0.5"):
        few_shot_block_accuracies(
            encoder, x, y, sets, per_class=5, draws=3, seed=0.5
        )
    with pytest.raises(ValueError, match=r"evaluate must be a non-empty dict"):
        few_shot_block_accuracies(encoder, x, y, {}, per_class=5, draws=3)

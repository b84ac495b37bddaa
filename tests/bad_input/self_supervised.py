"""Rows for xentlib.self_supervised: rotations, the encoder, the fair
random baseline and the few-shot linear probes."""

import math

import torch

from xentlib import self_supervised as ss

from . import (
    Arg,
    Row,
    class_index,
    module,
    nonneg_real,
    positive_int,
    rng,
    tensor,
)

_gen = torch.Generator().manual_seed(0)
_images = torch.rand(6, 1, 8, 8, generator=_gen)
_features = torch.randn(12, 3, generator=_gen)
_labels = torch.arange(12) % 3
_test_features = torch.randn(9, 3, generator=_gen)
_test_labels = torch.arange(9) % 3
_config = ss.EncoderConfig(widths=(4, 8))


def _encoder():
    torch.manual_seed(0)
    return ss.ConvEncoder(_config)


#: Images: a 4-d floating tensor without NaN or inf (any number of rows).
_image_kinds = tensor(rows=False)


def _non_square(good):
    yield "non-square images", good[..., :-1]
    yield "integer pixels", good.long()


def _std_kinds(good):
    yield "a zero", torch.zeros_like(good)
    yield "a negative one", -good
    yield "NaN", torch.full_like(good, math.nan)
    yield "the wrong length", good[:-1]
    yield "a string", "1"


def _block_kinds(good):
    yield from (("out of range", 2), ("below -depth", -3), ("0.5", 0.5))
    yield from (("a string", "0"), ("empty", ()), ("a list", [0, 1]))
    yield "a tuple with a bad block", (0, 5)


def _widths_kinds(good):
    yield from (("empty", ()), ("a zero width", (4, 0)), ("a list", [4, 8]))
    yield "a fractional width", (4, 2.5)


def _kernel_kinds(good):
    yield from positive_int(good)
    yield "even", 4


def _labels_one_short(good):
    yield "one row short", good[:-1]
    yield "a row of labels", good.unsqueeze(0)


EXEMPT = {
    "xentlib.self_supervised.LinearProbeFit": (
        "a frozen result dataclass, built only by fit_linear_probe"
    ),
}

ROWS = [
    Row(
        "xentlib.self_supervised.rotation_batch",
        ss.rotation_batch,
        {"x": Arg(_images, (_image_kinds, _non_square))},
        positional=("x",),
    ),
    Row(
        "xentlib.self_supervised.EncoderConfig",
        ss.EncoderConfig,
        {
            "in_channels": Arg(1, (positive_int,)),
            "widths": Arg((4, 8), (_widths_kinds,)),
            "first_kernel": Arg(5, (_kernel_kinds,)),
        },
    ),
    Row(
        "xentlib.self_supervised.ConvEncoder",
        ss.ConvEncoder,
        {"config": Arg(_config, (lambda g: [("a dict", {"widths": (4,)})],))},
    ),
    Row(
        "xentlib.self_supervised.Classifier",
        ss.Classifier,
        {
            "encoder": Arg(_encoder(), (module,)),
            "n_classes": Arg(4, (positive_int,)),
        },
    ),
    Row(
        "xentlib.self_supervised.calibrate_batchnorm",
        ss.calibrate_batchnorm,
        {
            "model": Arg(_encoder(), (module,)),
            "x": Arg(_images, (_image_kinds,)),
            "batch_size": Arg(4, (positive_int,)),
        },
    ),
    Row(
        "xentlib.self_supervised.extract_features",
        ss.extract_features,
        {
            "encoder": Arg(_encoder(), (module,)),
            "x": Arg(_images, (_image_kinds,)),
            "blocks": Arg((0, 1), (_block_kinds,)),
            "batch_size": Arg(4, (positive_int,)),
        },
    ),
    Row(
        "xentlib.self_supervised.few_shot_indices",
        ss.few_shot_indices,
        {
            "labels": Arg(
                _labels,
                (
                    tensor(rows=False),
                    class_index(),
                    lambda g: [("a row of labels", g.reshape(1, -1))],
                ),
            ),
            "per_class": Arg(2, (positive_int,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.self_supervised.LinearProbe",
        ss.LinearProbe,
        {
            "mean": Arg(torch.zeros(3), (tensor(rows=False),)),
            "std": Arg(torch.ones(3), (_std_kinds,)),
            "n_classes": Arg(3, (positive_int,)),
        },
    ),
    Row(
        "xentlib.self_supervised.fit_linear_probe",
        ss.fit_linear_probe,
        {
            "features": Arg(_features, (tensor(),)),
            "labels": Arg(_labels, (class_index(3), _labels_one_short)),
            "n_classes": Arg(3, (lambda g: [("0", 0), ("2.5", 2.5)],)),
            "weight_decay": Arg(1e-3, (nonneg_real,)),
            "max_iter": Arg(20, (positive_int,)),
        },
    ),
    Row(
        "xentlib.self_supervised.few_shot_probe_accuracies",
        ss.few_shot_probe_accuracies,
        {
            "train_features": Arg(_features, (tensor(),)),
            "train_labels": Arg(_labels, (class_index(), _labels_one_short)),
            "test_features": Arg(_test_features, (tensor(),)),
            "test_labels": Arg(
                _test_labels, (class_index(3), _labels_one_short)
            ),
            "per_class": Arg(2, (positive_int,)),
            "draws": Arg(2, (positive_int,)),
            "rng": Arg(0, (rng,)),
            "weight_decay": Arg(1e-3, (nonneg_real,)),
        },
    ),
]

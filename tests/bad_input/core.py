"""Rows for the modules every chapter uses: training, models, runtime,
results and datasets."""

import torch
from torch import nn

import xentlib
from xentlib import datasets, models, results, runtime, training
from xentlib.training import TrainConfig

from . import (
    Arg,
    Row,
    boolean,
    callable_,
    class_index,
    device,
    module,
    nonneg_int,
    nonneg_real,
    positive_int,
    positive_real,
    rng,
    tensor,
)

_x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
_y = torch.arange(12) % 2


def _linear():
    return nn.Linear(3, 2)


def _fit(model, loss_fn, inputs, target, config, rng):
    return training.fit(model, loss_fn, inputs, target, config=config, rng=rng)


ROWS = [
    Row(
        "xentlib.training.fit",
        _fit,
        {
            "model": Arg(_linear(), (module,)),
            "loss_fn": Arg(xentlib.cross_entropy, (callable_,)),
            "inputs": Arg(
                _x, (tensor(rank=False, nan=False, inf=False, neg_inf=False),)
            ),
            "target": Arg(
                _y, (tensor(rank=False, nan=False, inf=False, neg_inf=False),)
            ),
            "config": Arg(
                TrainConfig(epochs=2), (lambda g: [("a dict", {})],)
            ),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.training.TrainConfig",
        TrainConfig,
        {
            "epochs": Arg(2, (nonneg_int,)),
            "lr": Arg(0.1, (positive_real,)),
            "batch_size": Arg(4, (positive_int,)),
            "weight_decay": Arg(0.0, (nonneg_real,)),
            "optimizer": Arg("adam", (lambda g: [("unknown", "lbfgs")],)),
        },
    ),
    Row(
        "xentlib.training.predict",
        training.predict,
        {
            "model": Arg(_linear(), (module,)),
            "inputs": Arg(_x, (lambda g: [("a string", "x")],)),
            "batch_size": Arg(5, (positive_int,)),
        },
    ),
    Row(
        "xentlib.training.accuracy",
        training.accuracy,
        {
            "prediction": Arg(
                torch.eye(3)[[0, 1, 2, 1]],
                (tensor(rank=False, rows=True, inf=False, neg_inf=False),),
            ),
            "target": Arg(
                torch.tensor([0, 1, 2, 2]),
                (class_index(3), tensor(nan=False, inf=False, neg_inf=False)),
            ),
        },
    ),
    Row(
        "xentlib.models.mlp",
        models.mlp,
        {
            "in_features": Arg(3, (positive_int,)),
            "out_features": Arg(2, (positive_int,)),
            "hidden": Arg(4, (positive_int,)),
            "depth": Arg(1, (nonneg_int,)),
            "activation": Arg(nn.ReLU, (callable_,)),
        },
    ),
    Row(
        "xentlib.runtime.as_generator",
        runtime.as_generator,
        {"rng": Arg(0, (rng,))},
    ),
    Row(
        "xentlib.runtime.resolve_device",
        runtime.resolve_device,
        {"device": Arg("cpu", (device,))},
    ),
    Row(
        "xentlib.runtime.seed_everything",
        runtime.seed_everything,
        {
            "seed": Arg(
                0, (lambda g: [("-1", -1), ("1.5", 1.5), ("True", True)],)
            )
        },
    ),
    Row(
        "xentlib.results.record",
        results.record,
        {
            "name": Arg(
                "bad_input_check",
                (lambda g: [("not an identifier", "a b"), ("a number", 3)],),
            ),
            "value": Arg(
                1.5,
                (
                    lambda g: [
                        ("NaN", float("nan")),
                        ("inf", float("inf")),
                        ("a string", "1"),
                        ("a vector", torch.ones(2)),
                    ],
                ),
                # the message names the result being recorded
                name="bad_input_check",
            ),
            "display": Arg(False, (boolean,)),
        },
    ),
    Row(
        "xentlib.datasets.data_path",
        datasets.data_path,
        {
            "name": Arg(
                "README.md",
                (
                    lambda g: [
                        ("outside the data folder", "../pyproject.toml"),
                        ("an absolute path", "/etc/passwd"),
                        ("a number", 3),
                    ],
                ),
            )
        },
    ),
]

EXEMPT = {
    "xentlib.training.History": "a result record that fit() builds",
    "xentlib.results.recorded": "takes no arguments",
    "xentlib.results.clear_recorded": "takes no arguments",
}

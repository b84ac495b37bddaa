"""Rows for xentlib.attacks: FGSM, PGD, the margin loss and adversarial
training (chapter 13)."""

import torch

from xentlib import attacks
from xentlib.models import mlp
from xentlib.training import TrainConfig

from . import (
    Arg,
    Row,
    boolean,
    choice,
    class_index,
    module,
    nonneg_real,
    positive_int,
    positive_real,
    rng,
    tensor,
)

_g = torch.Generator().manual_seed(0)
_x = torch.rand(8, 5, generator=_g)
_y = torch.arange(8) % 3


def _model():
    torch.manual_seed(0)
    return mlp(5, 3, hidden=4, depth=1)


def _clip(good):
    yield from (("reversed", (1.0, 0.0)), ("three numbers", (0, 1, 2)))
    yield from (("a string", "01"), ("NaN", (float("nan"), 1.0)))


def _common():
    return {
        "model": Arg(_model(), (module,)),
        "input": Arg(_x, (tensor(),)),
        "target": Arg(
            _y,
            (tensor(nan=False, inf=False, neg_inf=False), class_index(3)),
        ),
        "epsilon": Arg(0.1, (nonneg_real,)),
    }


_pgd = {
    "step_size": Arg(0.05, (positive_real,)),
    "steps": Arg(2, (positive_int,)),
    "random_start": Arg(True, (boolean,)),
    "rng": Arg(0, (rng,)),
}


def _fit_adversarial(model, input, target, epsilon, config, rng):
    return attacks.fit_adversarial(
        model, input, target, epsilon, 0.05, 2, config=config, rng=rng
    )


ROWS = [
    Row(
        "xentlib.attacks.fgsm_attack",
        attacks.fgsm_attack,
        {
            **_common(),
            "clip": Arg((0.0, 1.0), (_clip,)),
            "loss": Arg("margin", (choice,)),
        },
    ),
    Row(
        "xentlib.attacks.pgd_attack",
        attacks.pgd_attack,
        {
            **_common(),
            **_pgd,
            "clip": Arg((0.0, 1.0), (_clip,)),
            "loss": Arg("cross_entropy", (choice,)),
        },
    ),
    Row(
        "xentlib.attacks.pgd_attack",
        attacks.pgd_attack,
        {**_common(), **_pgd, "clip": None},
        note="no clip",
    ),
    Row(
        "xentlib.attacks.adversarial_accuracy",
        attacks.adversarial_accuracy,
        {
            **_common(),
            "attack": Arg("pgd", (choice,)),
            **_pgd,
            "clip": Arg((0.0, 1.0), (_clip,)),
            "loss": Arg("margin", (choice,)),
            "batch_size": Arg(3, (positive_int,)),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.attacks.margin_loss",
        attacks.margin_loss,
        {
            "input": Arg(torch.randn(8, 3, generator=_g), (tensor(),)),
            "target": Arg(
                _y,
                (tensor(nan=False, inf=False, neg_inf=False), class_index(3)),
            ),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.attacks.AdversarialTraining",
        attacks.AdversarialTraining,
        {
            "model": Arg(_model(), (module,)),
            "epsilon": Arg(0.1, (nonneg_real,)),
            **_pgd,
            "clip": Arg((0.0, 1.0), (_clip,)),
        },
    ),
    Row(
        "xentlib.attacks.fit_adversarial",
        _fit_adversarial,
        {
            **_common(),
            "config": Arg(
                TrainConfig(epochs=1, batch_size=4),
                (lambda g: [("a dict", {"epochs": 1})],),
            ),
            "rng": Arg(0, (rng,)),
        },
    ),
]

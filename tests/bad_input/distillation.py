"""Rows for xentlib.distillation: soft targets, the distillation loss and
the student's training (chapter 14)."""

import torch

from xentlib import distillation
from xentlib.models import mlp
from xentlib.training import TrainConfig

from . import (
    Arg,
    Row,
    choice,
    class_index,
    module,
    positive_real,
    probability,
    rng,
    tensor,
)

_g = torch.Generator().manual_seed(0)
_s = torch.randn(6, 4, generator=_g)
_t = 3 * torch.randn(6, 4, generator=_g)
_y = torch.arange(6) % 4
_x = torch.randn(6, 5, generator=_g)

# A logit of -inf is a class ruled out, which the losses handle exactly
# (tests/test_distillation.py), so it is not a bad input here.
_logits = tensor(neg_inf=False)
_labels = (tensor(nan=False, inf=False, neg_inf=False), class_index(4))


def _student():
    torch.manual_seed(0)
    return mlp(5, 4, hidden=3, depth=1)


def _fit_student(student, inputs, target, teacher_logits, temperature, config):
    return distillation.fit_student(
        student,
        inputs,
        target,
        teacher_logits,
        temperature=temperature,
        config=config,
        rng=0,
    )


def _fit_student_alone(student, inputs, target, config, rng):
    return distillation.fit_student(
        student, inputs, target, config=config, rng=rng
    )


_config = Arg(
    TrainConfig(epochs=2, batch_size=4),
    (lambda g: [("a dict", {"epochs": 2})],),
)

ROWS = [
    Row(
        "xentlib.distillation.soft_targets",
        distillation.soft_targets,
        {
            "teacher_logits": Arg(_t, (tensor(rows=False, neg_inf=False),)),
            "temperature": Arg(2.0, (positive_real,)),
        },
    ),
    Row(
        "xentlib.distillation.distillation_loss",
        distillation.distillation_loss,
        {
            "student_logits": Arg(_s, (_logits,)),
            "teacher_logits": Arg(_t, (_logits,)),
            "target": Arg(_y, _labels),
            "temperature": Arg(4.0, (positive_real,)),
            "alpha": Arg(0.5, (probability,)),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.distillation.fit_student",
        _fit_student,
        {
            "student": Arg(_student(), (module,)),
            "inputs": Arg(_x, (tensor(),)),
            "target": Arg(_y, _labels),
            "teacher_logits": Arg(_t, (_logits,)),
            "temperature": Arg(4.0, (positive_real,)),
            "config": _config,
        },
    ),
    Row(
        "xentlib.distillation.fit_student",
        _fit_student_alone,
        {
            "student": Arg(_student(), (module,)),
            "inputs": Arg(_x, (tensor(),)),
            "target": Arg(_y, _labels),
            "config": _config,
            "rng": Arg(0, (rng,)),
        },
        note="labels only",
    ),
]

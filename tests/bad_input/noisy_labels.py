"""Rows for xentlib.noisy_labels (chapter 4)."""

import torch
import torch.nn.functional as F

from xentlib import noisy_labels
from xentlib.training import TrainConfig

from . import (
    Arg,
    Row,
    callable_,
    choice,
    class_index,
    distribution,
    module,
    nonneg_int,
    positive_int,
    probability,
    rng,
    tensor,
    unit_interval,
)

_gen = torch.Generator().manual_seed(0)
_T = noisy_labels.pair_flip_transition_matrix(3, 0.2)
_logits = torch.randn(4, 3, generator=_gen, dtype=torch.float64)
_labels = torch.tensor([0, 1, 2, 0])
_prob = torch.softmax(torch.randn(6, 3, generator=_gen), dim=1)
_x = torch.randn(12, 3, generator=_gen)
_y = torch.arange(12) % 3


def _not_a_string(good):
    yield "a string", "0.2"


def _negative_count(good):
    bad = good.clone()
    bad[0, 1] = -1.0
    yield "a negative count", bad


def _not_a_config(good):
    yield "a dict", {"epochs": 2}


def _not_a_label(good):
    yield "a number", 3


def _noise(**extra):
    return {"noise": Arg(0.2, (probability, _not_a_string)), **extra}


_label_tensor = tensor(rows=False, nan=False, inf=False, neg_inf=False)
_T_kinds = (tensor(), distribution, unit_interval)


def _fit_and_evaluate(
    model,
    loss_fn,
    inputs,
    target,
    evaluate,
    config,
    restore_best,
    rng,
    progress,
):
    return noisy_labels.fit_and_evaluate(
        model,
        loss_fn,
        inputs,
        target,
        evaluate,
        config=config,
        restore_best=restore_best,
        rng=rng,
        progress=progress,
    )


ROWS = [
    Row(
        "xentlib.noisy_labels.pair_flip_transition_matrix",
        noisy_labels.pair_flip_transition_matrix,
        {"n_classes": Arg(3, (positive_int,)), **_noise()},
    ),
    Row(
        "xentlib.noisy_labels.symmetric_transition_matrix",
        noisy_labels.symmetric_transition_matrix,
        {"n_classes": Arg(3, (positive_int,)), **_noise()},
    ),
    Row(
        "xentlib.noisy_labels.confusion_transition_matrix",
        noisy_labels.confusion_transition_matrix,
        {
            "confusion": Arg(
                torch.tensor([[5.0, 1, 1], [1, 6, 2], [2, 1, 7]]),
                (tensor(), _negative_count),
            ),
            **_noise(),
        },
    ),
    Row(
        "xentlib.noisy_labels.corrupt_labels",
        noisy_labels.corrupt_labels,
        {
            "target": Arg(_labels, (class_index(3), _label_tensor)),
            "T": Arg(_T, _T_kinds),
            "rng": Arg(0, (rng,)),
        },
    ),
    *[
        Row(
            f"xentlib.noisy_labels.{loss.__name__}",
            loss,
            {
                "input": Arg(_logits, (tensor(neg_inf=False),)),
                "target": Arg(
                    _labels,
                    (
                        class_index(3),
                        tensor(nan=False, inf=False, neg_inf=False),
                    ),
                ),
                "T": Arg(_T, _T_kinds),
                "reduction": Arg("mean", (choice,)),
            },
        )
        for loss in (
            noisy_labels.forward_corrected_cross_entropy,
            noisy_labels.backward_corrected_cross_entropy,
        )
    ],
    Row(
        "xentlib.noisy_labels.estimate_transition_matrix",
        noisy_labels.estimate_transition_matrix,
        {
            "noisy_prob": Arg(
                _prob, (tensor(rows=False), distribution, unit_interval)
            ),
            "quantile": Arg(0.9, (probability, _not_a_string)),
        },
        note="anchor points",
    ),
    Row(
        "xentlib.noisy_labels.estimate_transition_matrix",
        noisy_labels.estimate_transition_matrix,
        {
            "noisy_prob": Arg(
                _prob, (tensor(rows=False), distribution, unit_interval)
            ),
            "clean_target": Arg(
                torch.tensor([0, 1, 2, 0, 1, 2]),
                (
                    class_index(3),
                    tensor(nan=False, inf=False, neg_inf=False),
                ),
            ),
        },
        note="clean split",
    ),
    Row(
        "xentlib.noisy_labels.mlp_classifier",
        noisy_labels.mlp_classifier,
        {
            "in_features": Arg(3, (positive_int,)),
            "n_classes": Arg(3, (positive_int,)),
            "hidden": Arg(4, (positive_int,)),
            "depth": Arg(1, (nonneg_int,)),
        },
    ),
    Row(
        "xentlib.noisy_labels.fit_and_evaluate",
        _fit_and_evaluate,
        {
            "model": Arg(noisy_labels.mlp_classifier(3, 3, 4), (module,)),
            "loss_fn": Arg(F.cross_entropy, (callable_,)),
            "inputs": Arg(
                _x, (tensor(rank=False, nan=False, inf=False, neg_inf=False),)
            ),
            "target": Arg(
                _y, (tensor(rank=False, nan=False, inf=False, neg_inf=False),)
            ),
            "evaluate": Arg(lambda m: 0.5, (callable_,)),
            "config": Arg(TrainConfig(epochs=2), (_not_a_config,)),
            "restore_best": Arg("max", (choice,)),
            "rng": Arg(0, (rng,)),
            "progress": Arg(None, (_not_a_label,)),
        },
    ),
]

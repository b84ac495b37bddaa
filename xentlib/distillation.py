"""Knowledge distillation: training a small network on a large one's softened predictions.

A trained classifier (the *teacher*) knows more than its top-1 answer: the
probabilities it gives the wrong classes say which mistakes are plausible (a
handwritten 3 looks more like an 8 than like a 1). Hinton, Vinyals and Dean
(2015) pass that knowledge to a smaller *student* by training it on the
teacher's probabilities softened by a temperature :math:`T`,

.. math::

    p^{T}_k = \\mathrm{softmax}(t / T)_k = \\frac{e^{t_k / T}}{\\sum_j e^{t_j / T}},

where :math:`t` are the teacher's logits; :math:`T > 1` lifts the small
probabilities that a sharp teacher would otherwise round to zero.

This module has the softened targets (:func:`soft_targets`), the distillation
loss (:func:`distillation_loss`), the small multilayer perceptron
(:class:`MLP`) that chapter 14 uses as teacher and student, and
:func:`fit_student`, which trains a student with or without a teacher.

Introduced in chapter 14.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ._validation import check_logits, check_reduction, reduce_rows
from .losses import cross_entropy
from .models import mlp
from .training import TrainConfig, fit

__all__ = ["MLP", "distillation_loss", "fit_student", "soft_targets"]


def _check_temperature(temperature) -> float:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(
            "temperature must be a positive finite number; got"
            f" {temperature!r}"
        )
    return float(temperature)


def _check_logit_matrix(x, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of logits; got {type(x).__name__}"
        )
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have shape (N, C); got {tuple(x.shape)}"
        )
    check_logits(x, name)
    if x.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one class; got shape {tuple(x.shape)}"
        )


def soft_targets(
    teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    r"""The teacher's class probabilities softened by a temperature.

    .. math:: p^{T}_{ik} = \mathrm{softmax}(t_i / T)_k

    :math:`T = 1` is the ordinary softmax; :math:`T \to \infty` tends to the
    uniform distribution and :math:`T \to 0` to the one-hot vector of the
    argmax. The order of the classes never changes. Explained in chapter 14.

    Parameters
    ----------
    teacher_logits : torch.Tensor
        Logits of shape ``(N, C)``.
    temperature : float
        :math:`T > 0`.

    Returns
    -------
    torch.Tensor
        Probabilities of shape ``(N, C)``, rows summing to one, in the dtype
        and on the device of ``teacher_logits``.
    """
    _check_logit_matrix(teacher_logits, "teacher_logits")
    temperature = _check_temperature(temperature)
    return torch.softmax(teacher_logits / temperature, dim=1)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Hinton et al.'s distillation loss: softened teacher targets plus the hard labels.

    For one example with student logits :math:`s`, teacher logits :math:`t`,
    label :math:`y` and temperature :math:`T`, write
    :math:`p = \mathrm{softmax}(t/T)` and :math:`q = \mathrm{softmax}(s/T)`.
    The loss is

    .. math::

        \ell = \alpha\, T^2\, \mathrm{KL}(p \,\|\, q)
               + (1 - \alpha)\, \bigl(-\log \mathrm{softmax}(s)_y\bigr).

    The KL divergence equals the cross-entropy :math:`H(p, q)` minus the
    teacher's entropy :math:`H(p)`, which does not depend on the student, so
    both give the same gradients; the KL form is zero when the student
    matches the teacher. Its gradient with respect to the student's logits is

    .. math::

        \frac{\partial}{\partial s_k}\, T^2\, \mathrm{KL}(p \,\|\, q) = T\,(q_k - p_k),

    so the factor :math:`T^2` undoes the :math:`1/T^2` by which softening
    shrinks the gradients (one :math:`1/T` from the chain rule, and one
    because :math:`q - p` itself scales like :math:`1/T` at high temperature):
    the balance between the two terms does not change with :math:`T`.
    Computed with ``log_softmax``, so it is finite for logits of any size.
    The teacher is a fixed target: no gradient flows into
    ``teacher_logits``. Explained in chapter 14.

    Parameters
    ----------
    student_logits : torch.Tensor
        Shape ``(N, C)``.
    teacher_logits : torch.Tensor
        Shape ``(N, C)``, on the same device.
    target : torch.Tensor, optional
        Class indices of shape ``(N,)``. Needed unless ``alpha`` is 1 (soft
        targets only).
    temperature : float
        :math:`T > 0` of the soft term (the hard term always uses :math:`T = 1`).
    alpha : float
        Weight in [0, 1] of the soft term; ``alpha=0`` is plain cross-entropy
        with the labels.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the ``(N,)`` row losses.

    Returns
    -------
    torch.Tensor
        A scalar, or shape ``(N,)`` for ``reduction="none"``.
    """
    check_reduction(reduction)
    _check_logit_matrix(student_logits, "student_logits")
    _check_logit_matrix(teacher_logits, "teacher_logits")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            "teacher_logits must have the shape of student_logits"
            f" {tuple(student_logits.shape)}; got"
            f" {tuple(teacher_logits.shape)}"
        )
    temperature = _check_temperature(temperature)
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not 0.0 <= alpha <= 1.0
    ):
        raise ValueError(f"alpha must be a number in [0, 1]; got {alpha!r}")
    alpha = float(alpha)
    if target is None and alpha < 1.0:
        raise ValueError(
            "target is needed when alpha < 1 (the hard-label term has weight"
            f" 1 - alpha); got alpha={alpha}"
        )

    rows = torch.zeros(
        student_logits.shape[0],
        dtype=student_logits.dtype,
        device=student_logits.device,
    )
    if alpha > 0.0:
        log_q = torch.log_softmax(student_logits / temperature, dim=1)
        log_p = torch.log_softmax(
            teacher_logits.detach().to(student_logits.dtype) / temperature,
            dim=1,
        )
        p = log_p.exp()
        # 0 log 0 = 0: a class the teacher rules out (p = 0) contributes nothing.
        kl = torch.where(
            p > 0,
            p * (log_p - log_q),
            torch.zeros((), dtype=p.dtype, device=p.device),
        ).sum(1)
        rows = rows + alpha * temperature**2 * kl
    if alpha < 1.0:
        rows = rows + (1.0 - alpha) * cross_entropy(
            student_logits, target, reduction="none"
        )
    return reduce_rows(rows, reduction)


class MLP(nn.Module):
    """A multilayer perceptron returning logits: ``in_features -> hidden (ReLU) x depth -> num_classes``.

    ``depth=0`` is a linear (softmax-regression) model. Chapter 14 uses a
    wide one as the teacher and a narrow one as the student.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: int = 256,
        depth: int = 2,
    ):
        super().__init__()
        self.net = mlp(in_features, num_classes, hidden=hidden, depth=depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def fit_student(
    student: nn.Module,
    inputs: torch.Tensor,
    target: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    epochs: int,
    lr: float = 1e-2,
) -> list[float]:
    """Train ``student`` full batch with Adam, on the labels alone or with a teacher's soft targets.

    Without ``teacher_logits`` the loss is the cross-entropy with ``target``;
    with them it is :func:`distillation_loss` at ``temperature`` and
    ``alpha``. Everything else (optimiser, learning rate, epochs, full batch)
    is the same, so the two are a fair comparison from the same initial
    ``student``. Full-batch training keeps the teacher's rows aligned with the
    inputs and makes the run deterministic. Used in chapter 14.

    Parameters
    ----------
    student : nn.Module
        Maps ``inputs`` of shape ``(N, D)`` to logits ``(N, C)``.
    inputs : torch.Tensor
        Shape ``(N, D)``.
    target : torch.Tensor
        Class indices of shape ``(N,)``.
    teacher_logits : torch.Tensor, optional
        The teacher's logits on the same inputs, shape ``(N, C)``.
    temperature, alpha : float
        As in :func:`distillation_loss` (ignored without a teacher).
    epochs : int
        Full-batch Adam steps.
    lr : float
        Adam's learning rate.

    Returns
    -------
    list of float
        The training loss of each epoch.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 2:
        got = (
            tuple(inputs.shape)
            if isinstance(inputs, torch.Tensor)
            else type(inputs).__name__
        )
        raise ValueError(f"inputs must be a tensor of shape (N, D); got {got}")
    if teacher_logits is None:
        loss_fn = cross_entropy
    else:
        _check_logit_matrix(teacher_logits, "teacher_logits")
        if teacher_logits.shape[0] != inputs.shape[0]:
            raise ValueError(
                "teacher_logits must have one row per input"
                f" ({inputs.shape[0]}); got {teacher_logits.shape[0]}"
            )
        teacher = teacher_logits.detach()

        def loss_fn(
            output, labels
        ):  # full batch: output's rows are teacher's rows
            return distillation_loss(
                output, teacher, labels, temperature=temperature, alpha=alpha
            )

    config = TrainConfig(epochs=epochs, lr=lr)
    return fit(student, loss_fn, inputs, target, config=config).loss

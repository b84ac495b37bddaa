r"""Adversarial examples: gradient *ascent* on a loss, in the input.

Training lowers the loss :math:`\ell(\theta; x, y)` by moving the parameters
:math:`\theta` against its gradient. An attacker holds :math:`\theta` fixed
and moves the input instead, *up* the gradient, inside a small
:math:`L_\infty` ball around the clean input :math:`x` (no pixel changes by
more than :math:`\varepsilon`) and inside the valid range of the data
(pixels in :math:`[0, 1]`):

.. math::

    \max_{\delta}\; \ell(\theta;\, x + \delta,\, y)
    \quad\text{subject to}\quad \|\delta\|_\infty \le \varepsilon,\;
    x + \delta \in [0, 1]^d .

* :func:`fgsm_attack`, the fast gradient sign method (Goodfellow et al.
  2015), takes one step to the corner of the ball that a linear model of
  the loss says is worst.
* :func:`pgd_attack`, projected gradient descent (here ascent; Madry et
  al. 2018), repeats smaller sign steps of size :math:`\alpha`, each
  followed by the projection back onto the ball and the valid range,
  optionally from a uniformly random start in the ball.
* :func:`margin_loss` is the other loss an attack can climb: the largest
  wrong-class logit minus the true-class logit (Carlini and Wagner 2017).
  It does not saturate when the true class's probability is close to 1, so
  it checks that a model's robustness is not an artefact of the
  cross-entropy's flat gradients (gradient masking).
* :func:`adversarial_accuracy` is a model's accuracy on attacked inputs
  (its *robust accuracy* against that attack).
* :class:`AdversarialTraining` and :func:`fit_adversarial` train on PGD
  examples crafted afresh for every mini-batch (Madry et al.'s adversarial
  training) with the book's ordinary loop, :func:`xentlib.training.fit`.

The loss is summed over the batch, so each example's gradient is its own.
Attacks put the model in evaluation mode while they run and restore its
mode afterwards, differentiate with respect to the input only (the
parameters' ``.grad`` are left untouched), and return a detached tensor.
Introduced in chapter 13.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ._validation import check_class_target, check_reduction, reduce_rows
from .losses import cross_entropy
from .runtime import as_generator
from .training import History, TrainConfig, fit

__all__ = [
    "AdversarialTraining",
    "adversarial_accuracy",
    "fgsm_attack",
    "fit_adversarial",
    "margin_loss",
    "pgd_attack",
]

_ATTACKS = ("fgsm", "pgd")
_LOSSES = ("cross_entropy", "margin")


def _check_real(value, name: str, positive: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{name} must be a finite number {bound}; got {value!r}"
        )
    return float(value)


def _check_positive_int(value, name: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < 1
    ):
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def _check_choice(value, name: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model must be a torch.nn.Module; got {type(model).__name__}"
        )
    return model


def _check_clip(clip) -> tuple[float, float] | None:
    if clip is None:
        return None
    message = "clip must be None or a pair (low, high) of finite numbers"
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise ValueError(f"{message}; got {clip!r}")
    if any(
        isinstance(c, bool) or not isinstance(c, numbers.Real) for c in clip
    ):
        raise ValueError(f"{message}; got {clip!r}")
    low, high = (float(c) for c in clip)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{message} with low < high; got {clip!r}")
    return low, high


def _check_batch(input, target, clip) -> None:
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        got = (
            f"dtype {input.dtype}"
            if isinstance(input, torch.Tensor)
            else type(input).__name__
        )
        raise ValueError(
            "input must be a floating-point tensor of shape (N, ...); got"
            f" {got}"
        )
    if input.dim() == 0:
        raise ValueError(
            "input must have a batch dimension, shape (N, ...); got a scalar"
        )
    if input.numel() and bool(torch.isnan(input).any()):
        raise ValueError("input contains NaN; expected finite numbers")
    if clip is None and input.numel() and not bool(input.isfinite().all()):
        raise ValueError("input contains infinities; expected finite numbers")
    if clip is not None and input.numel():
        low, high = input.min().item(), input.max().item()
        if low < clip[0] or high > clip[1]:
            raise ValueError(
                f"input must lie inside clip = ({clip[0]:g}, {clip[1]:g}),"
                f" the valid range of the data; got values in [{low:.6g},"
                f" {high:.6g}]"
            )
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            "target must be a torch.Tensor of class indices; got"
            f" {type(target).__name__}"
        )
    if target.shape != input.shape[:1]:
        raise ValueError(
            f"target must have shape ({input.shape[0]},), one class index"
            f" per row of input; got {tuple(target.shape)}"
        )


def margin_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    r"""The margin by which the best wrong class beats the true class.

    .. math:: m(z, y) = \max_{k \ne y} z_k - z_y

    It is negative when the example is classified correctly and positive
    when it is not, so an attack that *raises* it works towards a mistake
    (Carlini and Wagner 2017). Unlike the cross-entropy, whose gradient
    vanishes as the true class's probability approaches 1, its gradient
    is a difference of two logits' gradients whatever the confidence: an
    attack on it is the standard check that a robust-looking model is not
    merely saturating the cross-entropy. Introduced in chapter 13.

    Parameters
    ----------
    input : torch.Tensor
        Logits of shape ``(N, C)`` with ``C >= 2``.
    target : torch.Tensor
        Class indices of shape ``(N,)``.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the ``(N,)`` margins.

    Returns
    -------
    torch.Tensor
        A scalar, or shape ``(N,)`` for ``reduction="none"``.

    Examples
    --------
    >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    >>> margin_loss(logits, torch.tensor([0, 0]), reduction="none")
    tensor([-1.5000,  3.0000])
    """
    check_reduction(reduction)
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        got = (
            f"dtype {input.dtype}"
            if isinstance(input, torch.Tensor)
            else type(input).__name__
        )
        raise ValueError(
            f"input must be a floating-point tensor of logits; got {got}"
        )
    if input.dim() != 2 or input.shape[1] < 2:
        raise ValueError(
            "input must have shape (N, C) with C >= 2 classes; got"
            f" {tuple(input.shape)}"
        )
    if input.numel() and not bool(input.isfinite().all()):
        raise ValueError(
            "input contains NaN or infinite values; expected finite logits"
        )
    if not isinstance(target, torch.Tensor) or target.shape != input.shape[:1]:
        got = (
            tuple(target.shape)
            if isinstance(target, torch.Tensor)
            else type(target).__name__
        )
        raise ValueError(
            f"target must have shape ({input.shape[0]},), one class index"
            f" per row of input; got {got}"
        )
    target = check_class_target(target, input.shape[0], input.shape[1])
    true = input.gather(1, target[:, None])
    others = input.masked_fill(
        nn.functional.one_hot(target, input.shape[1]).bool(), -math.inf
    )
    return reduce_rows(others.amax(1) - true[:, 0], reduction)


def _check_logits_and_target(logits, target) -> None:
    if (
        not isinstance(logits, torch.Tensor)
        or logits.dim() != 2
        or logits.shape[0] != target.shape[0]
    ):
        got = (
            tuple(logits.shape)
            if isinstance(logits, torch.Tensor)
            else type(logits).__name__
        )
        raise ValueError(
            f"model must return logits of shape ({target.shape[0]}, C); got"
            f" {got}"
        )
    check_class_target(target, target.shape[0], logits.shape[1])


_LOSS_FUNCTIONS = {"cross_entropy": cross_entropy, "margin": margin_loss}


def _input_gradient(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    loss: str,
    check: bool = False,
) -> torch.Tensor:
    """The gradient of the summed loss with respect to ``x`` alone
    (``check``: first make sure that ``target`` fits the model's logits)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        if check:
            _check_logits_and_target(logits, target)
        value = _LOSS_FUNCTIONS[loss](logits, target, reduction="sum")
        (grad,) = torch.autograd.grad(value, x)
    return grad


def _clip(x: torch.Tensor, clip) -> torch.Tensor:
    return x if clip is None else x.clamp(clip[0], clip[1])


def _project(
    x_adv: torch.Tensor, x: torch.Tensor, epsilon: float, clip
) -> torch.Tensor:
    """Back onto the ball of radius ``epsilon`` around ``x``, then into
    the valid range."""
    return _clip(x + (x_adv - x).clamp(-epsilon, epsilon), clip)


class _EvalMode:
    """Evaluation mode inside a ``with`` block; the model's own mode is
    restored after it."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)


def fgsm_attack(
    model: nn.Module,
    input: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    clip: tuple[float, float] | None = (0.0, 1.0),
    loss: str = "cross_entropy",
) -> torch.Tensor:
    r"""Adversarial inputs by the fast gradient sign method (FGSM).

    .. math::

        x' = \mathrm{clip}\bigl(x + \varepsilon\,
             \mathrm{sign}\, \nabla_x \ell(\theta; x, y)\bigr)

    with :math:`\ell` the cross-entropy of the model's logits (or the
    margin, :func:`margin_loss`). It is the exact maximiser of the loss's
    first-order Taylor expansion over the :math:`L_\infty` ball of radius
    :math:`\varepsilon` (Goodfellow et al. 2015). Introduced in chapter 13.

    Parameters
    ----------
    model : nn.Module
        Maps ``input`` to logits of shape ``(N, C)``. It is put in
        evaluation mode during the attack and its mode is restored
        afterwards.
    input : torch.Tensor
        Clean inputs, shape ``(N, ...)``, inside ``clip``.
    target : torch.Tensor
        True class indices, shape ``(N,)``.
    epsilon : float
        The radius of the :math:`L_\infty` ball, in the units of ``input``
        (``epsilon >= 0``; 0 returns the input unchanged).
    clip : (float, float) or None
        The valid range of the inputs (pixels in ``[0, 1]`` by default);
        None for no clipping.
    loss : {"cross_entropy", "margin"}
        The loss the attack climbs.

    Returns
    -------
    torch.Tensor
        Adversarial inputs of the shape, dtype and device of ``input``,
        detached, with :math:`\|x' - x\|_\infty \le \varepsilon` and inside
        ``clip``.

    Examples
    --------
    >>> model = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    ...     _ = model.bias.zero_()
    >>> x, y = torch.tensor([[0.5, 0.5]]), torch.tensor([0])
    >>> fgsm_attack(model, x, y, 0.1)
    tensor([[0.4000, 0.6000]])
    """
    _check_model(model)
    epsilon = _check_real(epsilon, "epsilon")
    clip = _check_clip(clip)
    _check_choice(loss, "loss", _LOSSES)
    _check_batch(input, target, clip)
    x = input.detach()
    with _EvalMode(model):
        grad = _input_gradient(model, x, target, loss, check=True)
    return _clip(x + epsilon * grad.sign(), clip).detach()


def pgd_attack(
    model: nn.Module,
    input: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    *,
    random_start: bool = True,
    rng: int | torch.Generator | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    loss: str = "cross_entropy",
) -> torch.Tensor:
    r"""Adversarial inputs by projected gradient descent (PGD) on the
    :math:`L_\infty` ball.

    Starting from :math:`x^0 = x` (or, with ``random_start``, from
    :math:`x + u` with :math:`u` uniform in :math:`[-\varepsilon,
    \varepsilon]^d`, clipped to the valid range), take ``steps`` sign steps
    up the loss, each followed by the projection :math:`\Pi` onto the ball
    around the *clean* input and onto the valid range:

    .. math::

        x^{t+1} &= \Pi\bigl(x^{t} + \alpha\, \mathrm{sign}\,
                   \nabla_x \ell(\theta; x^{t}, y)\bigr), \\
        \Pi(z) &= \mathrm{clip}\bigl(x + \mathrm{clamp}(z - x,
                  -\varepsilon, \varepsilon)\bigr).

    One step with ``step_size = epsilon`` and no random start is
    :func:`fgsm_attack`. Madry et al. (2018) use PGD with a random start
    both to evaluate robustness and to train robust models. Introduced in
    chapter 13.

    Parameters
    ----------
    model, input, target, epsilon, clip, loss
        As in :func:`fgsm_attack`.
    step_size : float
        :math:`\alpha`, the size of each sign step (``> 0``).
    steps : int
        Number of steps (``>= 1``).
    random_start : bool
        Start from a uniformly random point of the ball.
    rng : int, torch.Generator or None
        The random start's randomness (see
        :func:`xentlib.runtime.as_generator`); the noise is drawn on the
        CPU and moved to the input's device, so a seed gives the same start
        on any device.

    Returns
    -------
    torch.Tensor
        Adversarial inputs as in :func:`fgsm_attack`.
    """
    _check_model(model)
    epsilon = _check_real(epsilon, "epsilon")
    step_size = _check_real(step_size, "step_size", positive=True)
    steps = _check_positive_int(steps, "steps")
    _check_bool(random_start, "random_start")
    generator = as_generator(rng)
    clip = _check_clip(clip)
    _check_choice(loss, "loss", _LOSSES)
    _check_batch(input, target, clip)
    x = input.detach()
    x_adv = x
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        x_adv = _clip(x + (2 * noise.to(x.device) - 1) * epsilon, clip)
    with _EvalMode(model):
        for step in range(steps):
            grad = _input_gradient(model, x_adv, target, loss, step == 0)
            x_adv = _project(x_adv + step_size * grad.sign(), x, epsilon, clip)
    return x_adv.detach()


def adversarial_accuracy(
    model: nn.Module,
    input: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    attack: str = "pgd",
    *,
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    rng: int | torch.Generator | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    loss: str = "cross_entropy",
    batch_size: int = 1000,
    reduction: str = "mean",
) -> float | torch.Tensor:
    r"""The fraction of examples still classified correctly after an attack.

    Each example is attacked (``"fgsm"`` or ``"pgd"``) at radius
    ``epsilon`` and counted as correct if the model's top class on the
    adversarial input is its label. Against a strong attack this estimates
    the *robust accuracy*, the probability that
    :math:`f(x') = y` for every :math:`\|x' - x\|_\infty \le \varepsilon`,
    from above: an attack finds some adversarial examples, not necessarily
    all. With ``epsilon = 0`` it is the clean accuracy. Introduced in
    chapter 13.

    Parameters
    ----------
    model, input, target, epsilon, clip, loss
        As in :func:`fgsm_attack`.
    attack : {"fgsm", "pgd"}
        Which attack.
    steps, step_size, random_start, rng
        PGD's settings (ignored for FGSM); ``step_size`` defaults to
        ``2.5 * epsilon / steps``, a common rule of thumb.
    batch_size : int
        Examples attacked at once.
    reduction : {"mean", "none"}
        ``"mean"`` returns the accuracy; ``"none"`` returns a boolean
        tensor of shape ``(N,)``, True where the attacked example is still
        correct (to combine several attacks per example, e.g. random
        restarts).

    Returns
    -------
    float or torch.Tensor
        Accuracy on the attacked inputs, in ``[0, 1]``, or the per-example
        correctness.
    """
    _check_model(model)
    epsilon = _check_real(epsilon, "epsilon")
    _check_choice(attack, "attack", _ATTACKS)
    steps = _check_positive_int(steps, "steps")
    if step_size is None:
        step_size = 2.5 * epsilon / steps if epsilon > 0 else 1.0
    step_size = _check_real(step_size, "step_size", positive=True)
    _check_bool(random_start, "random_start")
    generator = as_generator(rng)
    clip = _check_clip(clip)
    _check_choice(loss, "loss", _LOSSES)
    batch_size = _check_positive_int(batch_size, "batch_size")
    _check_choice(reduction, "reduction", ("mean", "none"))
    _check_batch(input, target, clip)
    if input.shape[0] == 0:
        raise ValueError("input is empty; accuracy needs at least one example")
    correct = []
    for start in range(0, input.shape[0], batch_size):
        x = input[start : start + batch_size]
        y = target[start : start + batch_size]
        if attack == "fgsm":
            x_adv = fgsm_attack(model, x, y, epsilon, clip=clip, loss=loss)
        else:
            x_adv = pgd_attack(
                model,
                x,
                y,
                epsilon,
                step_size,
                steps,
                random_start=random_start,
                rng=generator,
                clip=clip,
                loss=loss,
            )
        with _EvalMode(model), torch.no_grad():
            correct.append(model(x_adv).argmax(dim=1) == y)
    correct = torch.cat(correct)
    if reduction == "none":
        return correct
    return correct.sum().item() / correct.numel()


class AdversarialTraining(nn.Module):
    r"""A training-time wrapper: ``forward(x, y)`` returns ``model``
    applied to PGD examples of ``(x, y)``.

    Adversarial training (Madry et al. 2018) minimises the *robust* loss

    .. math::

        \min_\theta\; \mathbb{E}_{(x, y)} \Bigl[
        \max_{\|\delta\|_\infty \le \varepsilon}
        \ell(\theta;\, x + \delta,\, y)\Bigr],

    approximating the inner maximum by :func:`pgd_attack` on every
    mini-batch. Because the attack needs the labels, this module takes
    them as a second input; :func:`xentlib.training.fit` passes a tuple of
    inputs to the model unpacked, so the ordinary loop trains it unchanged:
    ``fit(AdversarialTraining(model, ...), cross_entropy, (x, y), y, ...)``
    (what :func:`fit_adversarial` does). Its parameters are those of
    ``model``, which is trained in place. Introduced in chapter 13.

    Parameters
    ----------
    model : nn.Module
        The classifier to train.
    epsilon, step_size, steps, random_start, clip
        As in :func:`pgd_attack`.
    rng : int, torch.Generator or None
        Resolved once (:func:`xentlib.runtime.as_generator`), so every
        mini-batch gets a fresh random start.
    """

    def __init__(
        self,
        model: nn.Module,
        epsilon: float,
        step_size: float,
        steps: int,
        *,
        random_start: bool = True,
        rng: int | torch.Generator | None = None,
        clip: tuple[float, float] | None = (0.0, 1.0),
    ):
        super().__init__()
        self.model = _check_model(model)
        self.epsilon = _check_real(epsilon, "epsilon")
        self.step_size = _check_real(step_size, "step_size", positive=True)
        self.steps = _check_positive_int(steps, "steps")
        self.random_start = _check_bool(random_start, "random_start")
        self.generator = as_generator(rng)
        self.clip = _check_clip(clip)

    def forward(
        self, input: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        x_adv = pgd_attack(
            self.model,
            input,
            target,
            self.epsilon,
            self.step_size,
            self.steps,
            random_start=self.random_start,
            rng=self.generator,
            clip=self.clip,
        )
        return self.model(x_adv)


def fit_adversarial(
    model: nn.Module,
    input: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    *,
    config: TrainConfig,
    random_start: bool = True,
    rng: int | torch.Generator | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    progress: str | None = None,
) -> History:
    r"""Train ``model`` in place on PGD examples (adversarial training).

    Each mini-batch is replaced by its :func:`pgd_attack` examples against
    the current model, and the cross-entropy on those is minimised with
    :func:`xentlib.training.fit`. Each epoch therefore costs about
    ``steps + 1`` times an ordinary one. Introduced in chapter 13.

    Parameters
    ----------
    model : nn.Module
        The classifier, trained in place.
    input, target
        Training inputs (inside ``clip``) and their class indices.
    epsilon, step_size, steps, random_start, clip
        The training attack, as in :func:`pgd_attack`.
    config : TrainConfig
        The optimiser's settings, as in :func:`xentlib.training.fit`.
    rng : int, torch.Generator or None
        One generator (:func:`xentlib.runtime.as_generator`) for both the
        shuffling order and the attacks' random starts.
    progress : str, optional
        The label of a progress bar over epochs; None shows none.

    Returns
    -------
    History
        The mean adversarial training loss of each epoch.

    Raises
    ------
    FloatingPointError
        When training diverges (see :func:`xentlib.training.fit`).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(
            f"config must be a TrainConfig; got {type(config).__name__}"
        )
    generator = as_generator(rng)
    wrapper = AdversarialTraining(
        model,
        epsilon,
        step_size,
        steps,
        random_start=random_start,
        rng=generator,
        clip=clip,
    )
    _check_batch(input, target, wrapper.clip)
    # the loss inside the loop trusts its arguments: logits that stop
    # being finite end in fit's divergence error, which names the lr
    return fit(
        wrapper,
        nn.functional.cross_entropy,
        (input, target),
        target,
        config=config,
        rng=generator,
        progress=progress,
    )

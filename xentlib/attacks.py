r"""Adversarial examples: gradient *ascent* on the cross-entropy, in the input.

Training lowers the loss :math:`\ell(\theta; x, y)` by moving the parameters
:math:`\theta` against its gradient. An attacker holds :math:`\theta` fixed and
moves the input instead, *up* the gradient, inside a small :math:`L_\infty`
ball around the clean input :math:`x` (no pixel changes by more than
:math:`\varepsilon`) and inside the valid range of the data (pixels in
:math:`[0, 1]`):

.. math::

    \max_{\delta}\; \ell(\theta;\, x + \delta,\, y)
    \quad\text{subject to}\quad \|\delta\|_\infty \le \varepsilon,\;
    x + \delta \in [0, 1]^d .

* :func:`fgsm_attack`, the fast gradient sign method (Goodfellow et al.
  2015), takes one step to the corner of the ball that a linear model of the
  loss says is worst: :math:`x' = \mathrm{clip}_{[0,1]}\bigl(x + \varepsilon\,
  \mathrm{sign}\,\nabla_x \ell\bigr)`.
* :func:`pgd_attack`, projected gradient descent (here ascent; Madry et al.
  2018), repeats smaller sign steps of size :math:`\alpha`, each followed by
  the projection back onto the ball and the valid range,
  :math:`x^{t+1} = \Pi\bigl(x^{t} + \alpha\, \mathrm{sign}\,\nabla_x
  \ell(x^{t})\bigr)`, optionally from a uniformly random start in the ball.
* :func:`adversarial_accuracy` is a model's accuracy on attacked inputs
  (its *robust accuracy* against that attack).
* :class:`AdversarialTraining` and :func:`fit_adversarial` train on PGD
  examples crafted afresh for every mini-batch (Madry et al.'s adversarial
  training) with the book's ordinary loop, :func:`xentlib.training.fit`.

The loss attacked is :func:`xentlib.cross_entropy` (summed over the batch, so
each example's gradient is its own). Attacks put the model in evaluation mode
while they run and restore its mode afterwards, differentiate with respect to
the input only (the parameters' ``.grad`` are left untouched), and return a
detached tensor. Introduced in chapter 13.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .losses import cross_entropy
from .training import TrainConfig, fit

__all__ = [
    "AdversarialTraining",
    "adversarial_accuracy",
    "fgsm_attack",
    "fit_adversarial",
    "pgd_attack",
]

_ATTACKS = ("fgsm", "pgd")


def _check_nonnegative(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return value


def _check_clip(clip) -> tuple[float, float] | None:
    if clip is None:
        return None
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise ValueError(
            f"clip must be None or a pair (low, high) of numbers; got {clip!r}"
        )
    try:
        low, high = (float(c) for c in clip)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"clip must be None or a pair (low, high) of numbers; got {clip!r}"
        ) from err
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            "clip must be None or a pair (low, high) of finite numbers with"
            f" low < high; got {clip!r}"
        )
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
    if (
        not isinstance(target, torch.Tensor)
        or target.is_floating_point()
        or target.dtype == torch.bool
    ):
        raise ValueError(
            "target must be a tensor of integer class indices of shape (N,)"
        )
    if target.shape != input.shape[:1]:
        raise ValueError(
            f"target must have shape ({input.shape[0]},), one class index per"
            f" input row; got {tuple(target.shape)}"
        )
    if input.numel() and bool(torch.isnan(input).any()):
        raise ValueError("input contains NaN; expected finite numbers")
    if clip is not None and input.numel():
        low, high = input.min().item(), input.max().item()
        if low < clip[0] or high > clip[1]:
            raise ValueError(
                f"input must lie inside clip = ({clip[0]:g}, {clip[1]:g}), the"
                f" valid range of the data; got values in [{low:.6g},"
                f" {high:.6g}]"
            )


def _input_gradient(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Gradient of the summed cross-entropy with respect to ``x`` only (parameters' .grad untouched)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = cross_entropy(model(x), target, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _project(
    x_adv: torch.Tensor, x: torch.Tensor, epsilon: float, clip
) -> torch.Tensor:
    """Back onto the L-inf ball of radius ``epsilon`` around ``x``, then into the valid range."""
    delta = torch.clamp(x_adv - x, min=-epsilon, max=epsilon)
    x_adv = x + delta
    return (
        x_adv if clip is None else torch.clamp(x_adv, min=clip[0], max=clip[1])
    )


class _EvalMode:
    """Evaluation mode inside a ``with`` block; the model's own mode is restored after it."""

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
) -> torch.Tensor:
    r"""Adversarial inputs by the fast gradient sign method (FGSM).

    .. math::

        x' = \mathrm{clip}\bigl(x + \varepsilon\, \mathrm{sign}\, \nabla_x \ell(\theta; x, y)\bigr)

    with :math:`\ell` the cross-entropy of the model's logits. It is the
    exact maximiser of the loss's first-order Taylor expansion over the
    :math:`L_\infty` ball of radius :math:`\varepsilon` (Goodfellow et al.
    2015). Introduced in chapter 13.

    Parameters
    ----------
    model : nn.Module
        Maps ``input`` to logits of shape ``(N, C)``. It is put in evaluation
        mode during the attack and its mode is restored afterwards.
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

    Returns
    -------
    torch.Tensor
        Adversarial inputs of the shape, dtype and device of ``input``,
        detached, with :math:`\|x' - x\|_\infty \le \varepsilon` and inside
        ``clip``.
    """
    epsilon = _check_nonnegative(epsilon, "epsilon")
    clip = _check_clip(clip)
    _check_batch(input, target, clip)
    x = input.detach()
    with _EvalMode(model):
        grad = _input_gradient(model, x, target)
    x_adv = x + epsilon * grad.sign()
    return (
        x_adv if clip is None else torch.clamp(x_adv, min=clip[0], max=clip[1])
    ).detach()


def pgd_attack(
    model: nn.Module,
    input: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    r"""Adversarial inputs by projected gradient descent (PGD) on the :math:`L_\infty` ball.

    Starting from :math:`x^0 = x` (or, with ``random_start``, from
    :math:`x + u` with :math:`u` uniform in :math:`[-\varepsilon,
    \varepsilon]^d`, clipped to the valid range), take ``steps`` sign steps
    up the cross-entropy, each followed by the projection :math:`\Pi` onto
    the ball around the *clean* input and onto the valid range:

    .. math::

        x^{t+1} = \Pi\bigl(x^{t} + \alpha\, \mathrm{sign}\, \nabla_x \ell(\theta; x^{t}, y)\bigr),
        \qquad \Pi(z) = \mathrm{clip}\bigl(x + \mathrm{clamp}(z - x, -\varepsilon, \varepsilon)\bigr).

    One step with ``step_size = epsilon`` and no random start is
    :func:`fgsm_attack`. Madry et al. (2018) use PGD with a random start
    both to evaluate robustness and to train robust models. Introduced in
    chapter 13.

    Parameters
    ----------
    model, input, target, epsilon, clip
        As in :func:`fgsm_attack`.
    step_size : float
        :math:`\alpha`, the size of each sign step (``> 0``); a common choice
        is ``2.5 * epsilon / steps``.
    steps : int
        Number of steps (``>= 1``).
    random_start : bool
        Start from a uniformly random point of the ball.
    generator : torch.Generator, optional
        A CPU generator for the random start; the noise is drawn on the CPU
        and moved to the input's device, so a seed gives the same start on
        any device.

    Returns
    -------
    torch.Tensor
        Adversarial inputs as in :func:`fgsm_attack`.
    """
    epsilon = _check_nonnegative(epsilon, "epsilon")
    step_size = _check_nonnegative(step_size, "step_size")
    if step_size == 0:
        raise ValueError(f"step_size must be > 0; got {step_size!r}")
    steps = _check_positive_int(steps, "steps")
    clip = _check_clip(clip)
    _check_batch(input, target, clip)
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            "generator must be a CPU torch.Generator; got one on"
            f" {generator.device}"
        )
    x = input.detach()
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(
            x.device
        )
        x_adv = x_adv + (2 * noise - 1) * epsilon
        x_adv = (
            x_adv
            if clip is None
            else torch.clamp(x_adv, min=clip[0], max=clip[1])
        )
    with _EvalMode(model):
        for _ in range(steps):
            grad = _input_gradient(model, x_adv, target)
            x_adv = _project(
                x_adv.detach() + step_size * grad.sign(), x, epsilon, clip
            )
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
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    batch_size: int = 1000,
    reduction: str = "mean",
) -> float | torch.Tensor:
    r"""The fraction of examples that the model still classifies correctly after an attack.

    Each example is attacked (``"fgsm"`` or ``"pgd"``) at radius
    ``epsilon`` and counted as correct if the model's top class on the
    adversarial input is its label. Against a strong attack this estimates
    the *robust accuracy*
    :math:`\Pr\bigl[\,f(x') = y \ \text{for all}\ \|x' - x\|_\infty \le \varepsilon\bigr]`
    from above: an attack finds some adversarial examples, not necessarily
    all. With ``epsilon = 0`` it is the clean accuracy. Introduced in
    chapter 13.

    Parameters
    ----------
    model, input, target, epsilon, clip
        As in :func:`fgsm_attack`.
    attack : {"fgsm", "pgd"}
        Which attack.
    steps, step_size, random_start, generator
        PGD's settings (ignored for FGSM); ``step_size`` defaults to
        ``2.5 * epsilon / steps``.
    batch_size : int
        Examples attacked at once.
    reduction : {"mean", "none"}
        ``"mean"`` returns the accuracy; ``"none"`` returns a boolean tensor
        of shape ``(N,)``, True where the attacked example is still correct
        (to combine several attacks per example, e.g. random restarts).

    Returns
    -------
    float or torch.Tensor
        Accuracy on the attacked inputs, in ``[0, 1]``, or the per-example
        correctness.
    """
    if attack not in _ATTACKS:
        raise ValueError(f"attack must be one of {_ATTACKS}; got {attack!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(
            f"reduction must be 'mean' or 'none'; got {reduction!r}"
        )
    epsilon = _check_nonnegative(epsilon, "epsilon")
    batch_size = _check_positive_int(batch_size, "batch_size")
    clip = _check_clip(clip)
    _check_batch(input, target, clip)
    if input.shape[0] == 0:
        raise ValueError("input is empty; accuracy needs at least one example")
    steps = _check_positive_int(steps, "steps")
    if step_size is None:
        step_size = 2.5 * epsilon / steps if epsilon > 0 else 1.0
    correct = []
    for start in range(0, input.shape[0], batch_size):
        x, y = (
            input[start : start + batch_size],
            target[start : start + batch_size],
        )
        if attack == "fgsm":
            x_adv = fgsm_attack(model, x, y, epsilon, clip=clip)
        else:
            x_adv = pgd_attack(
                model,
                x,
                y,
                epsilon,
                step_size,
                steps,
                random_start=random_start,
                generator=generator,
                clip=clip,
            )
        was_training = model.training
        model.eval()
        with torch.no_grad():
            correct.append(model(x_adv).argmax(dim=1) == y)
        model.train(was_training)
    correct = torch.cat(correct)
    return (
        correct
        if reduction == "none"
        else correct.sum().item() / correct.numel()
    )


class AdversarialTraining(nn.Module):
    r"""A training-time wrapper: ``forward(x, y)`` returns ``model`` applied to PGD examples of ``(x, y)``.

    Adversarial training (Madry et al. 2018) minimises the *robust* loss

    .. math::

        \min_\theta\; \mathbb{E}_{(x, y)} \Bigl[\max_{\|\delta\|_\infty \le \varepsilon}
        \ell(\theta;\, x + \delta,\, y)\Bigr],

    approximating the inner maximum by :func:`pgd_attack` on every
    mini-batch. Because the attack needs the labels, this module takes them
    as a second input; :func:`xentlib.training.fit` passes a tuple of inputs
    to the model unpacked, so the ordinary loop trains it unchanged:
    ``fit(AdversarialTraining(model, ...), cross_entropy, (x, y), y, ...)``
    (what :func:`fit_adversarial` does). Its parameters are those of
    ``model``, which is trained in place. Introduced in chapter 13.

    Parameters
    ----------
    model : nn.Module
        The classifier to train.
    epsilon, step_size, steps, random_start, generator, clip
        As in :func:`pgd_attack`.
    """

    def __init__(
        self,
        model: nn.Module,
        epsilon: float,
        step_size: float,
        steps: int,
        random_start: bool = True,
        generator: torch.Generator | None = None,
        clip: tuple[float, float] | None = (0.0, 1.0),
    ):
        super().__init__()
        self.model = model
        self.epsilon = _check_nonnegative(epsilon, "epsilon")
        self.step_size = _check_nonnegative(step_size, "step_size")
        if self.step_size == 0:
            raise ValueError(f"step_size must be > 0; got {step_size!r}")
        self.steps = _check_positive_int(steps, "steps")
        self.random_start = bool(random_start)
        self.generator = generator
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
            generator=self.generator,
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
    epochs: int,
    lr: float = 1e-3,
    batch_size: int | None = 128,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    progress: bool = False,
    desc: str | None = None,
) -> list[float]:
    r"""Train ``model`` in place on PGD examples (adversarial training) and return the loss history.

    Each mini-batch is replaced by its :func:`pgd_attack` examples against
    the current model, and the cross-entropy on those is minimised with
    :func:`xentlib.training.fit` (Adam). Each epoch therefore costs about
    ``steps + 1`` times an ordinary one. Introduced in chapter 13.

    Parameters
    ----------
    model : nn.Module
        The classifier, trained in place.
    input, target
        Training inputs (inside ``clip``) and their class indices.
    epsilon, step_size, steps, random_start, clip
        The training attack, as in :func:`pgd_attack`.
    epochs, lr, batch_size, progress, desc
        As in :func:`xentlib.training.fit`.
    generator : torch.Generator, optional
        A CPU generator used both for the shuffling order and the attacks'
        random starts.

    Returns
    -------
    list of float
        The mean adversarial training loss of each epoch.
    """
    clip = _check_clip(clip)
    _check_batch(input, target, clip)
    wrapper = AdversarialTraining(
        model,
        epsilon,
        step_size,
        steps,
        random_start=random_start,
        generator=generator,
        clip=clip,
    )
    return fit(
        wrapper,
        cross_entropy,
        (input, target),
        target,
        config=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size),
        rng=generator,
        progress=(desc or "") if progress else None,
    ).loss

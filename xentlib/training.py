"""A small, explicit training loop shared by the chapters.

Chapters train many small models (logistic and softmax regressions, MLPs, a
small CNN, a VAE). They all do the same thing: minimise a loss over a data
set with Adam (or plain gradient descent), shuffle with a seeded generator,
and report the mean loss per epoch. :func:`fit` does exactly that and nothing
more, so a reader can see the whole loop in one screen; :class:`TrainConfig`
holds the optimiser's settings, so that two models compared in a chapter are
visibly trained the same way; :func:`predict` and :func:`accuracy` are the
evaluation side.

Introduced in chapter 3 and used from chapter 4 on.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from .runtime import as_generator

__all__ = ["History", "TrainConfig", "accuracy", "fit", "predict"]

_OPTIMIZERS = ("adam", "sgd")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: the optimiser's settings, checked once.

    Parameters
    ----------
    epochs : int
        Passes over the data (0 trains nothing).
    lr : float
        Learning rate, finite and positive.
    batch_size : int, optional
        Mini-batch size; None uses the full batch (deterministic gradient
        descent).
    weight_decay : float
        L2 penalty coefficient passed to the optimiser, finite and >= 0.
    optimizer : {"adam", "sgd"}
        Adam (Kingma and Ba, 2015), or plain (full-batch or stochastic)
        gradient descent.

    Examples
    --------
    >>> config = TrainConfig(epochs=20, lr=1e-3, batch_size=128)
    >>> config.optimizer, config.weight_decay
    ('adam', 0.0)
    """

    epochs: int
    lr: float = 1e-2
    batch_size: int | None = None
    weight_decay: float = 0.0
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        if not _is_int(self.epochs) or self.epochs < 0:
            raise ValueError(
                f"epochs must be a non-negative integer; got {self.epochs!r}"
            )
        if not _is_real(self.lr) or not (0 < self.lr < math.inf):
            raise ValueError(
                f"lr must be a finite positive number; got {self.lr!r}"
            )
        if self.batch_size is not None and (
            not _is_int(self.batch_size) or self.batch_size < 1
        ):
            raise ValueError(
                "batch_size must be a positive integer or None (full "
                f"batch); got {self.batch_size!r}"
            )
        if not _is_real(self.weight_decay) or not (
            0 <= self.weight_decay < math.inf
        ):
            raise ValueError(
                "weight_decay must be a finite non-negative number; "
                f"got {self.weight_decay!r}"
            )
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {_OPTIMIZERS}; "
                f"got {self.optimizer!r}"
            )


@dataclass(frozen=True)
class History:
    """What happened while training: one entry per epoch.

    Attributes
    ----------
    loss : list of float
        The mean training loss of each epoch (weighted by batch sizes).
    logs : dict of str to list of float
        Further numbers per epoch: the terms a loss function returned beside
        the loss (averaged like the loss), and what ``on_epoch_end``
        returned.
    """

    loss: list[float]
    logs: dict[str, list[float]] = field(default_factory=dict)


def _num_rows(inputs, name: str) -> int:
    parts = inputs if isinstance(inputs, tuple) else (inputs,)
    if not parts or not all(isinstance(x, torch.Tensor) for x in parts):
        raise ValueError(
            f"{name} must be a tensor or a non-empty tuple of tensors; "
            f"got {type(inputs).__name__}"
        )
    if any(x.dim() == 0 for x in parts):
        raise ValueError(f"{name} must have one row per example; got a scalar")
    rows = {x.shape[0] for x in parts}
    if len(rows) != 1:
        raise ValueError(
            f"{name} must have the same number of rows in each tensor; "
            f"got {sorted(rows)}"
        )
    return rows.pop()


def _check_fit(model, loss_fn, inputs, target, config, on_epoch_end) -> int:
    """The arguments of :func:`fit`, checked; returns the number of rows."""
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model must be a torch.nn.Module; got {type(model).__name__}"
        )
    for name, value in (("loss_fn", loss_fn), ("on_epoch_end", on_epoch_end)):
        if value is not None and not callable(value):
            raise ValueError(
                f"{name} must be callable; got {type(value).__name__}"
            )
    if not isinstance(config, TrainConfig):
        raise ValueError(
            f"config must be a TrainConfig; got {type(config).__name__}"
        )
    n = _num_rows(inputs, "inputs")
    if n == 0:
        raise ValueError("inputs must hold at least one example; got none")
    if target is not None:
        if not isinstance(target, torch.Tensor) or target.dim() == 0:
            raise ValueError("target must be a tensor with one row per input")
        if target.shape[0] != n:
            raise ValueError(
                "inputs and target must have one row per example each; got "
                f"{n} input rows and {target.shape[0]} target rows"
            )
    return n


def _batches(n: int, size: int | None, generator, device):
    """Each mini-batch's rows and their number: all rows in order for a full
    batch, else a fresh shuffle cut into pieces of ``size``."""
    if size is None or size >= n:
        yield slice(0, n), n
        return
    order = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, size):
        index = order[start : start + size]
        yield index, len(index)


def _rows(inputs, index):
    if isinstance(inputs, tuple):
        return tuple(x[index] for x in inputs)
    return inputs[index]


def _split_loss(out) -> tuple[torch.Tensor, dict]:
    """A loss function's result as (scalar loss, logs)."""
    loss, logs = out if isinstance(out, tuple) else (out, {})
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            "loss_fn must return a scalar tensor, or a (scalar tensor, dict) "
            f"pair; got {type(loss).__name__}"
        )
    return loss, logs


def _number(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


def _diverged(
    epoch: int, config: TrainConfig, what: str
) -> FloatingPointError:
    return FloatingPointError(
        f"training diverged in epoch {epoch + 1} of {config.epochs}: {what}. "
        f"Lower the learning rate (lr={config.lr:g}) or check the inputs "
        "for NaN and inf"
    )


def fit(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor | tuple[torch.Tensor, dict]],
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    target: torch.Tensor | None = None,
    *,
    config: TrainConfig,
    rng: int | torch.Generator | None = None,
    on_epoch_end: Callable[[int, nn.Module], dict | None] | None = None,
    progress: str | None = None,
) -> History:
    """Train ``model`` in place by minimising ``loss_fn(model(x), y)``.

    Parameters
    ----------
    model : nn.Module
        Called on a batch of ``inputs``; it is put in training mode.
    loss_fn : callable
        ``loss_fn(output, target_batch)`` returning a scalar (a mean over the
        batch), or a pair ``(scalar, {"name": number})`` whose numbers are
        averaged per epoch into :attr:`History.logs`. When ``target`` is
        None it is called as ``loss_fn(output, x)`` with the input batch
        itself (autoencoders).
    inputs : Tensor or tuple of Tensors
        Rows are examples. A tuple is passed to the model unpacked.
    target : Tensor, optional
        One row per example, on the same device as ``inputs``.
    config : TrainConfig
        Epochs, learning rate, batch size, weight decay and optimiser.
    rng : int, torch.Generator or None
        The shuffling order's randomness (see
        :func:`xentlib.runtime.as_generator`).
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch, model)``, called after each epoch (0-based),
        for example to evaluate held-out accuracy while training (chapter
        4). A dict of numbers it returns is logged in :attr:`History.logs`.
    progress : str, optional
        The label of a tqdm progress bar over epochs; None shows none.

    Returns
    -------
    History
        The mean training loss of each epoch, and the logs.

    Raises
    ------
    FloatingPointError
        When the loss or a parameter stops being finite (the message names
        the epoch and the learning rate).
    """
    n = _check_fit(model, loss_fn, inputs, target, config, on_epoch_end)
    generator = as_generator(rng)
    params = [p for p in model.parameters() if p.requires_grad]
    step = torch.optim.Adam if config.optimizer == "adam" else torch.optim.SGD
    opt = step(params, lr=config.lr, weight_decay=config.weight_decay)
    device = (inputs[0] if isinstance(inputs, tuple) else inputs).device
    history = History(loss=[])
    model.train()
    epochs = tqdm(range(config.epochs), progress, disable=progress is None)
    for epoch in epochs:
        sums = {"loss": 0.0}
        for index, rows in _batches(n, config.batch_size, generator, device):
            x = _rows(inputs, index)
            y = x if target is None else target[index]
            out = model(*x) if isinstance(x, tuple) else model(x)
            loss, terms = _split_loss(loss_fn(out, y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not math.isfinite(mean := loss.item()):
                raise _diverged(epoch, config, f"the loss became {mean}")
            for key, value in {"loss": mean, **terms}.items():
                sums[key] = sums.get(key, 0.0) + _number(value) * rows
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise _diverged(epoch, config, "a parameter is no longer finite")
        history.loss.append(sums.pop("loss") / n)
        for key, value in sums.items():
            history.logs.setdefault(key, []).append(value / n)
        if on_epoch_end is not None:
            for key, value in (on_epoch_end(epoch, model) or {}).items():
                history.logs.setdefault(key, []).append(_number(value))
            model.train()
    return history


@torch.no_grad()
def predict(
    model: nn.Module, inputs: torch.Tensor, batch_size: int = 4096
) -> torch.Tensor:
    """The model's outputs on ``inputs`` in evaluation mode, in batches.

    Parameters
    ----------
    model : nn.Module
        Put in evaluation mode for the call, then restored.
    inputs : Tensor
        Rows are examples.
    batch_size : int
        Rows per forward pass (a positive integer).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model must be a torch.nn.Module; got {type(model).__name__}"
        )
    if not isinstance(inputs, torch.Tensor) or inputs.dim() == 0:
        raise ValueError(
            "inputs must be a tensor with one row per example; "
            f"got {type(inputs).__name__}"
        )
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer; got {batch_size!r}"
        )
    was_training = model.training
    model.eval()
    try:
        outs = [
            model(inputs[start : start + batch_size])
            for start in range(0, inputs.shape[0], batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else model(inputs)


def accuracy(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of correct predictions.

    Parameters
    ----------
    prediction : Tensor
        Class indices of shape ``(N,)``, or scores of shape ``(N, C)``
        (logits or probabilities, no NaN; the argmax is taken).
    target : Tensor
        Class indices of shape ``(N,)``, in ``[0, C - 1]`` when the scores
        give ``C``.
    """
    if not isinstance(prediction, torch.Tensor):
        raise ValueError(
            "prediction must be a tensor of class indices or scores; "
            f"got {type(prediction).__name__}"
        )
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"target must be a tensor of class indices; "
            f"got {type(target).__name__}"
        )
    if target.is_floating_point() or target.is_complex():
        raise ValueError(
            f"target must hold integer class indices; got dtype {target.dtype}"
        )
    if target.numel() == 0:
        raise ValueError(
            "target is empty; accuracy needs at least one example"
        )
    if int(target.min()) < 0:
        raise ValueError(
            f"target must hold class indices >= 0; got {int(target.min())}"
        )
    if prediction.dim() == 2:
        if bool(torch.isnan(prediction).any()):
            raise ValueError("prediction contains NaN; expected scores")
        if int(target.max()) >= prediction.shape[1]:
            raise ValueError(
                "target must hold class indices in "
                f"[0, {prediction.shape[1] - 1}] for {prediction.shape[1]} "
                f"scores per row; got {int(target.max())}"
            )
        prediction = prediction.argmax(dim=1)
    elif prediction.is_floating_point() or prediction.is_complex():
        raise ValueError(
            "prediction of shape (N,) must hold integer class indices; "
            f"got dtype {prediction.dtype}"
        )
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction must hold one class per target "
            f"({tuple(target.shape)}); got shape {tuple(prediction.shape)}"
        )
    return (prediction.to(target.device) == target).float().mean().item()

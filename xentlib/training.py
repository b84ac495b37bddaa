"""A small, explicit training loop shared by the chapters.

Chapters train many small models (logistic and softmax regressions, MLPs, a
small CNN). They all do the same thing: minimise a loss over a data set with
Adam (or plain gradient descent), shuffle with a seeded generator, and report
the mean loss per epoch. :func:`fit` does exactly that and nothing more, so a
reader can see the whole loop in one screen; :func:`predict` and
:func:`accuracy` are the evaluation side.

Introduced in chapter 3 and used from chapter 4 on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from tqdm import tqdm

__all__ = ["accuracy", "fit", "predict"]

_OPTIMIZERS = ("adam", "sgd")


def _num_rows(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    first = inputs[0] if isinstance(inputs, tuple) else inputs
    return first.shape[0]


def _rows(inputs, index):
    if isinstance(inputs, tuple):
        return tuple(x[index] for x in inputs)
    return inputs[index]


def fit(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    target: torch.Tensor | None = None,
    *,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    generator: torch.Generator | None = None,
    progress: bool = False,
    desc: str | None = None,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Train ``model`` by minimising ``loss_fn(model(x), y)`` and return the loss history.

    Parameters
    ----------
    model : nn.Module
        Anything callable on a batch of ``inputs``; it is put in training mode.
    loss_fn : callable
        ``loss_fn(output, target_batch)`` returning a scalar (a mean over the
        batch). When ``target`` is None it is called as ``loss_fn(output, x)``
        with the input batch ``x`` itself (autoencoders).
    inputs : Tensor or tuple of Tensors
        Rows are examples. A tuple is passed to the model unpacked.
    target : Tensor, optional
        One row per example, on the same device as ``inputs``.
    epochs : int
        Passes over the data.
    lr : float
        Learning rate.
    batch_size : int, optional
        Mini-batch size; None uses the full batch (deterministic gradient descent).
    weight_decay : float
        L2 penalty coefficient passed to the optimiser.
    optimizer : {"adam", "sgd"}
        Adam, or plain (full-batch or stochastic) gradient descent.
    generator : torch.Generator, optional
        A CPU generator for the shuffling order, for repeatable runs.
    progress : bool
        Show a tqdm progress bar over epochs.
    desc : str, optional
        The progress bar's label.
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch, model)``, called after each epoch (0-based), for
        example to evaluate held-out accuracy while training (chapter 4).

    Returns
    -------
    list of float
        The mean training loss of each epoch (weighted by batch sizes).
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(
            f"epochs must be a non-negative integer; got {epochs!r}"
        )
    if lr <= 0:
        raise ValueError(f"lr must be positive; got {lr}")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {_OPTIMIZERS}; got {optimizer!r}"
        )
    n = _num_rows(inputs)
    if target is not None and target.shape[0] != n:
        raise ValueError(
            f"target must have one row per input row ({n}); got"
            f" {target.shape[0]}"
        )
    if batch_size is not None and batch_size < 1:
        raise ValueError(
            "batch_size must be a positive integer or None; got"
            f" {batch_size!r}"
        )
    batch = n if batch_size is None else min(batch_size, n)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    first = inputs[0] if isinstance(inputs, tuple) else inputs
    model.train()
    history: list[float] = []
    for epoch in tqdm(
        range(epochs), desc=desc, disable=not progress, mininterval=1.0
    ):
        order = (
            torch.randperm(n, generator=generator).to(first.device)
            if batch < n
            else None
        )
        total = 0.0
        for start in range(0, n, batch):
            index = (
                slice(start, start + batch)
                if order is None
                else order[start : start + batch]
            )
            x = _rows(inputs, index)
            y = x if target is None else target[index]
            out = model(*x) if isinstance(x, tuple) else model(x)
            loss = loss_fn(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * (min(start + batch, n) - start)
        history.append(total / n)
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
            model.train()
    return history


@torch.no_grad()
def predict(
    model: nn.Module, inputs: torch.Tensor, batch_size: int = 4096
) -> torch.Tensor:
    """The model's outputs on ``inputs`` in evaluation mode, computed in batches."""
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

    ``prediction`` is either class indices of shape ``(N,)`` or scores of
    shape ``(N, C)`` (logits or probabilities; the argmax is taken).
    """
    if prediction.dim() == 2:
        prediction = prediction.argmax(dim=1)
    if prediction.shape != target.shape:
        raise ValueError(
            "prediction must hold one class per target"
            f" ({tuple(target.shape)}); got shape {tuple(prediction.shape)}"
        )
    if target.numel() == 0:
        raise ValueError(
            "target is empty; accuracy needs at least one example"
        )
    return (prediction.to(target.device) == target).float().mean().item()

"""Small models shared by the chapters.

Chapters 4, 9 and 14 train multilayer perceptrons; they are all built by
:func:`mlp`, so that "an MLP" means the same thing everywhere in the book.
Models specific to one idea (the VAE, the rotation CNN, the window model) live
in the module of that idea.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["mlp"]


def mlp(
    in_features: int,
    out_features: int,
    hidden: int = 256,
    depth: int = 2,
    activation: Callable[[], nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """A multilayer perceptron ``in_features -> hidden (x depth) ->
    out_features``.

    Parameters
    ----------
    in_features, out_features : int
        Input and output sizes; the output is left linear (logits).
    hidden : int
        Width of each hidden layer.
    depth : int
        Number of hidden layers (0 gives a linear model).
    activation : callable
        Makes the non-linearity after each hidden layer (``nn.ReLU`` by
        default,
        ``lambda: nn.LeakyReLU(0.2)`` for the GAN of chapter 9).

    Returns
    -------
    nn.Sequential
        Layers created in order, so the same seed gives the same initial
        weights.
    """
    for name, value, low in (
        ("in_features", in_features, 1),
        ("out_features", out_features, 1),
        ("hidden", hidden, 1),
        ("depth", depth, 0),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
        ):
            raise ValueError(
                f"{name} must be an integer >= {low}; got {value!r}"
            )
    if not callable(activation):
        raise ValueError(
            "activation must be callable, returning a module (nn.ReLU); "
            f"got {type(activation).__name__}"
        )
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)

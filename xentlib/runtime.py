"""Where code runs and how it is made repeatable: device, seeding, randomness.

Every chapter's parameters cell holds ``seed`` and ``device``; its first code
calls :func:`seed_everything` and :func:`resolve_device`.

Randomness has one convention across xentlib: a function that draws random
numbers takes ``rng``, which is an ``int`` seed, a CPU
:class:`torch.Generator`, or None (torch's global generator, which
:func:`seed_everything` seeds), and turns it into a generator with
:func:`as_generator`. Draws are made on the CPU and moved to the device, so
that a seed gives the same numbers on a CPU and on a GPU.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["as_generator", "resolve_device", "seed_everything"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA when a GPU is available and the CPU otherwise;
        anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``) is used as given,
        after checking that it exists.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the request names an unknown device or a CUDA device that is not
        available.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was requested but CUDA is not available;"
                " use 'auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} was requested but only"
                f" {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return dev


def seed_everything(seed: int) -> np.random.Generator:
    """Seed every random generator a chapter uses and return a numpy generator.

    Seeds Python's :mod:`random`, numpy's legacy global generator, and torch on
    the CPU and every CUDA device, and asks cuDNN for deterministic kernels.
    The same seed then gives the same results on the same machine.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Returns
    -------
    numpy.random.Generator
        A fresh generator seeded with ``seed``, for numpy code that should not
        rely on global state.
    """
    if (
        isinstance(seed, bool)
        or not isinstance(seed, (int, np.integer))
        or seed < 0
    ):
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)  # inherited by worker processes
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def as_generator(rng=None, name: str = "rng") -> torch.Generator:
    """The CPU random generator that ``rng`` asks for.

    Every xentlib function that draws random numbers resolves its ``rng``
    argument through this function (the one convention of
    :mod:`xentlib.runtime`, as scikit-learn's ``random_state``).

    Parameters
    ----------
    rng : int, torch.Generator or None
        An ``int`` seed gives a fresh generator seeded with it, so the same
        seed gives the same draws however often it is used; a CPU
        :class:`torch.Generator` is used as it is, and advances; None is
        torch's global CPU generator (seeded by :func:`seed_everything`).
    name : str
        The argument's name, for the error message.

    Returns
    -------
    torch.Generator

    Raises
    ------
    ValueError
        For a negative or non-integer seed, a numpy generator, or a
        generator on a GPU.

    Examples
    --------
    >>> a = torch.rand(3, generator=as_generator(7))
    >>> b = torch.rand(3, generator=as_generator(7))
    >>> bool((a == b).all())
    True
    """
    if rng is None:
        return torch.default_generator
    if isinstance(rng, torch.Generator):
        if rng.device.type != "cpu":
            raise ValueError(
                f"{name} must be a CPU torch.Generator (draws are made on "
                f"the CPU and moved); got one on {rng.device}"
            )
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(
                f"{name} must be a non-negative integer seed; got {rng}"
            )
        return torch.Generator().manual_seed(int(rng))
    raise ValueError(
        f"{name} must be an int seed, a torch.Generator or None; "
        f"got {type(rng).__name__}"
        + (
            " (pass an int seed instead of a numpy generator)"
            if isinstance(rng, np.random.Generator)
            else ""
        )
    )

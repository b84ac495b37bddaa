"""Where code runs and how it is made repeatable: device choice and seeding.

Every chapter's parameters cell holds ``seed`` and ``device``; its first code
calls :func:`seed_everything` and :func:`resolve_device`.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything"]


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

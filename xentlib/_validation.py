"""Input checks and the dtype and reduction rules of xentlib's public API.

Public functions validate at the boundary and raise :class:`ValueError` with a
message that names the argument, what it got and what was expected (the
scikit-learn habit). Internal helpers trust their callers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

REDUCTIONS = ("mean", "sum", "none")

LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {REDUCTIONS}; got {reduction!r}"
        )


def reduce_rows(rows: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-row losses as ``reduction`` asks: kept, summed or averaged."""
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.mean()


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a loss is computed in: float32 for half precision, else the
    input's own."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def check_class_target(
    target, n_rows: int, n_classes: int, name: str = "target"
) -> torch.Tensor:
    """``target`` as long class indices: a tensor of shape ``(n_rows,)``
    with values in ``[0, n_classes - 1]``."""
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of class indices; got"
            f" {type(target).__name__}"
        )
    if (
        target.is_floating_point()
        or target.is_complex()
        or target.dtype == torch.bool
    ):
        raise ValueError(
            f"{name} must hold integer class indices; got dtype {target.dtype}"
        )
    if target.shape != (n_rows,):
        raise ValueError(
            f"{name} must have shape ({n_rows},), one class index per row; got"
            f" {tuple(target.shape)}"
        )
    if target.numel() and (
        int(target.min()) < 0 or int(target.max()) >= n_classes
    ):
        bad = target[(target < 0) | (target >= n_classes)][0]
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes - 1}]; got"
            f" {int(bad)}"
        )
    return target.long()


def check_class_indices(
    y: torch.Tensor, n_classes: int, ignore_index: int, name: str = "target"
) -> torch.Tensor:
    """Flat long class indices in ``[0, n_classes - 1]`` or
    ``ignore_index``; returns the mask of kept rows."""
    keep = y != ignore_index
    bad = keep & ((y < 0) | (y >= n_classes))
    if bool(bad.any()):
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes - 1}] "
            f"(or ignore_index={ignore_index}); got {int(y[bad][0])}"
        )
    return keep


def as_float_tensor(x, name: str) -> torch.Tensor:
    """Return ``x`` as a floating tensor.

    Tensors keep their dtype and device (integer tensors become the default
    float dtype); anything else (lists, numpy arrays, Python numbers) becomes
    float64, so that numbers typed by a reader are computed in double
    precision.
    """
    if isinstance(x, torch.Tensor):
        if x.is_floating_point():
            return x
        if x.is_complex():
            raise ValueError(f"{name} must be real; got a complex tensor")
        return x.to(torch.get_default_dtype())
    if np.iscomplexobj(x):
        raise ValueError(f"{name} must be real; got complex values")
    try:
        return torch.as_tensor(x, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"{name} must be a tensor or array of numbers; got"
            f" {type(x).__name__}"
        ) from err


def check_float_tensor(x, name: str, what: str = "logits") -> torch.Tensor:
    """``x`` must be a floating-point :class:`torch.Tensor` (of ``what``)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = (
            f"dtype {x.dtype}"
            if isinstance(x, torch.Tensor)
            else type(x).__name__
        )
        raise ValueError(
            f"{name} must be a floating-point torch.Tensor of {what}; "
            f"got {got}"
        )
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    """No NaN and no infinity in ``x``."""
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{name} contains NaN or infinite values; expected finite numbers"
        )


def check_no_nan(x: torch.Tensor, name: str) -> None:
    if x.numel() and bool(torch.isnan(x).any()):
        raise ValueError(f"{name} contains NaN; expected finite numbers")


def check_logits(x: torch.Tensor, name: str = "input") -> None:
    """Logits may be -inf (a masked class) but never NaN or +inf."""
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor of logits; got dtype"
            f" {x.dtype}"
        )
    if x.numel() and bool((torch.isnan(x) | (x == math.inf)).any()):
        raise ValueError(
            f"{name} contains NaN or +inf; expected logits in [-inf, inf)"
        )


def check_unit_interval(
    x: torch.Tensor, name: str, what: str = "probabilities"
) -> None:
    """No NaN, and every entry in [0, 1]."""
    check_no_nan(x, name)
    if x.numel() and (bool((x < 0).any()) or bool((x > 1).any())):
        raise ValueError(
            f"{name} must hold {what} in [0, 1]; got values in "
            f"[{x.min().item():.6g}, {x.max().item():.6g}]"
        )


def distribution_tolerance(dtype: torch.dtype) -> float:
    """How far from one a probability vector's sum may be: sqrt(eps)."""
    return math.sqrt(torch.finfo(dtype).eps)


def check_distribution(p: torch.Tensor, name: str, dim: int = -1) -> None:
    """Entries in [0, 1] that sum to one along ``dim`` (within sqrt(eps))."""
    if p.dim() == 0:
        raise ValueError(
            f"{name} must have at least one dimension (the outcomes); got a"
            " scalar"
        )
    check_unit_interval(p, name)
    if p.numel() == 0:
        return
    sums = p.sum(
        dim=dim, dtype=torch.float64 if p.dtype != torch.float64 else None
    )
    tol = distribution_tolerance(p.dtype)
    worst = (sums - 1).abs().max().item()
    if worst > tol:
        raise ValueError(
            f"{name} must sum to one along dimension {dim}; found a sum off by"
            f" {worst:.3g} (tolerance {tol:.1g} for {p.dtype})"
        )


def check_base(base) -> float | None:
    if base is None:
        return None
    if not isinstance(base, (int, float)) or isinstance(base, bool):
        raise ValueError(
            "base must be a positive number other than 1, or None for nats;"
            f" got {base!r}"
        )
    if not (base > 0) or base == 1 or math.isinf(base):
        raise ValueError(
            "base must be a positive number other than 1, or None for nats;"
            f" got {base!r}"
        )
    return float(base)

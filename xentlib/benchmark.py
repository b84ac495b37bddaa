"""Time and peak memory of an output layer plus cross-entropy, measured honestly.

Compares, at one problem size and in one run, the forward and backward pass of

* ``naive``: ``F.cross_entropy(hidden @ weight.T, target)``, which holds the
  full logits;
* ``xentlib``: :func:`xentlib.scale.linear_cross_entropy`, chunked;
* ``liger``: Liger Kernel's fused linear cross-entropy, when installed (CUDA);
* ``cce``: Apple's Cut Cross-Entropy, when installed (CUDA).

Each method runs in a fresh Python process, so that one method's memory does
not count against the next. On CUDA the peak is PyTorch's
``torch.cuda.max_memory_allocated``; on the CPU, which has no allocator
statistics, it is the process's peak resident set size (Linux's ``VmHWM``,
reset just before the pass; not ``ru_maxrss``, which a process inherits from
its parent), with glibc told to return large freed blocks to the system at
once (``MALLOC_MMAP_THRESHOLD_``) so that the peak follows live tensors. Both
are reported as the total peak and as the peak above the memory held just
before the pass (inputs and model), which is the loss's own cost. Times are
the median of several passes after a warm-up.

Used by chapter 15 and by ``benchmarks/linear_cross_entropy.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "METHODS",
    "Measurement",
    "available_methods",
    "compare_methods",
    "format_table",
    "measure",
]

METHODS = ("naive", "xentlib", "liger", "cce")

_DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


@dataclass
class Measurement:
    """One method's forward+backward at one size."""

    method: str
    device: str
    seconds: float | None = None
    peak_bytes: int | None = None
    extra_bytes: int | None = None
    error: str | None = None


def _loss_function(method: str, chunk_size: int | None):
    if method == "naive":
        return lambda h, w, y: F.cross_entropy(h @ w.T, y)
    if method == "xentlib":
        from .scale import linear_cross_entropy

        return lambda h, w, y: linear_cross_entropy(
            h, w, y, chunk_size=chunk_size
        )
    if method == "liger":
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        loss = LigerFusedLinearCrossEntropyLoss()
        return lambda h, w, y: loss(w, h, y)
    if method == "cce":
        from cut_cross_entropy import linear_cross_entropy as cce

        return lambda h, w, y: cce(h, w, y)
    raise ValueError(f"method must be one of {METHODS}; got {method!r}")


def available_methods(device: str) -> list[str]:
    """The methods that can run here: Liger and CCE need their packages and a CUDA device."""
    found = ["naive", "xentlib"]
    if device.startswith("cuda"):
        for method, module in (
            ("liger", "liger_kernel"),
            ("cce", "cut_cross_entropy"),
        ):
            try:
                __import__(module)
            except ImportError:
                continue
            found.append(method)
    return found


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> None:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux 4.0+; ignored where not allowed)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    """This process's own peak RSS. Not ru_maxrss: Linux carries that over from the parent across fork and exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def measure(
    method: str,
    tokens: int,
    hidden: int,
    vocab: int,
    dtype: str = "float32",
    device: str = "cpu",
    repeats: int = 3,
    chunk_size: int | None = None,
    seed: int = 0,
) -> Measurement:
    """Measure one method in this process (call it in a fresh process; see :func:`compare_methods`).

    The first pass gives the peak memory; ``repeats`` more passes give the
    median time. Inputs are drawn with a seeded generator; the weight is
    scaled by ``1/sqrt(hidden)`` like a trained output layer.
    """
    if dtype not in _DTYPES:
        raise ValueError(
            f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}"
        )
    if min(tokens, hidden, vocab) < 1 or repeats < 1:
        raise ValueError(
            "tokens, hidden, vocab and repeats must be positive integers"
        )
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    result = Measurement(
        method=method,
        device=torch.cuda.get_device_name(dev) if cuda else "cpu",
    )
    try:
        loss_fn = _loss_function(method, chunk_size)
    except ImportError as err:
        result.error = f"not installed ({err.name})"
        return result
    g = torch.Generator().manual_seed(seed)
    dt = _DTYPES[dtype]
    h = torch.randn(tokens, hidden, generator=g).to(dev, dt).requires_grad_()
    w = (
        (torch.randn(vocab, hidden, generator=g) / hidden**0.5)
        .to(dev, dt)
        .requires_grad_()
    )
    y = torch.randint(0, vocab, (tokens,), generator=g).to(dev)

    def one_pass():
        h.grad = w.grad = None
        loss_fn(h, w, y).backward()
        if cuda:
            torch.cuda.synchronize(dev)

    try:
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            before = torch.cuda.memory_allocated(dev)
            one_pass()
            result.peak_bytes = torch.cuda.max_memory_allocated(dev)
        else:
            _reset_peak_rss()
            before = _current_rss_bytes()
            one_pass()
            result.peak_bytes = _peak_rss_bytes()
        result.extra_bytes = result.peak_bytes - before
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            one_pass()
            times.append(time.perf_counter() - start)
        result.seconds = statistics.median(times)
    except (
        Exception
    ) as err:  # a method that cannot run at this size is reported, not fatal
        result.error = (
            f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
        )
    return result


def compare_methods(
    methods: list[str] | None = None,
    *,
    tokens: int,
    hidden: int,
    vocab: int,
    dtype: str = "float32",
    device: str = "cpu",
    repeats: int = 3,
    chunk_size: int | None = None,
    seed: int = 0,
    timeout: float = 600,
) -> list[Measurement]:
    """Measure each method in its own fresh Python process and return the measurements, naive first."""
    methods = (
        list(methods) if methods is not None else available_methods(device)
    )
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(
            f"methods must be among {METHODS}; got {sorted(unknown)}"
        )
    out = []
    for method in methods:
        args = dict(
            method=method,
            tokens=tokens,
            hidden=hidden,
            vocab=vocab,
            dtype=dtype,
            device=device,
            repeats=repeats,
            chunk_size=chunk_size,
            seed=seed,
        )
        proc = subprocess.run(
            [sys.executable, "-m", "xentlib.benchmark", json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            out.append(
                Measurement(
                    method=method,
                    device=device,
                    error=f"worker failed: {tail[:160]}",
                )
            )
        else:
            out.append(
                Measurement(**json.loads(proc.stdout.strip().splitlines()[-1]))
            )
    return out


def format_table(measurements: list[Measurement]) -> str:
    """A text table with time and memory, and their ratios to the first (naive) row."""
    base = measurements[0]

    def ratio(a, b):
        return f"{a / b:.2f}x" if a is not None and b else "-"

    lines = [
        f"{'method':<9} {'time (ms)':>10} {'x naive':>8} {'peak (MiB)':>11}"
        f" {'x naive':>8} {'above inputs (MiB)':>19} {'x naive':>8}"
    ]
    for m in measurements:
        if m.error:
            lines.append(f"{m.method:<9} {m.error}")
            continue
        lines.append(
            f"{m.method:<9} {m.seconds * 1e3:>10.1f}"
            f" {ratio(m.seconds, base.seconds):>8}"
            f" {m.peak_bytes / 2**20:>11.0f}"
            f" {ratio(m.peak_bytes, base.peak_bytes):>8}"
            f" {m.extra_bytes / 2**20:>19.0f}"
            f" {ratio(m.extra_bytes, base.extra_bytes):>8}"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # the worker process of compare_methods
    print(json.dumps(asdict(measure(**json.loads(sys.argv[1])))))

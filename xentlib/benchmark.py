"""Time and peak memory of losses, measured so that a comparison is fair.

Two benchmarks share this module's timing rule, :func:`time_interleaved`:
the functions compared run round by round, in rotating order, so that a
change in the machine's load falls on all of them alike, and each reports
the median and the range of its rounds.

* :func:`compare_losses` times xentlib's losses against PyTorch's
  (``benchmarks/cross_entropy.py``).
* :func:`compare_methods` measures an output layer plus cross-entropy
  (``benchmarks/linear_cross_entropy.py`` and chapter 15), forward and
  backward:

  * ``naive``: ``F.cross_entropy(hidden @ weight.T, target)``, which holds
    the full logits;
  * ``xentlib``: :func:`xentlib.scale.linear_cross_entropy`, chunked, with
    the gradients computed in the forward pass (its default);
  * ``xentlib_recompute``: the same, recomputing the logits in the backward
    pass;
  * ``xentlib_triton``: xentlib's fused Triton kernel (CUDA);
  * ``liger``: Liger Kernel's fused linear cross-entropy, when installed
    (CUDA);
  * ``cce``: Apple's Cut Cross-Entropy, when installed (CUDA).

  Memory is measured for each method in a fresh Python process, so that one
  method's memory does not count against the next. On CUDA the peak is
  PyTorch's ``torch.cuda.max_memory_allocated``; on the CPU, which has no
  allocator statistics, it is the process's peak resident set size (Linux's
  ``VmHWM``, reset just before the pass; not ``ru_maxrss``, which a process
  inherits from its parent), with glibc told to return large freed blocks
  to the system at once (``MALLOC_MMAP_THRESHOLD_``) so that the peak
  follows live tensors. Both are reported as the total peak and as the peak
  above the memory held just before the pass (inputs and model), which is
  the loss's own cost. Times come from one further process that runs every
  method, interleaved.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "LOSS_SHAPES",
    "METHODS",
    "SIZES",
    "Measurement",
    "Timing",
    "available_methods",
    "compare_losses",
    "compare_methods",
    "format_table",
    "measure",
    "time_interleaved",
]

METHODS = (
    "naive",
    "xentlib",
    "xentlib_recompute",
    "xentlib_triton",
    "liger",
    "cce",
)
# xentlib's methods also take a chunk size: "xentlib@256".

#: A method whose first pass takes this many times the fastest method's is
#: not timed (see :func:`compare_methods`).
TOO_SLOW = 20

#: Problem sizes of :func:`compare_methods`: the CPU size of issue 14 and
#: the Llama 3 output layer that Liger Kernel and Cut Cross-Entropy measure.
SIZES = {
    "cpu": dict(tokens=4096, hidden=512, vocab=32768, dtype="float32"),
    "llama3": dict(tokens=8192, hidden=4096, vocab=128256, dtype="bfloat16"),
}

_DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


#: The (rows, classes) shapes at which :func:`compare_losses` is run by
#: ``benchmarks/cross_entropy.py``: many rows and few classes, a thousand
#: classes, a language model's vocabulary, and one in between.
LOSS_SHAPES = ((65536, 10), (4096, 1000), (1024, 32000), (2048, 8192))


@dataclass(frozen=True)
class Timing:
    """The times of repeated runs of one function, in seconds."""

    label: str
    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)

    @property
    def high(self) -> float:
        return max(self.seconds)


def time_interleaved(
    functions: dict[str, Callable[[], object]],
    repeats: int = 7,
    warmup: int = 1,
    synchronize: Callable[[], object] | None = None,
) -> dict[str, Timing]:
    """Time each function ``repeats`` times, interleaved round by round.

    Every round runs each function once, in an order that rotates from round
    to round, so that a change in the machine's load (other processes, a
    thermal limit) falls on all of them alike instead of on whichever ran
    last. ``warmup`` untimed rounds come first. ``synchronize`` (for example
    ``torch.cuda.synchronize``) is called before each clock reading, so that
    asynchronous devices are timed to completion.
    """
    if (
        not isinstance(functions, dict)
        or not functions
        or not all(callable(f) for f in functions.values())
    ):
        raise ValueError(
            "functions must be a dict of at least one name and function to"
            f" time; got {functions!r}"
        )
    if (
        isinstance(repeats, bool)
        or not isinstance(repeats, int)
        or repeats < 1
    ):
        raise ValueError(
            f"repeats must be a positive integer; got {repeats!r}"
        )
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(
            f"warmup must be a non-negative integer; got {warmup!r}"
        )
    if synchronize is not None and not callable(synchronize):
        raise ValueError(
            f"synchronize must be a function or None; got {synchronize!r}"
        )
    sync = synchronize or (lambda: None)
    names = list(functions)
    times = {name: [] for name in names}
    for r in range(warmup + repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sync()
            start = time.perf_counter()
            functions[name]()
            sync()
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: Timing(name, tuple(times[name])) for name in names}


def compare_losses(
    loss: str = "cross_entropy",
    *,
    rows: int,
    classes: int,
    dtype: str = "float32",
    device: str = "cpu",
    repeats: int = 7,
    seed: int = 0,
) -> dict[str, Timing]:
    """Forward plus backward of xentlib's loss and PyTorch's, interleaved.

    ``loss`` is ``"cross_entropy"`` (class-index targets, compared with
    :func:`torch.nn.functional.cross_entropy`) or ``"binary_cross_entropy"``
    (targets in [0, 1] of the same shape as the logits, compared with
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`), both with
    their default options. Returns the :class:`Timing` of ``"xentlib"`` and of
    ``"torch"``. Used by ``benchmarks/cross_entropy.py``.
    """
    from . import losses

    _positive_int(rows, "rows")
    _positive_int(classes, "classes")
    _positive_int(repeats, "repeats")
    _check_seed(seed)
    if loss not in ("cross_entropy", "binary_cross_entropy"):
        raise ValueError(
            "loss must be 'cross_entropy' or 'binary_cross_entropy'; got"
            f" {loss!r}"
        )
    if dtype not in _DTYPES:
        raise ValueError(
            f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}"
        )
    dev, dt = _device(device), _DTYPES[dtype]
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(rows, classes, generator=g)).to(dev, dt)
    x.requires_grad_()
    if loss == "cross_entropy":
        y = torch.randint(0, classes, (rows,), generator=g).to(dev)
        ours, ref = losses.cross_entropy, F.cross_entropy
    else:
        y = torch.rand(rows, classes, generator=g).round().to(dev, dt)
        ours = losses.binary_cross_entropy
        ref = F.binary_cross_entropy_with_logits

    def step(fn):
        def run():
            x.grad = None
            fn(x, y).backward()

        return run

    return time_interleaved(
        {"xentlib": step(ours), "torch": step(ref)},
        repeats=repeats,
        synchronize=(
            (lambda: torch.cuda.synchronize(dev))
            if dev.type == "cuda"
            else None
        ),
    )


@dataclass
class Measurement:
    """One method's forward plus backward at one size.

    ``seconds`` is the median time of the timed rounds, ``seconds_low`` and
    ``seconds_high`` their range; ``peak_bytes`` the peak memory of the first
    pass and ``extra_bytes`` its part above what was held before the pass.
    """

    method: str
    device: str
    seconds: float | None = None
    seconds_low: float | None = None
    seconds_high: float | None = None
    peak_bytes: int | None = None
    extra_bytes: int | None = None
    error: str | None = None


def _split_method(method) -> tuple[str, int | None]:
    """``"xentlib@256"`` -> ``("xentlib", 256)``; a name alone -> chunk None.

    A chunk size after ``@`` picks the chunk of one of xentlib's methods, so
    that one comparison can hold several chunk sizes.
    """
    if not isinstance(method, str):
        return method, None
    name, _, chunk = method.partition("@")
    if not chunk:
        return name, None
    if not name.startswith("xentlib") or not chunk.isdigit() or not int(chunk):
        return method, None  # not a known method: rejected by the caller
    return name, int(chunk)


def _loss_function(method: str, chunk_size: int | None):
    method, chunk = _split_method(method)
    chunk_size = chunk or chunk_size
    if method == "naive":
        return lambda h, w, y: F.cross_entropy(h @ w.T, y)
    if method.startswith("xentlib"):
        from .scale import linear_cross_entropy

        how = {
            "xentlib": "auto",
            "xentlib_recompute": "recompute",
            "xentlib_triton": "triton",
        }[method]
        return lambda h, w, y: linear_cross_entropy(
            h, w, y, chunk_size=chunk_size, method=how
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
    """The methods that can run on ``device``.

    Liger Kernel, Cut Cross-Entropy and the Triton kernel need a CUDA device
    (and the first two their packages).
    """
    found = ["naive", "xentlib", "xentlib_recompute"]
    if _device(device).type == "cuda":
        for method, module in (
            ("xentlib_triton", "triton"),
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
    """Reset this process's peak RSS (VmHWM) to its current RSS.

    Linux 4.0 and later; ignored where not allowed.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    """This process's own peak RSS.

    Not ``ru_maxrss``: Linux carries that over from the parent across fork
    and exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _inputs(tokens, hidden, vocab, dtype, dev, seed):
    """Seeded inputs; the weight is scaled by ``1/sqrt(hidden)``.

    (A trained output layer's weights have about that size.)
    """
    g = torch.Generator().manual_seed(seed)
    dt = _DTYPES[dtype]
    h = torch.randn(tokens, hidden, generator=g).to(dev, dt).requires_grad_()
    w = (torch.randn(vocab, hidden, generator=g) / hidden**0.5).to(dev, dt)
    w.requires_grad_()
    y = torch.randint(0, vocab, (tokens,), generator=g).to(dev)
    return h, w, y


def _one_pass(loss_fn, h, w, y, cuda, dev):
    def run():
        h.grad = w.grad = None
        loss_fn(h, w, y).backward()
        if cuda:
            torch.cuda.synchronize(dev)

    return run


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return value


def _device(device) -> torch.device:
    """A device that exists here (see :func:`xentlib.resolve_device`)."""
    from .runtime import resolve_device

    if not isinstance(device, (str, torch.device)):
        raise ValueError(
            f"device must be a string such as 'cpu' or 'cuda'; got {device!r}"
        )
    return resolve_device(device)


def _check_chunk_size(chunk_size) -> None:
    if chunk_size is not None:
        _positive_int(chunk_size, "chunk_size")


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")


def _check_method(method) -> None:
    if _split_method(method)[0] not in METHODS:
        raise ValueError(
            f"method must be one of {METHODS}, or xentlib's with a chunk size"
            f" ('xentlib@256'); got {method!r}"
        )


def _check_size(tokens, hidden, vocab, dtype, repeats, fewest=1):
    if dtype not in _DTYPES:
        raise ValueError(
            f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}"
        )
    for name, n in (("tokens", tokens), ("hidden", hidden), ("vocab", vocab)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer; got {n!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int):
        raise ValueError(f"repeats must be an integer; got {repeats!r}")
    if repeats < fewest:
        raise ValueError(f"repeats must be at least {fewest}; got {repeats}")


def _error(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"


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
    """Measure one method's memory and time in this process.

    Call it in a fresh process (see :func:`compare_methods`). The first pass
    gives the peak memory; ``repeats`` more passes (none for 0) give the
    median time and its range.
    """
    _check_method(method)
    _check_size(tokens, hidden, vocab, dtype, repeats, fewest=0)
    _check_chunk_size(chunk_size)
    _check_seed(seed)
    dev = _device(device)
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
    h, w, y = _inputs(tokens, hidden, vocab, dtype, dev, seed)
    one_pass = _one_pass(loss_fn, h, w, y, cuda, dev)
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
        if repeats == 0:
            return result
        (t,) = time_interleaved(
            {method: one_pass}, repeats=repeats, warmup=0
        ).values()
        result.seconds, result.seconds_low = t.median, t.low
        result.seconds_high = t.high
    except Exception as err:  # a method that cannot run is reported
        result.error = _error(err)
    return result


def _time_methods(
    methods: list[str],
    tokens: int,
    hidden: int,
    vocab: int,
    dtype: str = "float32",
    device: str = "cpu",
    repeats: int = 10,
    chunk_size: int | None = None,
    seed: int = 0,
) -> dict[str, list[float] | str]:
    """Time every method in this process, interleaved (the timing worker).

    Each method's first pass is a warm-up (compilation, caches); a method
    whose warm-up fails is left out, and so is one whose warm-up took more
    than :data:`TOO_SLOW` times the fastest one's (and over five seconds),
    so that one slow method cannot hold up the others' rounds.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    h, w, y = _inputs(tokens, hidden, vocab, dtype, dev, seed)
    passes, out, warmup = {}, {}, {}
    for method in methods:
        try:
            passes[method] = _one_pass(
                _loss_function(method, chunk_size), h, w, y, cuda, dev
            )
            start = time.perf_counter()
            passes[method]()
            warmup[method] = time.perf_counter() - start
        except Exception as err:
            out[method] = _error(err)
            passes.pop(method, None)
    fastest = min(warmup.values(), default=0.0)
    for method, seconds in warmup.items():
        if seconds > max(5.0, TOO_SLOW * fastest):
            out[method] = (
                f"not timed: its first pass took {seconds:.1f} s, over"
                f" {TOO_SLOW} times the fastest method's"
            )
            passes.pop(method)
    if passes:
        timings = time_interleaved(passes, repeats=repeats, warmup=0)
        out.update({m: list(t.seconds) for m, t in timings.items()})
    return out


def _run_worker(task: str, args: dict, timeout: float):
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "xentlib.benchmark",
                task,
                json.dumps(args),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"worker failed: {tail[:160]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def compare_methods(
    methods: list[str] | None = None,
    *,
    tokens: int,
    hidden: int,
    vocab: int,
    dtype: str = "float32",
    device: str = "cpu",
    repeats: int = 10,
    chunk_size: int | None = None,
    seed: int = 0,
    timeout: float = 3600,
) -> list[Measurement]:
    """Measure each method's memory in a fresh process, then time them all.

    Returns one :class:`Measurement` per method, in the order given (naive
    first by default). Memory comes from the first pass of each method in
    its own process; times from ``repeats`` interleaved rounds in one more
    process, after each method's warm-up pass. Explained in chapter 15.
    """
    methods = (
        list(methods) if methods is not None else available_methods(device)
    )
    if isinstance(methods, str) or not all(
        _split_method(m)[0] in METHODS for m in methods
    ):
        raise ValueError(
            f"methods must be a list of names among {METHODS}, or xentlib's"
            f" with a chunk size ('xentlib@256'); got {methods!r}"
        )
    _check_size(tokens, hidden, vocab, dtype, repeats)
    _check_chunk_size(chunk_size)
    _check_seed(seed)
    _device(device)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not timeout > 0
    ):
        raise ValueError(
            f"timeout must be a positive number of seconds; got {timeout!r}"
        )
    size = dict(
        tokens=tokens,
        hidden=hidden,
        vocab=vocab,
        dtype=dtype,
        device=device,
        chunk_size=chunk_size,
        seed=seed,
    )
    out = []
    for method in methods:
        memory, failure = _run_worker(
            "memory", dict(size, method=method, repeats=0), timeout
        )
        m = (
            Measurement(**memory)
            if memory is not None
            else Measurement(method=method, device=device, error=failure)
        )
        m.seconds = m.seconds_low = m.seconds_high = None
        out.append(m)
    runnable = [m.method for m in out if m.error is None]
    if runnable:
        times, failure = _run_worker(
            "time", dict(size, methods=runnable, repeats=repeats), timeout
        )
        for m in out:
            if m.error is not None:
                continue
            got = failure if times is None else times.get(m.method)
            if isinstance(got, list):
                m.seconds = statistics.median(got)
                m.seconds_low, m.seconds_high = min(got), max(got)
            else:
                m.error = got or "not timed"
    return out


def format_table(measurements: list[Measurement]) -> str:
    """A text table of time and memory, with ratios to the first row.

    Times are the median and the range of the rounds; memory is the peak
    above the inputs, in MiB.
    """
    if (
        not isinstance(measurements, (list, tuple))
        or not measurements
        or not all(isinstance(m, Measurement) for m in measurements)
    ):
        raise ValueError(
            "measurements must be a non-empty list of Measurement; got"
            f" {measurements!r}"
        )
    base = measurements[0]

    def ratio(a, b):
        return f"{a / b:.2f}x" if a is not None and b else "-"

    lines = [
        f"{'method':<17} {'time (ms)':>9} {'min-max (ms)':>15} {'x naive':>7}"
        f" {'above inputs (MiB)':>18} {'x naive':>7}"
    ]
    for m in measurements:
        if m.error:
            lines.append(f"{m.method:<17} {m.error}")
            continue
        spread = f"{m.seconds_low * 1e3:.0f}-{m.seconds_high * 1e3:.0f}"
        lines.append(
            f"{m.method:<17} {m.seconds * 1e3:>9.1f} {spread:>15}"
            f" {ratio(m.seconds, base.seconds):>7}"
            f" {m.extra_bytes / 2**20:>18.0f}"
            f" {ratio(m.extra_bytes, base.extra_bytes):>7}"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # the worker processes of compare_methods
    task, args = sys.argv[1], json.loads(sys.argv[2])
    if task == "memory":
        print(json.dumps(asdict(measure(**args))))
    else:
        print(json.dumps(_time_methods(**args)))

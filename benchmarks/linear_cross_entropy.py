"""Benchmark an LM output layer plus cross-entropy: naive vs xentlib's chunked loss (and Liger, CCE where installed).

    python benchmarks/linear_cross_entropy.py                 # the default size for this machine's device
    python benchmarks/linear_cross_entropy.py --device cuda   # 8,192 tokens, hidden 4,096, vocabulary 128,256, bfloat16
    python benchmarks/linear_cross_entropy.py --smoke         # a tiny size that checks the script runs

The GPU default is the shape Liger Kernel's and Cut Cross-Entropy's own benchmarks use (a Llama 3 output layer).
Each method runs in a fresh process; see xentlib.benchmark for what is measured. Goals on a GPU: the chunked loss's
peak memory at most a quarter of the naive one's and its time at most 1.3x.
"""

from __future__ import annotations

import argparse
import platform

import torch

from xentlib.benchmark import (
    METHODS,
    available_methods,
    compare_methods,
    format_table,
)

GPU_SIZE = dict(tokens=8192, hidden=4096, vocab=128256, dtype="bfloat16")
CPU_SIZE = dict(tokens=4096, hidden=512, vocab=32768, dtype="float32")
SMOKE_SIZE = dict(tokens=64, hidden=16, vocab=1000, dtype="float32")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda or auto (default: cuda when available)",
    )
    parser.add_argument("--tokens", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--vocab", type=int)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="tokens per chunk of xentlib's loss",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", nargs="+", choices=METHODS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny size, to check that everything runs",
    )
    args = parser.parse_args(argv)

    device = (
        ("cuda" if torch.cuda.is_available() else "cpu")
        if args.device == "auto"
        else args.device
    )
    size = dict(
        SMOKE_SIZE
        if args.smoke
        else GPU_SIZE
        if device.startswith("cuda")
        else CPU_SIZE
    )
    for key in ("tokens", "hidden", "vocab", "dtype"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    methods = args.methods or available_methods(device)
    where = (
        torch.cuda.get_device_name(device)
        if device.startswith("cuda")
        else (
            f"CPU ({platform.processor() or platform.machine()},"
            f" {torch.get_num_threads()} threads)"
        )
    )
    print(f"{where}; torch {torch.__version__}")
    print(
        f"{size['tokens']} tokens, hidden {size['hidden']}, vocabulary"
        f" {size['vocab']}, {size['dtype']}, forward + backward, median of"
        f" {args.repeats}"
    )
    rows = compare_methods(
        methods,
        device=device,
        repeats=args.repeats,
        chunk_size=args.chunk_size,
        **size,
    )
    print(format_table(rows))
    return (
        1
        if any(r.error and r.method in ("naive", "xentlib") for r in rows)
        else 0
    )


if __name__ == "__main__":
    raise SystemExit(main())

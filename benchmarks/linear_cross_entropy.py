"""Benchmark an LM output layer plus cross-entropy: naive, xentlib, Liger, CCE.

    python benchmarks/linear_cross_entropy.py                # device's size
    python benchmarks/linear_cross_entropy.py --device cuda  # the Llama 3 size
    python benchmarks/linear_cross_entropy.py --smoke        # a tiny size

On a CPU the default size is 4,096 tokens, hidden size 512 and a vocabulary
of 32,768 in float32; on a GPU it is the output layer of Llama 3 (8,192
tokens, hidden size 4,096, vocabulary 128,256, bfloat16), the shape Liger
Kernel's and Cut Cross-Entropy's own benchmarks use. It compares the naive
loss with xentlib's chunked loss (gradients in the forward pass, and the
recomputing variant), and on a GPU with xentlib's Triton kernel and Liger
Kernel and Cut Cross-Entropy where installed. Memory is measured in a fresh
process per method, times in one more process, interleaved; see
xentlib.benchmark. The table gives the median time with the range over the
rounds, and the peak memory above the inputs.

Goals: on this CPU, the default chunked loss at most 1.0x the naive time and
1/10 of its memory above the inputs; on a GPU, at most 1.3x and 1/4, and the
Triton kernel at most Liger's time and 1/20 of the naive memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import asdict

import torch

from xentlib.benchmark import (
    METHODS,
    SIZES,
    available_methods,
    compare_methods,
    format_table,
)

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
        help="tokens per chunk of xentlib's loss (default: its own)",
    )
    parser.add_argument(
        "--repeats", type=int, default=10, help="interleaved timed rounds"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        help=f"among {', '.join(METHODS)}; xentlib's with a chunk size:"
        " xentlib@256",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny size, to check that everything runs",
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    device = (
        ("cuda" if torch.cuda.is_available() else "cpu")
        if args.device == "auto"
        else args.device
    )
    cuda = device.startswith("cuda")
    size = dict(
        SMOKE_SIZE if args.smoke else SIZES["llama3"] if cuda else SIZES["cpu"]
    )
    for key in ("tokens", "hidden", "vocab", "dtype"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    methods = args.methods or available_methods(device)
    if cuda:
        where = (
            f"{torch.cuda.get_device_name(device)}; CUDA {torch.version.cuda}"
        )
    else:
        where = (
            f"CPU ({platform.processor() or platform.machine()},"
            f" {torch.get_num_threads()} threads)"
        )
    print(f"{where}; torch {torch.__version__}")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average before the run: {load}")
    print(
        f"{size['tokens']} tokens, hidden {size['hidden']}, vocabulary"
        f" {size['vocab']}, {size['dtype']}; forward + backward, median and"
        f" range of {args.repeats} interleaved rounds"
    )
    rows = compare_methods(
        methods,
        device=device,
        repeats=args.repeats,
        chunk_size=args.chunk_size,
        **size,
    )
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                dict(
                    where=where,
                    torch=torch.__version__,
                    size=size,
                    repeats=args.repeats,
                    chunk_size=args.chunk_size,
                    results=[asdict(r) for r in rows],
                ),
                f,
                indent=1,
            )
    return (
        1
        if any(r.error and r.method in ("naive", "xentlib") for r in rows)
        else 0
    )


if __name__ == "__main__":
    raise SystemExit(main())

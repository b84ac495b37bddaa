"""Benchmark xentlib's losses against PyTorch's: forward plus backward.

    python benchmarks/cross_entropy.py                # float32 and bfloat16
    python benchmarks/cross_entropy.py --device cuda  # the same on a GPU
    python benchmarks/cross_entropy.py --smoke        # a check that it runs

Compares ``xentlib.cross_entropy`` with ``torch.nn.functional.cross_entropy``
(class-index targets) and ``xentlib.binary_cross_entropy`` with
``torch.nn.functional.binary_cross_entropy_with_logits``, at rows x classes
shapes from many rows and few classes to a language model's vocabulary. The
two run interleaved, round by round (see ``xentlib.benchmark``); the table
gives the median time of each and the ratio of the medians, with the range of
the ratio over the rounds. The goal is a ratio of at most 1.2.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from xentlib.benchmark import LOSS_SHAPES, compare_losses

SMOKE_SHAPES = ((64, 10), (16, 300))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda or auto (default: cuda when available)",
    )
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument(
        "--losses",
        nargs="+",
        default=["cross_entropy", "binary_cross_entropy"],
        choices=["cross_entropy", "binary_cross_entropy"],
    )
    parser.add_argument(
        "--repeats", type=int, default=7, help="interleaved rounds"
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        metavar="ROWSxCLASSES",
        help="for example 4096x1000 (default: the four standard shapes)",
    )
    parser.add_argument(
        "--threads", type=int, help="CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny shapes, two rounds"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = (
        ("cuda" if torch.cuda.is_available() else "cpu")
        if args.device == "auto"
        else args.device
    )
    if args.smoke:
        shapes, repeats = SMOKE_SHAPES, 2
    else:
        shapes, repeats = LOSS_SHAPES, args.repeats
    if args.shapes:
        shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes]
    where = (
        torch.cuda.get_device_name(device)
        if device.startswith("cuda")
        else (
            f"CPU ({platform.processor() or platform.machine()},"
            f" {torch.get_num_threads()} threads)"
        )
    )
    print(f"{where}; torch {torch.__version__}")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average before the run: {load}")
    print(
        f"forward + backward, median of {repeats} interleaved rounds;"
        " ratio = xentlib / torch"
    )
    header = (
        f"{'loss':<21} {'rows x classes':>15} {'dtype':>9}"
        f" {'xentlib ms':>10} {'torch ms':>9} {'ratio':>6} {'range':>11}"
    )
    print(header)
    worst = 0.0
    for loss in args.losses:
        for rows, classes in shapes:
            for dtype in args.dtypes:
                t = compare_losses(
                    loss,
                    rows=rows,
                    classes=classes,
                    dtype=dtype,
                    device=device,
                    repeats=repeats,
                )
                ours, ref = t["xentlib"], t["torch"]
                ratios = [a / b for a, b in zip(ours.seconds, ref.seconds)]
                ratio = ours.median / ref.median
                worst = max(worst, ratio)
                print(
                    f"{loss:<21} {f'{rows} x {classes}':>15} {dtype:>9}"
                    f" {ours.median * 1e3:>10.2f} {ref.median * 1e3:>9.2f}"
                    f" {ratio:>5.2f}x"
                    f" {min(ratios):>5.2f}-{max(ratios):<5.2f}"
                )
    print(f"largest ratio of medians: {worst:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

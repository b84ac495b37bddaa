"""Rows for xentlib.scale and xentlib.benchmark: the chunked and the
vocabulary-parallel cross-entropy, and their measurement (chapter 15)."""

import math
import tempfile

import torch
import torch.distributed as dist

from xentlib import benchmark, scale

from . import (
    Arg,
    Row,
    callable_,
    choice,
    class_index,
    device,
    nonneg_int,
    positive_int,
    tensor,
)

_g = torch.Generator().manual_seed(0)
_h = torch.randn(4, 5, generator=_g)
_w = torch.randn(7, 5, generator=_g)
_b = torch.randn(7, generator=_g)
_y = torch.tensor([0, 1, 6, 2])


def _integer(good):
    yield from (("1.5", 1.5), ("a string", "-100"), ("None", None))


def _optional_positive_int(good):
    yield from (("0", 0), ("-1", -1), ("2.5", 2.5), ("True", True))


def _in_one_process_group(func):
    """Call ``func`` inside a torch.distributed group of one process."""

    def call(*args, **kwargs):
        with tempfile.TemporaryDirectory() as tmp:
            dist.init_process_group(
                "gloo", init_method=f"file://{tmp}/init", rank=0, world_size=1
            )
            try:
                return func(*args, **kwargs)
            finally:
                dist.destroy_process_group()

    return call


def _measurements(good):
    yield from (("empty", []), ("None", None), ("numbers", [1.0]))


ROWS = [
    Row(
        "xentlib.scale.linear_cross_entropy",
        scale.linear_cross_entropy,
        {
            # the rows of weight are the vocabulary: fewer rows are a
            # smaller vocabulary, which the targets must fit
            "hidden": Arg(_h, (tensor(),)),
            "weight": Arg(_w, (tensor(rows=False),)),
            "target": Arg(
                _y,
                (class_index(7), tensor(nan=False, inf=False, neg_inf=False)),
            ),
            "bias": Arg(_b, (tensor(),)),
            "ignore_index": Arg(-100, (_integer,)),
            "reduction": Arg("mean", (choice,)),
            "chunk_size": Arg(2, (_optional_positive_int,)),
            "method": Arg("auto", (choice,)),
        },
    ),
    Row(
        "xentlib.scale.vocab_parallel_cross_entropy",
        _in_one_process_group(scale.vocab_parallel_cross_entropy),
        {
            # -inf masks a token; NaN and +inf are rejected
            "logits": Arg(_h @ _w.T, (tensor(neg_inf=False),)),
            "target": Arg(
                _y,
                (class_index(7), tensor(nan=False, inf=False, neg_inf=False)),
            ),
            "vocab_start": Arg(0, (nonneg_int,)),
            "ignore_index": Arg(-100, (_integer,)),
            "reduction": Arg("none", (choice,)),
        },
    ),
    Row(
        "xentlib.scale.vocab_parallel_linear_cross_entropy",
        _in_one_process_group(scale.vocab_parallel_linear_cross_entropy),
        {
            "hidden": Arg(_h, (tensor(),)),
            "weight_slice": Arg(_w, (tensor(rows=False),)),
            "target": Arg(_y, (class_index(7),)),
            "vocab_start": Arg(0, (nonneg_int,)),
            "reduction": Arg("sum", (choice,)),
        },
    ),
    Row(
        "xentlib.scale.vocab_slices",
        scale.vocab_slices,
        {
            "vocab_size": Arg(10, (positive_int,)),
            "world_size": Arg(3, (positive_int,)),
        },
    ),
    Row(
        "xentlib.scale.vocab_parallel_agreement",
        scale.vocab_parallel_agreement,
        {
            "world_size": Arg(1, (positive_int,)),
            "tokens": Arg(4, (positive_int,)),
            "hidden": Arg(3, (positive_int,)),
            "vocab": Arg(10, (positive_int,)),
            "seed": Arg(0, (nonneg_int,)),
        },
    ),
    Row(
        "xentlib.benchmark.time_interleaved",
        benchmark.time_interleaved,
        {
            "functions": Arg(
                {"a": lambda: None},
                (lambda g: [("empty", {}), ("not callable", {"a": 3})],),
            ),
            "repeats": Arg(2, (positive_int,)),
            "warmup": Arg(0, (nonneg_int,)),
            "synchronize": Arg(None, (callable_,)),
        },
    ),
    Row(
        "xentlib.benchmark.compare_losses",
        benchmark.compare_losses,
        {
            "loss": Arg("binary_cross_entropy", (choice,)),
            "rows": Arg(4, (positive_int,)),
            "classes": Arg(3, (positive_int,)),
            "dtype": Arg("float32", (choice,)),
            "device": Arg("cpu", (device,)),
            "repeats": Arg(1, (positive_int,)),
            "seed": Arg(0, (nonneg_int,)),
        },
    ),
    Row(
        "xentlib.benchmark.measure",
        benchmark.measure,
        {
            "method": Arg("xentlib", (choice,)),
            "tokens": Arg(8, (positive_int,)),
            "hidden": Arg(4, (positive_int,)),
            "vocab": Arg(16, (positive_int,)),
            "dtype": Arg("float32", (choice,)),
            "device": Arg("cpu", (device,)),
            "repeats": Arg(1, (nonneg_int,)),
            "chunk_size": Arg(4, (_optional_positive_int,)),
            "seed": Arg(0, (nonneg_int,)),
        },
    ),
    Row(
        "xentlib.benchmark.compare_methods",
        benchmark.compare_methods,
        {
            "methods": Arg(
                ["naive"],
                (lambda g: [("unknown", ["fast"]), ("a string", "naive")],),
            ),
            "tokens": Arg(8, (positive_int,)),
            "hidden": Arg(4, (positive_int,)),
            "vocab": Arg(16, (positive_int,)),
            "dtype": Arg("float32", (choice,)),
            "device": Arg("cpu", (device,)),
            "repeats": Arg(1, (positive_int,)),
            "chunk_size": Arg(None, (_optional_positive_int,)),
            "seed": Arg(0, (nonneg_int,)),
            "timeout": Arg(
                300.0,
                (
                    lambda g: [
                        ("0", 0.0),
                        ("NaN", math.nan),
                        ("a string", "1"),
                    ],
                ),
            ),
        },
    ),
    Row(
        "xentlib.benchmark.format_table",
        benchmark.format_table,
        {
            "measurements": Arg(
                [benchmark.Measurement("naive", "cpu", 1.0, 1.0, 1.0, 10, 5)],
                (_measurements,),
            )
        },
    ),
    Row(
        "xentlib.benchmark.available_methods",
        benchmark.available_methods,
        {"device": Arg("cpu", (device,))},
    ),
]

EXEMPT = {
    "xentlib.benchmark.Measurement": "a result record that measure() builds",
    "xentlib.benchmark.Timing": "a result record that time_interleaved()"
    " builds",
}

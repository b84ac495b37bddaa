"""Rows for xentlib.structured (chapter 7): the chains, the window model,
the JS penalty, the CRF, the measures and Viterbi decoding."""

import torch

from xentlib import structured
from xentlib.structured import PAD, SegmentModel, WindowModel
from xentlib.training import TrainConfig

from . import (
    Arg,
    Row,
    choice,
    class_index,
    nonneg_int,
    nonneg_real,
    positive_int,
    rng,
    tensor,
)

_g = torch.Generator().manual_seed(0)
_scores = torch.randn(2, 3, 6, generator=_g)
_states = torch.tensor([[0, 0, 1, 1, 2, 2], [2, 2, 0, 0, PAD, PAD]])
_residues = torch.tensor([[0, 5, 19, 3, 3, 7], [1, 2, 3, 4, PAD, PAD]])
_mask = _states != PAD
_square = torch.zeros(3, 3)
_start = torch.zeros(3)
_config = TrainConfig(epochs=1, lr=0.01, batch_size=2)


def _square_kind(good):
    yield "a string", "not a tensor"
    yield "the wrong shape", torch.zeros(2, 2)
    yield "NaN", torch.full((3, 3), float("nan"))
    yield "+inf", torch.full((3, 3), float("inf"))


def _start_kind(good):
    yield "a string", "not a tensor"
    yield "the wrong shape", torch.zeros(2)
    yield "NaN", torch.full((3,), float("nan"))


def _mask_kind(good):
    yield "not boolean", good.long()
    yield "the wrong shape", good[:, :-1]
    yield "a gap inside a chain", torch.tensor([[True, False] * 3] * 2)


def _states_kind(good):
    """Bad state labels (PAD is allowed after a chain's end)."""
    yield "state 99", torch.where(good == 0, 99, good)
    yield "state -1", torch.where(good == 0, -1, good)
    yield "floating-point states", good.double().clamp_min(0)[:, None]
    yield "a string", "HHEC"
    yield "PAD inside a chain", torch.tensor([[0, PAD, 1, 1, 2, 2]] * 2)


def _residues_kind(good):
    yield "amino acid 20", torch.where(good == 0, 20, good)
    yield "amino acid -1", torch.where(good == 0, -1, good)
    yield "floating-point residues", good.double()
    yield "a string", "MKV"


def _scores_kind(good):
    yield "a string", "not a tensor"
    yield "one dimension less", good.sum(0).sum(0)
    yield "NaN", torch.full_like(good, float("nan"))
    yield "+inf", torch.full_like(good, float("inf"))
    yield "integers", good.long()


def _lengths(good):
    yield from (("(0, 5)", (0, 5)), ("(6, 4)", (6, 4)), ("2.5", 2.5))


def _model(good):
    yield "not a SegmentModel", "default"


def _segment_model(**kwargs):
    return SegmentModel(**kwargs)


def _forward(residues):
    return WindowModel(window=1)(residues)


_pair = {
    "prediction": Arg(_states, (_states_kind,)),
    "target": Arg(_states, (_states_kind, tensor(nan=False))),
}

_crf = {
    "scores": Arg(_scores, (_scores_kind,)),
    "transitions": Arg(_square, (_square_kind,)),
    "start": Arg(_start, (_start_kind,)),
}

ROWS = [
    Row(
        "xentlib.structured.SegmentModel",
        _segment_model,
        {
            "helix_lengths": Arg((8, 20), (_lengths,)),
            "coil_mean": Arg(6.0, (lambda g: [("outside", 40.0)],)),
            "helix_fraction": Arg(0.5, (lambda g: [("1.5", 1.5)],)),
            "sharpness": Arg(1.0, (nonneg_real,)),
        },
    ),
    Row(
        "xentlib.structured.sample_chains",
        structured.sample_chains,
        {
            "n_chains": Arg(3, (positive_int,)),
            "length": Arg(20, (positive_int,)),
            "model": Arg(None, (_model,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.structured.WindowModel",
        WindowModel,
        {
            "window": Arg(2, (nonneg_int,)),
            "hidden": Arg(0, (nonneg_int,)),
            "n_states": Arg(3, (positive_int,)),
        },
    ),
    Row(
        "xentlib.structured.WindowModel",
        _forward,
        {"residues": Arg(_residues, (_residues_kind,))},
        note="forward",
    ),
    Row(
        "xentlib.structured.ChainCRF",
        structured.ChainCRF,
        {
            "window": Arg(2, (nonneg_int,)),
            "hidden": Arg(0, (nonneg_int,)),
            "n_states": Arg(3, (positive_int,)),
        },
    ),
    Row(
        "xentlib.structured.js_smoothness_penalty",
        structured.js_smoothness_penalty,
        {
            "input": Arg(_scores, (_scores_kind,)),
            "reduction": Arg("mean", (choice,)),
            "mask": Arg(_mask, (_mask_kind,)),
        },
    ),
    Row(
        "xentlib.structured.js_penalized_cross_entropy",
        structured.js_penalized_cross_entropy,
        {
            "input": Arg(_scores, (_scores_kind,)),
            "target": Arg(_states, (_states_kind, tensor(nan=False))),
            "js_weight": Arg(1.0, (nonneg_real,)),
        },
    ),
    Row(
        "xentlib.structured.crf_log_partition",
        structured.crf_log_partition,
        {**_crf, "mask": Arg(_mask, (_mask_kind,))},
    ),
    Row(
        "xentlib.structured.crf_marginals",
        structured.crf_marginals,
        {**_crf, "mask": Arg(_mask, (_mask_kind,))},
    ),
    Row(
        "xentlib.structured.crf_path_score",
        structured.crf_path_score,
        {
            **_crf,
            "target": Arg(_states, (_states_kind, tensor(nan=False))),
        },
    ),
    Row(
        "xentlib.structured.crf_cross_entropy",
        structured.crf_cross_entropy,
        {
            **_crf,
            "target": Arg(_states, (_states_kind, tensor(nan=False))),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.structured.fit_window_model",
        structured.fit_window_model,
        {
            "residues": Arg(_residues, (_residues_kind,)),
            "states": Arg(_states, (_states_kind,)),
            "window": Arg(1, (nonneg_int,)),
            "hidden": Arg(0, (nonneg_int,)),
            "js_weight": Arg(0.5, (nonneg_real,)),
            "config": Arg(_config, (lambda g: [("a dict", {})],)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.structured.fit_crf",
        structured.fit_crf,
        {
            "residues": Arg(_residues, (_residues_kind,)),
            "states": Arg(_states, (_states_kind,)),
            "window": Arg(1, (nonneg_int,)),
            "hidden": Arg(0, (nonneg_int,)),
            "config": Arg(_config, (lambda g: [("a dict", {})],)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.structured.q3_accuracy",
        structured.q3_accuracy,
        _pair,
    ),
    Row(
        "xentlib.structured.fragmentation",
        structured.fragmentation,
        _pair,
    ),
    Row(
        "xentlib.structured.count_segments",
        structured.count_segments,
        {"states": Arg(_states, (_states_kind,))},
    ),
    Row(
        "xentlib.structured.segment_lengths",
        structured.segment_lengths,
        {
            "states": Arg(_states, (_states_kind,)),
            "state": Arg(1, (lambda g: [("3", 3), ("-1", -1), ("1.0", 1.0)],)),
        },
    ),
    Row(
        "xentlib.structured.transition_log_probs",
        structured.transition_log_probs,
        {
            "states": Arg(_states, (_states_kind, class_index(3, False))),
            "n_states": Arg(3, (positive_int,)),
            "pseudocount": Arg(1.0, (nonneg_real,)),
        },
    ),
    Row(
        "xentlib.structured.viterbi_decode",
        structured.viterbi_decode,
        {
            "scores": Arg(_scores, (_scores_kind,)),
            "log_transitions": Arg(_square, (_square_kind,)),
            "log_initial": Arg(_start, (_start_kind,)),
            "mask": Arg(_mask, (_mask_kind,)),
        },
    ),
]

EXEMPT = {
    "xentlib.structured.ProteinChains": (
        "a data record that load_dssp_chains builds"
    ),
    "xentlib.structured.WindowFit": "a result record of fit_window_model",
    "xentlib.structured.CRFFit": "a result record of fit_crf",
    "xentlib.structured.load_dssp_chains": "takes no arguments",
}

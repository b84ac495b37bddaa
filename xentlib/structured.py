"""Structured predictions along a sequence: protein secondary structure.

Introduced in chapter 7. A protein chain is a sequence of residues (20 amino
acids) and each residue sits in one of three secondary-structure states:
helix (H), strand (E) or coil (C). The states come in contiguous segments,
so a prediction made residue by residue, with a cross-entropy per residue,
can be right on most residues and still break one helix into several
pieces. This module holds what the chapter needs to show that and to repair
it:

* real chains: :func:`load_dssp_chains` reads 50 protein chains with the
  states DSSP assigns to their residues (``data/dssp_chains.md``);
  :class:`SegmentModel` and :func:`sample_chains` draw simulated ones;
* a **window model** (:class:`WindowModel`) that predicts each residue's
  state from the residues within ``+-w`` positions, trained by
  :func:`fit_window_model`;
* the **Jensen-Shannon smoothness penalty** (:func:`js_smoothness_penalty`)
  between neighbouring residues' predicted distributions;
* the **linear-chain CRF** (:class:`ChainCRF`, :func:`fit_crf`): the
  cross-entropy of the whole state sequence (:func:`crf_cross_entropy`),
  computed with the forward algorithm (:func:`crf_log_partition`), and its
  per-residue marginals (:func:`crf_marginals`);
* the measures: :func:`q3_accuracy`, :func:`count_segments`,
  :func:`segment_lengths` and :func:`fragmentation` (predicted segments per
  true segment);
* a **Viterbi decoder** (:func:`viterbi_decode`) and the transition matrix
  it needs (:func:`transition_log_probs`).

Tensors along a sequence follow :func:`torch.nn.functional.cross_entropy`:
scores or logits have shape ``(N, C, L)`` (chains, states, positions) and
residues and states have shape ``(N, L)``. Chains of different lengths are
padded at their end with :data:`PAD` (cross-entropy's ``ignore_index``) in
both residues and states; functions that see only scores take a boolean
``mask`` of shape ``(N, L)``, True on the chains' positions.
"""

from __future__ import annotations

import csv
import gzip
import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_logits, check_reduction, reduce_rows
from .datasets import data_path
from .losses import cross_entropy
from .runtime import as_generator
from .training import History, TrainConfig, fit

__all__ = [
    "AMINO_ACIDS",
    "CHOU_FASMAN",
    "PAD",
    "STATES",
    "CRFFit",
    "ChainCRF",
    "ProteinChains",
    "SegmentModel",
    "WindowFit",
    "WindowModel",
    "count_segments",
    "crf_cross_entropy",
    "crf_log_partition",
    "crf_marginals",
    "crf_path_score",
    "fit_crf",
    "fit_window_model",
    "fragmentation",
    "js_penalized_cross_entropy",
    "js_smoothness_penalty",
    "load_dssp_chains",
    "q3_accuracy",
    "sample_chains",
    "segment_lengths",
    "transition_log_probs",
    "viterbi_decode",
]

#: The three secondary-structure states, in the order of the class indices.
STATES = ("H", "E", "C")
#: The 20 amino acids in one-letter code, in the order of residue indices.
AMINO_ACIDS = "ARNDCQEGHILKMFPSTWYV"
#: Marks the positions after a chain's end, in residues and in states; it
#: is the ``ignore_index`` of :func:`xentlib.cross_entropy`.
PAD = -100

#: Chou-Fasman conformational parameters (times 100) for helix, strand and
#: turn, one row per amino acid in the order of :data:`AMINO_ACIDS`. A value
#: above 100 means the residue is found in that state more often than on
#: average.
CHOU_FASMAN = torch.tensor(
    [
        [142, 83, 66],  # A
        [98, 93, 95],  # R
        [67, 89, 156],  # N
        [101, 54, 146],  # D
        [70, 119, 119],  # C
        [111, 110, 98],  # Q
        [151, 37, 74],  # E
        [57, 75, 156],  # G
        [100, 87, 95],  # H
        [108, 160, 47],  # I
        [121, 130, 59],  # L
        [114, 74, 101],  # K
        [145, 105, 60],  # M
        [113, 138, 60],  # F
        [57, 55, 152],  # P
        [77, 75, 143],  # S
        [83, 119, 96],  # T
        [108, 137, 96],  # W
        [69, 147, 114],  # Y
        [106, 170, 50],  # V
    ],
    dtype=torch.float64,
)


# ------------------------------------------------------------------ checks


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(value, name: str, low: int) -> int:
    if not _is_int(value) or value < low:
        kind = {0: "a non-negative integer", 1: "a positive integer"}
        raise ValueError(
            f"{name} must be {kind.get(low, f'an integer >= {low}')}; got"
            f" {value!r}"
        )
    return int(value)


def _check_index_tensor(x, name: str, n_values: int, what: str):
    """Long indices ``(L,)`` or ``(N, L)`` in ``[0, n_values - 1]`` or
    :data:`PAD` after each row's end; returned as ``(N, L)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of {what}; got {type(x).__name__}"
        )
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer {what}; got dtype {x.dtype}"
        )
    if x.dim() not in (1, 2):
        raise ValueError(
            f"{name} must have shape (L,) or (N, L); got {tuple(x.shape)}"
        )
    x = x if x.dim() == 2 else x.unsqueeze(0)
    real = x != PAD
    bad = real & ((x < 0) | (x >= n_values))
    if bool(bad.any()):
        raise ValueError(
            f"{name} must hold {what} in [0, {n_values - 1}] (or PAD ="
            f" {PAD} after a chain's end); got {int(x[bad][0])}"
        )
    if x.shape[1] > 1 and bool((real[:, 1:] & ~real[:, :-1]).any()):
        raise ValueError(
            f"{name} may hold PAD only after a chain's end; found a value"
            " after PAD"
        )
    return x


def _check_mask(mask, shape: tuple[int, int], name: str = "mask"):
    """A boolean ``(N, L)`` mask, True on each chain's positions (a prefix
    of at least one position); None means every position."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = (
            f"dtype {mask.dtype}"
            if isinstance(mask, torch.Tensor)
            else type(mask).__name__
        )
        raise ValueError(f"{name} must be a boolean torch.Tensor; got {got}")
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    if tuple(mask.shape) != shape:
        raise ValueError(
            f"{name} must have shape {shape}, one entry per position; got"
            f" {tuple(mask.shape)}"
        )
    if shape[1] and not bool(mask[:, 0].all()):
        raise ValueError(f"{name} must be True at the first position")
    if shape[1] > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError(
            f"{name} must be True on a prefix of each row (the chain) and"
            " False after its end"
        )
    return mask


def _sequence_logits(input, name: str = "input") -> torch.Tensor:
    if not isinstance(input, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of logits; got"
            f" {type(input).__name__}"
        )
    if input.dim() not in (2, 3):
        raise ValueError(
            f"{name} must have shape (C, L) or (N, C, L); got"
            f" {tuple(input.shape)}"
        )
    check_logits(input, name)
    z = input if input.dim() == 3 else input.unsqueeze(0)
    if z.shape[1] == 0:
        raise ValueError(f"{name} must have at least one state; got C = 0")
    return z


def _check_square(x, name: str, c: int, ref: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != (c, c):
        got = (
            tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        )
        raise ValueError(
            f"{name} must be a tensor of shape ({c}, {c}); got {got}"
        )
    check_logits(x, name)
    return x.to(device=ref.device, dtype=ref.dtype)


def _check_start(x, name: str, c: int, ref: torch.Tensor) -> torch.Tensor:
    if x is None:
        return torch.zeros(c, dtype=ref.dtype, device=ref.device)
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != (c,):
        got = (
            tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        )
        raise ValueError(f"{name} must be a tensor of shape ({c},); got {got}")
    check_logits(x, name)
    return x.to(device=ref.device, dtype=ref.dtype)


# -------------------------------------------------------------------- data


@dataclass(frozen=True)
class ProteinChains:
    """Protein chains and their secondary-structure states, padded to one
    length.

    Attributes
    ----------
    names : tuple of str
        One name per chain (for the DSSP chains, PDB code and chain letter).
    residues : torch.Tensor, shape ``(N, L)``, long
        Amino-acid indices into :data:`AMINO_ACIDS`, :data:`PAD` after each
        chain's end.
    states : torch.Tensor, shape ``(N, L)``, long
        State indices into :data:`STATES`, :data:`PAD` after each chain's
        end.
    """

    names: tuple[str, ...]
    residues: torch.Tensor
    states: torch.Tensor

    def __len__(self) -> int:
        return len(self.names)

    @property
    def lengths(self) -> torch.Tensor:
        """The number of residues of each chain, shape ``(N,)``."""
        return (self.states != PAD).sum(1)

    def select(self, index) -> ProteinChains:
        """The chains at ``index`` (a list or tensor of row indices),
        padded to the longest of them."""
        index = torch.as_tensor(index, dtype=torch.long)
        if index.dim() != 1 or index.numel() == 0:
            raise ValueError(
                "index must be a non-empty list of chain indices; got shape"
                f" {tuple(index.shape)}"
            )
        if bool(((index < 0) | (index >= len(self))).any()):
            raise ValueError(
                f"index must hold chain indices in [0, {len(self) - 1}]"
            )
        width = int(self.lengths[index].max())
        return ProteinChains(
            names=tuple(self.names[i] for i in index.tolist()),
            residues=self.residues[index, :width],
            states=self.states[index, :width],
        )


def _pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def load_dssp_chains() -> ProteinChains:
    """Read 50 protein chains and the DSSP states of their residues.

    The chains are single chains from the Protein Data Bank, 79 to 173
    residues long (6,860 in all), shipped with the MDAnalysis test suite
    together with the three-state assignment that DSSP (Kabsch and Sander
    1983) gives their residues: helix (H), strand (E) and everything else
    (C). See ``data/dssp_chains.md`` for their source, licence and the
    script that made the file.

    Introduced in chapter 7.

    Returns
    -------
    ProteinChains
        In the order of the file (by PDB code).
    """
    with gzip.open(data_path("dssp_chains.csv.gz"), "rt") as handle:
        rows = list(csv.DictReader(handle))
    return ProteinChains(
        names=tuple(r["chain"] for r in rows),
        residues=_pad(
            [[AMINO_ACIDS.index(a) for a in r["sequence"]] for r in rows]
        ),
        states=_pad([[STATES.index(s) for s in r["states"]] for r in rows]),
    )


@dataclass(frozen=True)
class SegmentModel:
    """A semi-Markov generator of simulated secondary-structure chains.

    A chain alternates between coil segments and ordered segments; each
    ordered segment is a helix with probability ``helix_fraction`` and a
    strand otherwise. A segment's length is ``lo + Binomial(hi - lo, p)``
    for the state's range ``(lo, hi)``, with ``p`` chosen so that the mean
    is the state's ``mean``. Given its state, each residue is drawn
    independently with probabilities proportional to the Chou-Fasman
    parameter of that state raised to the power ``sharpness`` (coil uses the
    turn parameters). Real sequences have correlations between residues
    that this model leaves out; it serves to test decoders on chains whose
    truth is known (chapter 7's exercises).

    Attributes
    ----------
    helix_lengths, strand_lengths, coil_lengths : (int, int)
        Smallest and largest segment length of each state.
    helix_mean, strand_mean, coil_mean : float
        Mean segment length of each state (inside its range).
    helix_fraction : float
        Probability that an ordered segment is a helix rather than a strand.
    sharpness : float
        Exponent applied to the propensities; 0 makes residues carry no
        information about their state, larger values make them more telling.
    """

    helix_lengths: tuple[int, int] = (8, 20)
    strand_lengths: tuple[int, int] = (4, 10)
    coil_lengths: tuple[int, int] = (3, 12)
    helix_mean: float = 12.0
    strand_mean: float = 6.0
    coil_mean: float = 6.0
    helix_fraction: float = 0.55
    sharpness: float = 1.0

    def __post_init__(self):
        for name in ("helix", "strand", "coil"):
            lengths = getattr(self, f"{name}_lengths")
            mean = getattr(self, f"{name}_mean")
            if (
                not isinstance(lengths, tuple)
                or len(lengths) != 2
                or not all(_is_int(v) for v in lengths)
                or not 1 <= lengths[0] <= lengths[1]
            ):
                raise ValueError(
                    f"{name}_lengths must be integers 1 <= lo <= hi; got"
                    f" {lengths!r}"
                )
            if not _is_real(mean) or not lengths[0] <= mean <= lengths[1]:
                raise ValueError(
                    f"{name}_mean must lie in {name}_lengths {lengths}; got"
                    f" {mean!r}"
                )
        if not _is_real(self.helix_fraction) or not (
            0.0 <= self.helix_fraction <= 1.0
        ):
            raise ValueError(
                "helix_fraction must be in [0, 1]; got"
                f" {self.helix_fraction!r}"
            )
        if not _is_real(self.sharpness) or not (
            0.0 <= self.sharpness < math.inf
        ):
            raise ValueError(
                "sharpness must be a finite non-negative number; got"
                f" {self.sharpness!r}"
            )

    def length_ranges(self) -> list[tuple[int, int, float]]:
        """``(lo, hi, mean)`` of each state, in the order of :data:`STATES`."""
        return [
            (*self.helix_lengths, self.helix_mean),
            (*self.strand_lengths, self.strand_mean),
            (*self.coil_lengths, self.coil_mean),
        ]

    def emission_probs(self) -> torch.Tensor:
        """Amino-acid probabilities given the state, shape ``(3, 20)``,
        rows in :data:`STATES` order."""
        weights = (CHOU_FASMAN / 100.0).T ** self.sharpness
        return weights / weights.sum(-1, keepdim=True)


def _segment_lengths_sample(
    n: int, lo: int, hi: int, mean: float, gen: torch.Generator
) -> torch.Tensor:
    if hi == lo:
        return torch.full((n,), lo, dtype=torch.long)
    p = (mean - lo) / (hi - lo)
    draws = torch.rand(n, hi - lo, generator=gen, dtype=torch.float64)
    return lo + (draws < p).sum(-1)


def sample_chains(
    n_chains: int,
    length: int,
    model: SegmentModel | None = None,
    rng: int | torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw simulated chains of residues and their states from a segment
    model.

    Each chain is cut from a longer run of segments at a random offset, so
    it may start and end inside a segment, as a window onto a protein does.

    Parameters
    ----------
    n_chains : int
        Number of chains ``N``.
    length : int
        Residues per chain ``L``.
    model : SegmentModel, optional
        The generator's parameters; the defaults of :class:`SegmentModel`.
    rng : int, torch.Generator or None
        The randomness (see :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    residues : torch.Tensor, shape ``(N, L)``, long
        Amino-acid indices into :data:`AMINO_ACIDS`.
    states : torch.Tensor, shape ``(N, L)``, long
        State indices into :data:`STATES` (0 helix, 1 strand, 2 coil).

    Examples
    --------
    >>> residues, states = sample_chains(2, 30, rng=0)
    >>> residues.shape, int(count_segments(states).min()) >= 1
    (torch.Size([2, 30]), True)
    """
    n_chains = _check_int(n_chains, "n_chains", 1)
    length = _check_int(length, "length", 1)
    model = SegmentModel() if model is None else model
    if not isinstance(model, SegmentModel):
        raise ValueError(
            f"model must be a SegmentModel or None; got {type(model).__name__}"
        )
    gen = as_generator(rng)
    ranges = model.length_ranges()
    shortest = min(lo for lo, _, _ in ranges)
    longest = max(hi for _, hi, _ in ranges)
    # enough segments to cover the offset and the chain
    n_segments = (length + longest) // shortest + 2

    # Segment kinds: coil at every other slot, helix or strand in between.
    draws = torch.rand(
        n_chains, n_segments, generator=gen, dtype=torch.float64
    )
    ordered = torch.where(draws < model.helix_fraction, 0, 1)
    slot = torch.arange(n_segments)
    coil_first = (torch.rand(n_chains, 1, generator=gen) < 0.5).long()
    is_coil = (slot + coil_first) % 2 == 0
    kinds = torch.where(is_coil, torch.full_like(ordered, 2), ordered)
    lengths = torch.empty_like(kinds)
    for state, (lo, hi, mean) in enumerate(ranges):
        mask = kinds == state
        lengths[mask] = _segment_lengths_sample(
            int(mask.sum()), lo, hi, mean, gen
        )
    offsets = torch.randint(0, longest, (n_chains,), generator=gen)

    states = torch.stack(
        [
            torch.repeat_interleave(kinds[i], lengths[i])[
                offsets[i] : offsets[i] + length
            ]
            for i in range(n_chains)
        ]
    )
    emissions = model.emission_probs()[states.reshape(-1)]
    residues = torch.multinomial(emissions, 1, generator=gen)
    return residues.reshape(n_chains, length), states


# ------------------------------------------------------------------ models


class WindowModel(nn.Module):
    """Predict each residue's state from the residues within ``+-window``
    positions.

    The residues are one-hot encoded (20 channels, all zero at :data:`PAD`);
    a 1-D convolution of width ``2 * window + 1`` reads the window around
    every position (zeros beyond the chain's ends), followed, when
    ``hidden > 0``, by a ReLU and a second, position-wise layer. This is the
    classic window network of secondary-structure prediction, applied to
    every position at once: the forward pass maps residue indices of shape
    ``(N, L)`` to logits of shape ``(N, C, L)``. Explained in chapter 7.

    Parameters
    ----------
    window : int
        Half-width ``w`` of the window: the prediction at position ``i``
        sees residues ``i - w, ..., i + w``.
    hidden : int
        Hidden units per position; 0 gives a linear (multinomial logistic)
        window model.
    n_states : int
        Number of output states ``C``.

    Examples
    --------
    >>> model = WindowModel(window=2, hidden=0)
    >>> model(torch.tensor([[0, 5, 19, PAD]])).shape
    torch.Size([1, 3, 4])
    """

    def __init__(
        self, window: int = 7, hidden: int = 0, n_states: int = len(STATES)
    ):
        super().__init__()
        window = _check_int(window, "window", 0)
        hidden = _check_int(hidden, "hidden", 0)
        n_states = _check_int(n_states, "n_states", 1)
        self.window = window
        width = 2 * window + 1
        n_aa = len(AMINO_ACIDS)
        if hidden:
            self.net = nn.Sequential(
                nn.Conv1d(n_aa, hidden, width, padding=window),
                nn.ReLU(),
                nn.Conv1d(hidden, n_states, 1),
            )
        else:
            self.net = nn.Conv1d(n_aa, n_states, width, padding=window)

    def forward(self, residues: torch.Tensor) -> torch.Tensor:
        residues = _check_index_tensor(
            residues, "residues", len(AMINO_ACIDS), "amino-acid indices"
        )
        dtype = next(self.parameters()).dtype
        real = (residues != PAD).unsqueeze(-1)
        one_hot = F.one_hot(residues.clamp_min(0), len(AMINO_ACIDS)) * real
        return self.net(one_hot.to(dtype).transpose(1, 2))  # (N, C, L)


class ChainCRF(nn.Module):
    """A linear-chain conditional random field over a window model's scores.

    The score of a state path :math:`s` for a chain :math:`x` is
    :math:`\\mathrm{start}_{s_1} + \\sum_i e_{s_i, i}(x)
    + \\sum_{i \\ge 2} T_{s_{i-1} s_i}`, with emission scores :math:`e` from
    a :class:`WindowModel` and learned transition scores :math:`T`
    (``transitions``, zero at the start) and start scores; the path's
    probability is the softmax of its score over all :math:`C^L` paths
    (:func:`crf_cross_entropy`). The forward pass returns the emission
    scores ``(N, C, L)``. Explained in chapter 7.

    Parameters
    ----------
    window, hidden, n_states : int
        Passed to :class:`WindowModel`; built first, so that with the same
        seed its initial weights are those of a plain window model.
    """

    def __init__(
        self, window: int = 7, hidden: int = 0, n_states: int = len(STATES)
    ):
        super().__init__()
        self.emissions = WindowModel(window, hidden, n_states)
        self.transitions = nn.Parameter(torch.zeros(n_states, n_states))
        self.start = nn.Parameter(torch.zeros(n_states))

    def forward(self, residues: torch.Tensor) -> torch.Tensor:
        return self.emissions(residues)


# ---------------------------------------------------- the JS penalty


def _masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(
        mask, torch.zeros((), dtype=x.dtype, device=x.device), x
    )


def _p_log_ratio(logp: torch.Tensor, logm: torch.Tensor) -> torch.Tensor:
    """``p (log p - log m)`` with ``0 log 0 = 0`` and finite gradients
    where ``p = 0``."""
    zero = logp == -math.inf
    logp, logm = _masked(logp, zero), _masked(logm, zero)
    return _masked(logp.exp() * (logp - logm), zero)


def js_smoothness_penalty(
    input: torch.Tensor, reduction: str = "mean", mask=None
) -> torch.Tensor:
    r"""Jensen-Shannon divergence between neighbouring positions'
    predicted distributions.

    With :math:`p_i = \mathrm{softmax}(z_{:, i})` the predicted distribution
    over states at position :math:`i` and :math:`m_i = (p_i + p_{i+1})/2`,

    .. math::
        \mathrm{JS}(p_i, p_{i+1})
        = \tfrac12 \sum_k p_{ik} \log \frac{p_{ik}}{m_{ik}}
        + \tfrac12 \sum_k p_{i+1,k} \log \frac{p_{i+1,k}}{m_{ik}},

    in nats, between 0 (equal neighbours) and :math:`\log 2`. It is computed
    in log space, :math:`\log m = \mathrm{logaddexp}(\log p_i, \log p_{i+1})
    - \log 2` with :math:`\log p = \mathrm{log\_softmax}(z)`, so that it and
    its gradient stay finite for logits of any size. Explained in chapter 7.

    Parameters
    ----------
    input : torch.Tensor, shape ``(N, C, L)`` or ``(C, L)``
        Logits of ``C`` states at ``L`` positions of ``N`` sequences.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over the neighbouring pairs inside the chains;
        ``"none"`` returns every pair, shape ``(N, L - 1)`` (or
        ``(L - 1,)``), zero for a pair that leaves a chain.
    mask : torch.Tensor of bool, shape ``(N, L)``, optional
        True on each chain's positions, False after its end (padding).

    Returns
    -------
    torch.Tensor
        A scalar, or one divergence per neighbouring pair.
    """
    check_reduction(reduction)
    squeeze = isinstance(input, torch.Tensor) and input.dim() == 2
    z = _sequence_logits(input)
    mask = _check_mask(mask, (z.shape[0], z.shape[2]))
    logp = torch.log_softmax(z, dim=1)
    left, right = logp[:, :, :-1], logp[:, :, 1:]
    # A state of probability 0 on both sides (a masked class, logit -inf)
    # gets a dummy 0 before logaddexp, whose gradient would be NaN there.
    both_zero = (left == -math.inf) & (right == -math.inf)
    logm = torch.logaddexp(
        _masked(left, both_zero), _masked(right, both_zero)
    ) - math.log(2.0)
    js = 0.5 * (_p_log_ratio(left, logm) + _p_log_ratio(right, logm)).sum(1)
    js = js.clamp_min(0.0)  # (N, L - 1); rounding can leave ulps below 0
    pairs = None if mask is None else mask[:, 1:]
    if pairs is not None:
        js = _masked(js, ~pairs)
    if reduction == "none":
        return js.squeeze(0) if squeeze else js
    if reduction == "sum":
        return js.sum()
    count = js.numel() if pairs is None else int(pairs.sum())
    if count == 0:
        raise ValueError(
            "input must have at least two positions in a chain for a mean"
            " over neighbouring pairs; got none"
        )
    return js.sum() / count


def _check_js_weight(js_weight) -> None:
    if not _is_real(js_weight) or not (0 <= js_weight < math.inf):
        raise ValueError(
            "js_weight must be a finite non-negative number; got"
            f" {js_weight!r}"
        )


def js_penalized_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, js_weight: float = 1.0
) -> torch.Tensor:
    r"""Per-residue cross-entropy plus a weighted Jensen-Shannon smoothness
    penalty.

    .. math::
        \mathcal{L} = \frac{1}{NL} \sum_{n, i} -\log p_{n, i}(y_{n, i})
            + \lambda\, \frac{1}{N(L-1)} \sum_{n, i}
              \mathrm{JS}(p_{n, i}, p_{n, i+1})

    with :math:`\lambda` = ``js_weight``; ``js_weight = 0`` is plain
    cross-entropy. Positions where ``target`` is :data:`PAD` are left out
    of both means. Explained in chapter 7.

    Parameters
    ----------
    input : torch.Tensor, shape ``(N, C, L)``
        Logits.
    target : torch.Tensor, shape ``(N, L)``
        True states, :data:`PAD` after each chain's end.
    js_weight : float
        Non-negative finite weight :math:`\lambda` of the penalty.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    _check_js_weight(js_weight)
    z = _sequence_logits(input)
    if input.dim() != 3:
        raise ValueError(
            f"input must have shape (N, C, L); got {tuple(input.shape)}"
        )
    target = _check_target(target, z)
    loss = cross_entropy(z, target, ignore_index=PAD)
    if js_weight:
        loss = loss + js_weight * js_smoothness_penalty(z, mask=target != PAD)
    return loss


def _check_target(target, z: torch.Tensor) -> torch.Tensor:
    """States ``(N, L)`` matching scores ``(N, C, L)``."""
    target = _check_index_tensor(target, "target", z.shape[1], "state indices")
    if target.shape != (z.shape[0], z.shape[2]):
        raise ValueError(
            "target must have shape (N, L) ="
            f" {(z.shape[0], z.shape[2])}, one state per position of the"
            f" scores; got {tuple(target.shape)}"
        )
    if target.shape[1] == 0 or bool((target[:, 0] == PAD).any()):
        raise ValueError("target must hold at least one state per chain")
    return target.to(z.device)


# ---------------------------------------------------------------- the CRF


def crf_log_partition(
    scores: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor | None = None,
    mask=None,
) -> torch.Tensor:
    r"""The log of the sum of :math:`e^{\text{score}}` over all state paths:
    the forward algorithm.

    With emission scores :math:`e_{k,i}`, transition scores :math:`T_{jk}`
    and start scores :math:`b_k`, the forward variables
    :math:`\alpha_1(k) = b_k + e_{k,1}` and

    .. math::
        \alpha_i(k) = e_{k,i} + \log \sum_j \exp\big(\alpha_{i-1}(j)
            + T_{jk}\big)

    give :math:`\log Z = \log \sum_k \exp \alpha_L(k)` in :math:`O(L C^2)`
    operations instead of a sum over :math:`C^L` paths (Rabiner 1989;
    Lafferty, McCallum and Pereira 2001). Positions outside ``mask`` are
    skipped. Explained in chapter 7.

    Parameters
    ----------
    scores : torch.Tensor, shape ``(N, C, L)`` or ``(C, L)``
        Emission scores; ``-inf`` forbids a state at a position.
    transitions : torch.Tensor, shape ``(C, C)``
        Row ``j``, column ``k``: the score of moving from state ``j`` to
        ``k``.
    start : torch.Tensor, shape ``(C,)``, optional
        The score of starting in each state (zero when omitted).
    mask : torch.Tensor of bool, shape ``(N, L)``, optional
        True on each chain's positions, False after its end.

    Returns
    -------
    torch.Tensor, shape ``(N,)`` (or ``()`` for ``(C, L)`` scores)
    """
    squeeze = isinstance(scores, torch.Tensor) and scores.dim() == 2
    e = _sequence_logits(scores, "scores")
    n, c, length = e.shape
    if length == 0:
        raise ValueError("scores must have at least one position; got L = 0")
    trans = _check_square(transitions, "transitions", c, e)
    alpha = _check_start(start, "start", c, e) + e[:, :, 0]
    mask = _check_mask(mask, (n, length))
    for i in range(1, length):
        step = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + e[:, :, i]
        alpha = (
            step
            if mask is None
            else torch.where(mask[:, i, None], step, alpha)
        )
    log_z = torch.logsumexp(alpha, dim=1)
    return log_z[0] if squeeze else log_z


def crf_path_score(
    scores: torch.Tensor,
    target: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The score of the state path ``target``: start, emissions and
    transitions added up along each chain.

    .. math::
        \mathrm{score}(s) = b_{s_1} + \sum_{i=1}^{L} e_{s_i, i}
            + \sum_{i=2}^{L} T_{s_{i-1} s_i}

    Parameters
    ----------
    scores : torch.Tensor, shape ``(N, C, L)``
        Emission scores.
    target : torch.Tensor, shape ``(N, L)``
        The path: state indices, :data:`PAD` after each chain's end.
    transitions : torch.Tensor, shape ``(C, C)``
        Transition scores.
    start : torch.Tensor, shape ``(C,)``, optional
        Start scores (zero when omitted).

    Returns
    -------
    torch.Tensor, shape ``(N,)``
    """
    e = _sequence_logits(scores, "scores")
    if scores.dim() != 3:
        raise ValueError(
            f"scores must have shape (N, C, L); got {tuple(scores.shape)}"
        )
    c = e.shape[1]
    target = _check_target(target, e)
    trans = _check_square(transitions, "transitions", c, e)
    begin = _check_start(start, "start", c, e)
    real = target != PAD
    s = target.clamp_min(0)
    emitted = e.gather(1, s.unsqueeze(1)).squeeze(1)
    moves = trans[s[:, :-1], s[:, 1:]]
    return (
        begin[s[:, 0]]
        + _masked(emitted, ~real).sum(1)
        + _masked(moves, ~real[:, 1:]).sum(1)
    )


def crf_cross_entropy(
    scores: torch.Tensor,
    target: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The cross-entropy of whole state paths under a linear-chain CRF.

    The CRF gives the path :math:`s` of a chain the probability
    :math:`p(s \mid x) = e^{\mathrm{score}(s)} / Z(x)`, a softmax over all
    :math:`C^L` paths; the loss is the cross-entropy of the true path,

    .. math:: -\log p(s \mid x) = \log Z(x) - \mathrm{score}(s),

    from :func:`crf_log_partition` and :func:`crf_path_score`. With zero
    transitions and start scores it is the sum of the per-residue
    cross-entropies. Explained in chapter 7.

    Parameters
    ----------
    scores : torch.Tensor, shape ``(N, C, L)``
        Emission scores.
    target : torch.Tensor, shape ``(N, L)``
        True states, :data:`PAD` after each chain's end.
    transitions : torch.Tensor, shape ``(C, C)``
        Transition scores.
    start : torch.Tensor, shape ``(C,)``, optional
        Start scores (zero when omitted).
    reduction : {"mean", "sum", "none"}
        ``"none"``: one value per chain, shape ``(N,)``; ``"sum"``: their
        sum; ``"mean"``: the sum divided by the number of residues, in nats
        per residue like :func:`xentlib.cross_entropy`.

    Returns
    -------
    torch.Tensor
    """
    check_reduction(reduction)
    score = crf_path_score(scores, target, transitions, start)
    real = target != PAD
    log_z = crf_log_partition(scores, transitions, start, real)
    per_chain = log_z - score
    if reduction == "mean":
        return per_chain.sum() / real.sum()
    return reduce_rows(per_chain, reduction)


def crf_marginals(
    scores: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor | None = None,
    mask=None,
) -> torch.Tensor:
    r"""Each position's marginal probability of each state under the CRF.

    :math:`P(s_i = k \mid x)` sums the probabilities of all paths through
    state :math:`k` at position :math:`i`. It is the derivative of
    :math:`\log Z` with respect to the emission score :math:`e_{k,i}`, so
    one backward pass through :func:`crf_log_partition` computes all of them
    (the forward-backward algorithm). Explained in chapter 7.

    Parameters
    ----------
    scores : torch.Tensor, shape ``(N, C, L)``
        Emission scores.
    transitions : torch.Tensor, shape ``(C, C)``
        Transition scores.
    start : torch.Tensor, shape ``(C,)``, optional
        Start scores (zero when omitted).
    mask : torch.Tensor of bool, shape ``(N, L)``, optional
        True on each chain's positions; the marginals after a chain's end
        are zero.

    Returns
    -------
    torch.Tensor, shape ``(N, C, L)``
        Probabilities summing to one over ``C`` at every position of a
        chain; no gradient flows through them.
    """
    e = _sequence_logits(scores, "scores")
    if scores.dim() != 3:
        raise ValueError(
            f"scores must have shape (N, C, L); got {tuple(scores.shape)}"
        )
    with torch.enable_grad():
        e = e.detach().requires_grad_()
        log_z = crf_log_partition(
            e,
            transitions.detach()
            if isinstance(transitions, torch.Tensor)
            else transitions,
            start.detach() if isinstance(start, torch.Tensor) else start,
            mask,
        )
        (marginals,) = torch.autograd.grad(log_z.sum(), e)
    return marginals


# ----------------------------------------------------------------- training


@dataclass(frozen=True)
class WindowFit:
    """A trained :class:`WindowModel` and its training history."""

    model: WindowModel
    history: History


@dataclass(frozen=True)
class CRFFit:
    """A trained :class:`ChainCRF` and its training history."""

    model: ChainCRF
    history: History


def _check_training_chains(
    residues, states
) -> tuple[torch.Tensor, torch.Tensor]:
    residues = _check_index_tensor(
        residues, "residues", len(AMINO_ACIDS), "amino-acid indices"
    )
    states = _check_index_tensor(
        states, "states", len(STATES), "state indices"
    )
    if residues.shape != states.shape or not torch.equal(
        residues == PAD, states.to(residues.device) == PAD
    ):
        raise ValueError(
            "residues and states must have the same shape and PAD at the"
            f" same positions; got shapes {tuple(residues.shape)} and"
            f" {tuple(states.shape)}"
        )
    if bool((states[:, 0] == PAD).any()):
        raise ValueError("states must hold at least one state per chain")
    return residues, states.to(residues.device)


def _seeded(factory, gen: torch.Generator) -> nn.Module:
    # The initial weights come from the generator alone (drawn on the CPU);
    # torch's global random state is left as it was.
    seed = int(torch.randint(2**62, (1,), generator=gen))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def fit_window_model(
    residues: torch.Tensor,
    states: torch.Tensor,
    *,
    window: int,
    hidden: int = 0,
    js_weight: float = 0.0,
    config: TrainConfig,
    rng: int | torch.Generator | None = 0,
    progress: str | None = None,
) -> WindowFit:
    """Train a :class:`WindowModel` with :func:`js_penalized_cross_entropy`.

    The model is trained by :func:`xentlib.training.fit`. Its initial
    weights and the order of the mini-batches come from ``rng`` alone, so
    models trained with different ``js_weight`` (or as the emissions of
    :func:`fit_crf`, or on another device) start from the same point and see
    the same batches; only the loss differs.

    Parameters
    ----------
    residues : torch.Tensor, shape ``(N, L)``, long
        Amino-acid indices, :data:`PAD` after each chain's end; the model is
        trained on their device.
    states : torch.Tensor, shape ``(N, L)``, long
        True states, :data:`PAD` where ``residues`` is.
    window, hidden : int
        Passed to :class:`WindowModel`.
    js_weight : float
        Weight of the smoothness penalty (0 for plain cross-entropy).
    config : TrainConfig
        Epochs, learning rate, batch size (in chains) and optimiser.
    rng : int, torch.Generator or None
        Seeds the initial weights and the shuffling.
    progress : str, optional
        The label of a progress bar over epochs.

    Returns
    -------
    WindowFit
        The trained model (on the device of ``residues``) and its history.
    """
    residues, states = _check_training_chains(residues, states)
    _check_js_weight(js_weight)
    gen = as_generator(rng)
    model = _seeded(lambda: WindowModel(window, hidden), gen)
    model = model.to(residues.device)
    history = fit(
        model,
        lambda out, y: js_penalized_cross_entropy(out, y, js_weight),
        residues,
        states,
        config=config,
        rng=gen,
        progress=progress,
    )
    return WindowFit(model=model, history=history)


def fit_crf(
    residues: torch.Tensor,
    states: torch.Tensor,
    *,
    window: int,
    hidden: int = 0,
    config: TrainConfig,
    rng: int | torch.Generator | None = 0,
    progress: str | None = None,
) -> CRFFit:
    """Train a :class:`ChainCRF` on the cross-entropy of whole state paths.

    The loss is :func:`crf_cross_entropy` in nats per residue, minimised by
    :func:`xentlib.training.fit` over the emission network, the transition
    scores and the start scores together. With the same ``rng`` as
    :func:`fit_window_model`, the emission network starts from the window
    model's initial weights and sees the same mini-batches.

    Parameters
    ----------
    residues, states : torch.Tensor, shape ``(N, L)``, long
        As for :func:`fit_window_model`.
    window, hidden : int
        Passed to :class:`WindowModel`.
    config : TrainConfig
        Epochs, learning rate, batch size (in chains) and optimiser.
    rng : int, torch.Generator or None
        Seeds the initial weights and the shuffling.
    progress : str, optional
        The label of a progress bar over epochs.

    Returns
    -------
    CRFFit
        The trained CRF (on the device of ``residues``) and its history.
    """
    residues, states = _check_training_chains(residues, states)
    gen = as_generator(rng)
    model = _seeded(lambda: ChainCRF(window, hidden), gen)
    model = model.to(residues.device)

    def loss(scores, target):
        return crf_cross_entropy(
            scores, target, model.transitions, model.start
        )

    history = fit(
        model,
        loss,
        residues,
        states,
        config=config,
        rng=gen,
        progress=progress,
    )
    return CRFFit(model=model, history=history)


# ---------------------------------------------------------------- measures


def _states(x, name: str, n_states: int = len(STATES)) -> torch.Tensor:
    """State labels ``(N, L)`` (or ``(L,)``), or the argmax of scores
    ``(N, C, L)``; :data:`PAD` after each chain's end."""
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        if x.dim() != 3:
            raise ValueError(
                f"{name} of scores must have shape (N, C, L); got"
                f" {tuple(x.shape)}"
            )
        if x.shape[1] != n_states:
            raise ValueError(
                f"{name} of scores must have {n_states} states along"
                f" dimension 1; got {x.shape[1]}"
            )
        if x.numel() and bool(torch.isnan(x).any()):
            raise ValueError(f"{name} contains NaN; expected scores")
        return x.argmax(dim=1)
    return _check_index_tensor(x, name, n_states, "state indices")


def _pair(prediction, target) -> tuple[torch.Tensor, torch.Tensor]:
    true = _states(target, "target")
    pred = _states(prediction, "prediction").to(true.device)
    if pred.shape != true.shape:
        raise ValueError(
            "prediction must have one state per target position"
            f" {tuple(true.shape)}; got {tuple(pred.shape)}"
        )
    real = true != PAD
    if not bool(real.any()):
        raise ValueError("target is empty; expected at least one position")
    if bool((pred[real] == PAD).any()):
        raise ValueError("prediction holds PAD at a position of a chain")
    return torch.where(real, pred, PAD), true


def q3_accuracy(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Q3: the fraction of residues whose state (of three) is predicted
    correctly.

    Parameters
    ----------
    prediction : torch.Tensor
        States ``(N, L)`` (or ``(L,)``), or scores ``(N, 3, L)`` whose
        argmax over the states is taken.
    target : torch.Tensor, shape ``(N, L)`` or ``(L,)``
        True states, :data:`PAD` after each chain's end (those positions
        are not counted).

    Returns
    -------
    float

    Examples
    --------
    >>> q3_accuracy(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 2]))
    0.75
    """
    pred, true = _pair(prediction, target)
    real = true != PAD
    return (pred[real] == true[real]).double().mean().item()


def _starts(s: torch.Tensor) -> torch.Tensor:
    """True where a segment starts (a chain's first position, or a change
    of state); PAD positions never start one."""
    starts = s != PAD
    starts[:, 1:] &= s[:, 1:] != s[:, :-1]
    return starts


def count_segments(states: torch.Tensor) -> torch.Tensor:
    """Number of segments (maximal runs of one state) in each sequence.

    A chain of length :math:`L` has
    :math:`1 + \\#\\{i : s_i \\ne s_{i+1}\\}` segments.

    Parameters
    ----------
    states : torch.Tensor
        States ``(N, L)`` or ``(L,)``, :data:`PAD` after each chain's end,
        or scores ``(N, 3, L)`` (argmax taken).

    Returns
    -------
    torch.Tensor, shape ``(N,)``, long
        Zero for an empty sequence.

    Examples
    --------
    >>> count_segments(torch.tensor([[0, 0, 2, 2, 0, PAD]]))
    tensor([3])
    """
    return _starts(_states(states, "states")).sum(1)


def fragmentation(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Predicted segments per true segment, summed over all sequences.

    1 means as many segments as the truth; the excess over 1 counts
    spurious segments (a helix broken into three pieces adds two). It says
    nothing about whether the segments are in the right places: read it
    beside :func:`q3_accuracy`.

    Parameters
    ----------
    prediction : torch.Tensor
        States ``(N, L)`` or scores ``(N, 3, L)``; positions after a
        chain's end (PAD in ``target``) are ignored.
    target : torch.Tensor, shape ``(N, L)``
        True states, :data:`PAD` after each chain's end.

    Returns
    -------
    float
    """
    pred, true = _pair(prediction, target)
    return _starts(pred).sum().item() / _starts(true).sum().item()


def segment_lengths(
    states: torch.Tensor, state: int | None = None
) -> torch.Tensor:
    """Lengths of all segments in the sequences, optionally of one state
    only.

    Parameters
    ----------
    states : torch.Tensor
        States ``(N, L)`` or ``(L,)``, :data:`PAD` after each chain's end,
        or scores ``(N, 3, L)``.
    state : int, optional
        Keep only the segments of this state (an index into
        :data:`STATES`).

    Returns
    -------
    torch.Tensor, 1-D, long
        Segment lengths, chain by chain, in order (segments cut by a chain's
        ends count with their visible length).
    """
    s = _states(states, "states").cpu()
    if state is not None and (
        not _is_int(state) or not 0 <= state < len(STATES)
    ):
        raise ValueError(
            f"state must be None or a state index in [0, {len(STATES) - 1}];"
            f" got {state!r}"
        )
    real = s != PAD
    starts = _starts(s)[real]
    if starts.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    lengths = torch.bincount(torch.cumsum(starts.long(), 0) - 1)
    if state is not None:
        lengths = lengths[s[real][starts] == state]
    return lengths


def transition_log_probs(
    states: torch.Tensor, n_states: int = len(STATES), pseudocount: float = 1.0
) -> torch.Tensor:
    r"""Log transition probabilities between neighbouring states, estimated
    by counting.

    .. math::
        \log A_{jk} = \log \frac{n_{jk} + \alpha}{\sum_{k'} (n_{jk'} + \alpha)}

    where :math:`n_{jk}` counts positions with state :math:`j` followed by
    state :math:`k` inside a chain and :math:`\alpha` is the pseudocount.

    Parameters
    ----------
    states : torch.Tensor, shape ``(N, L)``
        Training labels, :data:`PAD` after each chain's end.
    n_states : int
        Number of states ``C``.
    pseudocount : float
        Added to every count (finite, >= 0), so that no transition gets
        probability zero when positive.

    Returns
    -------
    torch.Tensor, shape ``(C, C)``, float64
        Row ``j`` holds :math:`\log P(s_{i+1} = k \mid s_i = j)`.
    """
    n_states = _check_int(n_states, "n_states", 1)
    s = _check_index_tensor(states, "states", n_states, "state indices")
    if not _is_real(pseudocount) or not (0 <= pseudocount < math.inf):
        raise ValueError(
            "pseudocount must be a finite non-negative number; got"
            f" {pseudocount!r}"
        )
    both = (s[:, :-1] != PAD) & (s[:, 1:] != PAD)
    pairs = (s[:, :-1] * n_states + s[:, 1:])[both]
    counts = torch.bincount(pairs.cpu(), minlength=n_states * n_states)
    counts = counts.reshape(n_states, n_states).double() + pseudocount
    total = counts.sum(1, keepdim=True)
    if bool((total == 0).any()):
        raise ValueError(
            "states must leave each state at least once when pseudocount"
            " is 0; a row of transitions is empty"
        )
    return (counts / total).log()


def viterbi_decode(
    scores: torch.Tensor,
    log_transitions: torch.Tensor,
    log_initial: torch.Tensor | None = None,
    mask=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The highest-scoring state path of each sequence (Viterbi's dynamic
    programme).

    For position scores :math:`e_{k i}` (for example log-probabilities of
    state :math:`k` at position :math:`i`), log transitions
    :math:`\log A_{jk}` and log initial probabilities :math:`\log \pi_k`,
    returns

    .. math::
        \hat s = \arg\max_{s_1, \dots, s_L} \Big[ \log \pi_{s_1} + e_{s_1 1}
            + \sum_{i=2}^{L} \big( \log A_{s_{i-1} s_i} + e_{s_i i} \big)
            \Big]

    in :math:`O(L C^2)` time per sequence, instead of the :math:`C^L` of
    trying every path. It is also the most probable path of a
    :class:`ChainCRF` (its transitions and start scores in place of the
    logarithms). Explained in chapter 7.

    Parameters
    ----------
    scores : torch.Tensor, shape ``(N, C, L)`` or ``(C, L)``
        Position scores; ``-inf`` forbids a state at a position.
    log_transitions : torch.Tensor, shape ``(C, C)``
        Row ``j``, column ``k``: score of moving from state ``j`` to ``k``.
    log_initial : torch.Tensor, shape ``(C,)``, optional
        Score of starting in each state; zero (no preference) when omitted.
    mask : torch.Tensor of bool, shape ``(N, L)``, optional
        True on each chain's positions, False after its end.

    Returns
    -------
    path : torch.Tensor, shape ``(N, L)`` (or ``(L,)``), long
        The best state sequence (ties go to the lowest state index),
        :data:`PAD` after each chain's end.
    score : torch.Tensor, shape ``(N,)`` (or ``()``)
        Its total score.
    """
    squeeze = isinstance(scores, torch.Tensor) and scores.dim() == 2
    e = _sequence_logits(scores, "scores")
    n, c, length = e.shape
    trans = _check_square(log_transitions, "log_transitions", c, e)
    begin = _check_start(log_initial, "log_initial", c, e)
    if length == 0:
        raise ValueError("scores must have at least one position; got L = 0")
    best = begin + e[:, :, 0]
    mask = _check_mask(mask, (n, length))
    stay = torch.arange(c, device=e.device).expand(n, c)
    back = []
    for i in range(1, length):
        step, arg = (best.unsqueeze(2) + trans).max(dim=1)  # (N, C)
        step = step + e[:, :, i]
        if mask is not None:
            # after a chain's end, keep the score and point to the same state
            step = torch.where(mask[:, i, None], step, best)
            arg = torch.where(mask[:, i, None], arg, stay)
        best = step
        back.append(arg)
    score, last = best.max(dim=1)
    path = [last]
    for arg in reversed(back):
        last = arg.gather(1, last.unsqueeze(1)).squeeze(1)
        path.append(last)
    path = torch.stack(path[::-1], dim=1)
    if mask is not None:
        path = torch.where(mask, path, PAD)
    return (path[0], score[0]) if squeeze else (path, score)

"""Structured predictions along a sequence: protein secondary structure.

Introduced in chapter 7. A protein chain is a sequence of residues (20 amino
acids) and each residue sits in one of three secondary-structure states:
helix (H), strand (E) or coil (C). The states come in contiguous segments, so
a prediction made residue by residue, with a cross-entropy per residue, can be
right on most residues and still break one helix into several pieces. This
module holds what the chapter needs to show that and to repair it:

* a seeded **segment model** (:class:`SegmentModel`,
  :func:`sample_chains`): a semi-Markov generator of chains whose segments
  have realistic lengths and whose residues are drawn from state-dependent
  amino-acid propensities;
* a **window model** (:class:`WindowModel`) that predicts each residue's
  state from the residues within ``+-w`` positions;
* the **Jensen-Shannon smoothness penalty**
  (:func:`js_smoothness_penalty`) between neighbouring residues' predicted
  distributions;
* the measures: :func:`q3_accuracy`, :func:`count_segments`,
  :func:`segment_lengths` and :func:`fragmentation` (predicted segments per
  true segment);
* a **Viterbi decoder** (:func:`viterbi_decode`) and the transition
  matrix it needs (:func:`transition_log_probs`).

Tensors along a sequence follow :func:`torch.nn.functional.cross_entropy`:
scores or logits have shape ``(N, C, L)`` (chains, states, positions) and
state labels have shape ``(N, L)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_logits, check_reduction
from .losses import cross_entropy
from .training import TrainConfig, fit

__all__ = [
    "AMINO_ACIDS",
    "CHOU_FASMAN",
    "STATES",
    "SegmentModel",
    "WindowModel",
    "count_segments",
    "fragmentation",
    "js_penalized_cross_entropy",
    "js_smoothness_penalty",
    "q3_accuracy",
    "sample_chains",
    "segment_lengths",
    "train_window_model",
    "transition_log_probs",
    "viterbi_decode",
]

#: The three secondary-structure states, in the order of the class indices.
STATES = ("H", "E", "C")
#: The 20 amino acids in one-letter code, in the order of the residue indices.
AMINO_ACIDS = "ARNDCQEGHILKMFPSTWYV"

#: Chou-Fasman conformational parameters (times 100) for helix, strand and turn,
#: one row per amino acid in the order of :data:`AMINO_ACIDS`. A value above 100
#: means the residue is found in that state more often than on average.
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


@dataclass(frozen=True)
class SegmentModel:
    """A semi-Markov generator of secondary-structure chains.

    A chain alternates between coil segments and ordered segments; each
    ordered segment is a helix with probability ``helix_fraction`` and a
    strand otherwise. A segment's length is ``lo + Binomial(hi - lo, p)`` for
    the state's range ``(lo, hi)``, with ``p`` chosen so that the mean is the
    state's ``mean`` (so lengths never leave the range and peak near the mean).
    Given its state, each residue is drawn independently with probabilities
    proportional to the Chou-Fasman parameter of that state raised to the power
    ``sharpness`` (coil uses the turn parameters). The propensities are
    illustrative: real sequences have correlations between residues that this
    model leaves out.

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
            lo, hi = getattr(self, f"{name}_lengths")
            mean = getattr(self, f"{name}_mean")
            if not (
                isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi
            ):
                raise ValueError(
                    f"{name}_lengths must be integers 1 <= lo <= hi; got"
                    f" {(lo, hi)!r}"
                )
            if not lo <= mean <= hi:
                raise ValueError(
                    f"{name}_mean must lie in {name}_lengths {(lo, hi)}; got"
                    f" {mean!r}"
                )
        if not 0.0 <= self.helix_fraction <= 1.0:
            raise ValueError(
                "helix_fraction must be in [0, 1]; got"
                f" {self.helix_fraction!r}"
            )
        if not self.sharpness >= 0.0:
            raise ValueError(
                f"sharpness must be non-negative; got {self.sharpness!r}"
            )

    def length_ranges(self) -> list[tuple[int, int, float]]:
        """``(lo, hi, mean)`` of each state, in the order of :data:`STATES`."""
        return [
            (*self.helix_lengths, self.helix_mean),
            (*self.strand_lengths, self.strand_mean),
            (*self.coil_lengths, self.coil_mean),
        ]

    def emission_probs(self) -> torch.Tensor:
        """Amino-acid probabilities given the state, shape ``(3, 20)``, rows in :data:`STATES` order."""
        weights = (CHOU_FASMAN / 100.0).T ** self.sharpness
        return weights / weights.sum(-1, keepdim=True)


def _segment_lengths_sample(
    n: int, lo: int, hi: int, mean: float, gen: torch.Generator
) -> torch.Tensor:
    if hi == lo:
        return torch.full((n,), lo, dtype=torch.long)
    p = (mean - lo) / (hi - lo)
    return lo + (
        torch.rand(n, hi - lo, generator=gen, dtype=torch.float64) < p
    ).sum(-1)


def sample_chains(
    n_chains: int,
    length: int,
    model: SegmentModel | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw chains of residues and their secondary-structure states from a segment model.

    Each chain is cut from a longer run of segments at a random offset, so it
    may start and end inside a segment, as a window onto a protein does.

    Parameters
    ----------
    n_chains : int
        Number of chains ``N``.
    length : int
        Residues per chain ``L``.
    model : SegmentModel, optional
        The generator's parameters; the defaults of :class:`SegmentModel`.
    generator : torch.Generator, optional
        A CPU generator; the same seed gives the same chains. None uses a
        fresh generator seeded with 0.

    Returns
    -------
    residues : torch.Tensor, shape ``(N, L)``, long
        Amino-acid indices into :data:`AMINO_ACIDS`.
    states : torch.Tensor, shape ``(N, L)``, long
        State indices into :data:`STATES` (0 helix, 1 strand, 2 coil).
    """
    for name, value in (("n_chains", n_chains), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name} must be a positive integer; got {value!r}"
            )
    model = SegmentModel() if model is None else model
    gen = (
        generator
        if generator is not None
        else torch.Generator().manual_seed(0)
    )
    ranges = model.length_ranges()
    shortest = min(lo for lo, _, _ in ranges)
    longest = max(hi for _, hi, _ in ranges)
    n_segments = (
        length + longest
    ) // shortest + 2  # enough segments to cover offset + length

    # Segment kinds: coil at every other slot, helix or strand in between.
    ordered = torch.where(
        torch.rand(n_chains, n_segments, generator=gen, dtype=torch.float64)
        < model.helix_fraction,
        0,
        1,
    )
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
    residues = torch.multinomial(emissions, 1, generator=gen).reshape(
        n_chains, length
    )
    return residues, states


class WindowModel(nn.Module):
    """Predict each residue's state from the residues within ``+-window`` positions.

    The residues are one-hot encoded (20 channels); a 1-D convolution of width
    ``2 * window + 1`` reads the window around every position (zero padding
    beyond the chain's ends), followed, when ``hidden > 0``, by a ReLU and a
    second, position-wise layer. This is the classic window network of
    secondary-structure prediction, applied to every position at once: the
    forward pass maps long residue indices of shape ``(N, L)`` to logits of
    shape ``(N, C, L)``.

    Parameters
    ----------
    window : int
        Half-width ``w`` of the window: the prediction at position ``i`` sees
        residues ``i - w, ..., i + w``.
    hidden : int
        Hidden units per position; 0 gives a linear (multinomial logistic)
        window model.
    n_states : int
        Number of output states ``C``.
    """

    def __init__(
        self, window: int = 7, hidden: int = 32, n_states: int = len(STATES)
    ):
        super().__init__()
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or window < 0
        ):
            raise ValueError(
                f"window must be a non-negative integer; got {window!r}"
            )
        if (
            isinstance(hidden, bool)
            or not isinstance(hidden, int)
            or hidden < 0
        ):
            raise ValueError(
                f"hidden must be a non-negative integer; got {hidden!r}"
            )
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
        dtype = next(self.parameters()).dtype
        x = (
            F.one_hot(residues, len(AMINO_ACIDS)).to(dtype).transpose(1, 2)
        )  # (N, 20, L)
        return self.net(x)


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
    return input if input.dim() == 3 else input.unsqueeze(0)


def _masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(
        mask, torch.zeros((), dtype=x.dtype, device=x.device), x
    )


def _p_log_ratio(logp: torch.Tensor, logm: torch.Tensor) -> torch.Tensor:
    """Elementwise ``p (log p - log m)`` with ``0 log 0 = 0`` and finite gradients where ``p = 0``."""
    zero = logp == -math.inf
    logp, logm = _masked(logp, zero), _masked(logm, zero)
    return _masked(logp.exp() * (logp - logm), zero)


def js_smoothness_penalty(
    input: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    r"""Jensen-Shannon divergence between neighbouring positions' predicted distributions.

    With :math:`p_i = \mathrm{softmax}(z_{:, i})` the predicted distribution
    over states at position :math:`i` and :math:`m_i = (p_i + p_{i+1})/2`,

    .. math::
        \mathrm{JS}(p_i, p_{i+1}) = \tfrac12 \sum_k p_{ik} \log \frac{p_{ik}}{m_{ik}}
                                 + \tfrac12 \sum_k p_{i+1,k} \log \frac{p_{i+1,k}}{m_{ik}},

    in nats, between 0 (equal neighbours) and :math:`\log 2`. It is computed in
    log space, :math:`\log m = \mathrm{logaddexp}(\log p_i, \log p_{i+1}) - \log 2`
    with :math:`\log p = \mathrm{log\_softmax}(z)`, so that it and its
    gradient stay finite for logits of any size. Adding it to the per-residue
    cross-entropy asks the model to change its prediction only where the
    evidence for a change is strong. Explained in chapter 7.

    Parameters
    ----------
    input : torch.Tensor, shape ``(N, C, L)`` or ``(C, L)``
        Logits of ``C`` states at ``L`` positions of ``N`` sequences.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over the ``N (L - 1)`` neighbouring pairs;
        ``"none"`` returns them, shape ``(N, L - 1)`` (or ``(L - 1,)``).

    Returns
    -------
    torch.Tensor
        A scalar, or one divergence per neighbouring pair.
    """
    check_reduction(reduction)
    squeeze = isinstance(input, torch.Tensor) and input.dim() == 2
    z = _sequence_logits(input)
    if z.shape[1] == 0:
        raise ValueError(
            "input must have at least one state; got a state dimension of"
            " size 0"
        )
    logp = torch.log_softmax(z, dim=1)
    left, right = logp[:, :, :-1], logp[:, :, 1:]
    # A state of probability 0 on both sides (a masked class, logit -inf) gets a
    # dummy 0 before logaddexp, whose gradient would otherwise be NaN there.
    both_zero = (left == -math.inf) & (right == -math.inf)
    logm = torch.logaddexp(
        _masked(left, both_zero), _masked(right, both_zero)
    ) - math.log(2.0)
    js = 0.5 * (_p_log_ratio(left, logm) + _p_log_ratio(right, logm)).sum(1)
    js = js.clamp_min(0.0)  # (N, L - 1); rounding can leave a few ulps below 0
    if reduction == "none":
        return js.squeeze(0) if squeeze else js
    if reduction == "sum":
        return js.sum()
    if js.numel() == 0:
        raise ValueError(
            "input must have at least two positions for a mean over"
            " neighbouring pairs; got L < 2"
        )
    return js.mean()


def js_penalized_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, js_weight: float = 1.0
) -> torch.Tensor:
    r"""Per-residue cross-entropy plus a weighted Jensen-Shannon smoothness penalty.

    .. math::
        \mathcal{L} = \frac{1}{NL} \sum_{n, i} -\log p_{n, i}(y_{n, i})
            + \lambda \, \frac{1}{N(L-1)} \sum_{n, i} \mathrm{JS}(p_{n, i}, p_{n, i+1})

    with :math:`\lambda` = ``js_weight``; ``js_weight = 0`` is plain
    cross-entropy. Explained in chapter 7.

    Parameters
    ----------
    input : torch.Tensor, shape ``(N, C, L)``
        Logits.
    target : torch.Tensor, shape ``(N, L)``
        True states (class indices).
    js_weight : float
        Non-negative weight :math:`\lambda` of the penalty.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    if (
        isinstance(js_weight, bool)
        or not isinstance(js_weight, (int, float))
        or not js_weight >= 0
    ):
        raise ValueError(
            f"js_weight must be a non-negative number; got {js_weight!r}"
        )
    loss = cross_entropy(input, target)
    if js_weight:
        loss = loss + js_weight * js_smoothness_penalty(input)
    return loss


def train_window_model(
    residues: torch.Tensor,
    states: torch.Tensor,
    *,
    window: int,
    hidden: int = 0,
    js_weight: float = 0.0,
    epochs: int = 20,
    batch_size: int = 50,
    lr: float = 1e-2,
    seed: int = 0,
    progress: bool = False,
) -> WindowModel:
    """Train a :class:`WindowModel` with :func:`js_penalized_cross_entropy`.

    The initial weights and the order of the mini-batches depend only on
    ``seed``, so models trained with different ``js_weight`` (or on another
    device) start from the same point and see the same batches; only the loss
    differs.

    Parameters
    ----------
    residues : torch.Tensor, shape ``(N, L)``, long
        Amino-acid indices; the model is trained on their device.
    states : torch.Tensor, shape ``(N, L)``, long
        True states.
    window, hidden : int
        Passed to :class:`WindowModel`.
    js_weight : float
        Weight of the smoothness penalty (0 for plain cross-entropy).
    epochs, batch_size, lr : int, int, float
        Adam for ``epochs`` passes in mini-batches of ``batch_size`` chains.
    seed : int
        Seeds the initial weights and the shuffling.
    progress : bool
        Show a progress bar over epochs.

    Returns
    -------
    WindowModel
        The trained model, on the device of ``residues``.
    """
    if residues.shape != states.shape or residues.dim() != 2:
        raise ValueError(
            "residues and states must both have shape (N, L); got"
            f" {tuple(residues.shape)} and {tuple(states.shape)}"
        )
    with torch.random.fork_rng(
        devices=[]
    ):  # initialise on the CPU from seed alone; global state is restored
        torch.random.default_generator.manual_seed(seed)
        model = WindowModel(window, hidden)
    model = model.to(residues.device)
    fit(
        model,
        lambda out, y: js_penalized_cross_entropy(out, y, js_weight),
        residues,
        states,
        config=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size),
        rng=seed,
        progress=f"window {window}, JS weight {js_weight:g}"
        if progress
        else None,
    )
    return model


def _states(x, name: str) -> torch.Tensor:
    """Integer state labels ``(N, L)``, or the argmax of scores ``(N, C, L)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor; got {type(x).__name__}"
        )
    if x.is_floating_point():
        if x.dim() != 3:
            raise ValueError(
                f"{name} of scores must have shape (N, C, L); got"
                f" {tuple(x.shape)}"
            )
        return x.argmax(dim=1)
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(
            f"{name} must hold integer states or float scores; got dtype"
            f" {x.dtype}"
        )
    if x.dim() == 1:
        return x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(
            f"{name} of states must have shape (L,) or (N, L); got"
            f" {tuple(x.shape)}"
        )
    return x


def _pair(prediction, target) -> tuple[torch.Tensor, torch.Tensor]:
    pred = _states(prediction, "prediction")
    true = _states(target, "target")
    if pred.shape != true.shape:
        raise ValueError(
            "prediction must have one state per target position"
            f" {tuple(true.shape)}; got {tuple(pred.shape)}"
        )
    if true.numel() == 0:
        raise ValueError("target is empty; expected at least one position")
    return pred.to(true.device), true


def q3_accuracy(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Q3: the fraction of residues whose state (of three) is predicted correctly.

    Parameters
    ----------
    prediction : torch.Tensor
        States ``(N, L)`` (or ``(L,)``), or scores ``(N, C, L)`` whose argmax
        over ``C`` is taken.
    target : torch.Tensor, shape ``(N, L)`` or ``(L,)``
        True states.

    Returns
    -------
    float
    """
    pred, true = _pair(prediction, target)
    return (pred == true).double().mean().item()


def count_segments(states: torch.Tensor) -> torch.Tensor:
    """Number of segments (maximal runs of one state) in each sequence.

    A sequence of length :math:`L` has :math:`1 + \\#\\{i : s_i \\ne s_{i+1}\\}` segments.

    Parameters
    ----------
    states : torch.Tensor
        States ``(N, L)`` or ``(L,)``, or scores ``(N, C, L)`` (argmax taken).

    Returns
    -------
    torch.Tensor, shape ``(N,)``, long
        Zero for an empty sequence.
    """
    s = _states(states, "states")
    if s.shape[1] == 0:
        return torch.zeros(s.shape[0], dtype=torch.long, device=s.device)
    return 1 + (s[:, 1:] != s[:, :-1]).sum(1)


def fragmentation(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Predicted segments per true segment, summed over all sequences.

    1 means as many segments as the truth; the excess over 1 counts spurious
    segments (a helix broken into three pieces adds two). It says nothing
    about whether the segments are in the right places: read it beside
    :func:`q3_accuracy`.

    Parameters
    ----------
    prediction : torch.Tensor
        States ``(N, L)`` or scores ``(N, C, L)``.
    target : torch.Tensor, shape ``(N, L)``
        True states.

    Returns
    -------
    float
    """
    pred, true = _pair(prediction, target)
    return (
        count_segments(pred).sum().item() / count_segments(true).sum().item()
    )


def segment_lengths(
    states: torch.Tensor, state: int | None = None
) -> torch.Tensor:
    """Lengths of all segments in the sequences, optionally of one state only.

    Parameters
    ----------
    states : torch.Tensor
        States ``(N, L)`` or ``(L,)``, or scores ``(N, C, L)``.
    state : int, optional
        Keep only the segments of this state.

    Returns
    -------
    torch.Tensor, 1-D, long
        Segment lengths, chain by chain, in order (segments cut by a chain's
        ends count with their visible length).
    """
    s = _states(states, "states").cpu()
    if s.shape[1] == 0:
        return torch.zeros(0, dtype=torch.long)
    starts = torch.ones_like(s, dtype=torch.bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    # Number the segments along the flattened chains; a new chain always starts one.
    ids = torch.cumsum(starts.reshape(-1), 0) - 1
    lengths = torch.bincount(ids)
    if state is not None:
        lengths = lengths[s.reshape(-1)[starts.reshape(-1)] == state]
    return lengths


def transition_log_probs(
    states: torch.Tensor, n_states: int = len(STATES), pseudocount: float = 1.0
) -> torch.Tensor:
    r"""Log transition probabilities between neighbouring states, estimated by counting.

    .. math:: \log A_{jk} = \log \frac{n_{jk} + \alpha}{\sum_{k'} (n_{jk'} + \alpha)}

    where :math:`n_{jk}` counts positions with state :math:`j` followed by
    state :math:`k` and :math:`\alpha` is the pseudocount.

    Parameters
    ----------
    states : torch.Tensor, shape ``(N, L)``
        Training labels.
    n_states : int
        Number of states ``C``.
    pseudocount : float
        Added to every count, so no transition gets probability zero.

    Returns
    -------
    torch.Tensor, shape ``(C, C)``, float64
        Row ``j`` holds :math:`\log P(s_{i+1} = k \mid s_i = j)`.
    """
    s = _states(states, "states")
    if s.numel() and (bool((s < 0).any()) or bool((s >= n_states).any())):
        raise ValueError(
            f"states must hold state indices in [0, {n_states - 1}]; got"
            f" values in [{int(s.min())}, {int(s.max())}]"
        )
    if not pseudocount >= 0:
        raise ValueError(
            f"pseudocount must be non-negative; got {pseudocount!r}"
        )
    pairs = (s[:, :-1] * n_states + s[:, 1:]).reshape(-1)
    counts = torch.bincount(
        pairs.cpu(), minlength=n_states * n_states
    ).reshape(n_states, n_states)
    counts = counts.double() + pseudocount
    return (counts / counts.sum(1, keepdim=True)).log()


def viterbi_decode(
    scores: torch.Tensor,
    log_transitions: torch.Tensor,
    log_initial: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The highest-scoring state path of each sequence (Viterbi's dynamic programme).

    For position scores :math:`e_{k i}` (for example log-probabilities of
    state :math:`k` at position :math:`i`), log transitions :math:`\log A_{jk}`
    and log initial probabilities :math:`\log \pi_k`, returns

    .. math::
        \hat s = \arg\max_{s_1, \dots, s_L} \Big[ \log \pi_{s_1} + e_{s_1 1}
                 + \sum_{i=2}^{L} \big( \log A_{s_{i-1} s_i} + e_{s_i i} \big) \Big]

    in :math:`O(L C^2)` time per sequence, instead of the :math:`C^L` of
    trying every path. Explained in chapter 7.

    Parameters
    ----------
    scores : torch.Tensor, shape ``(N, C, L)`` or ``(C, L)``
        Position scores; ``-inf`` forbids a state at a position.
    log_transitions : torch.Tensor, shape ``(C, C)``
        Row ``j``, column ``k``: score of moving from state ``j`` to ``k``.
    log_initial : torch.Tensor, shape ``(C,)``, optional
        Score of starting in each state; zero (no preference) when omitted.

    Returns
    -------
    path : torch.Tensor, shape ``(N, L)`` (or ``(L,)``), long
        The best state sequence (ties go to the lowest state index).
    score : torch.Tensor, shape ``(N,)`` (or ``()``)
        Its total score.
    """
    squeeze = isinstance(scores, torch.Tensor) and scores.dim() == 2
    e = _sequence_logits(scores, "scores")
    n, c, length = e.shape
    if not isinstance(
        log_transitions, torch.Tensor
    ) or log_transitions.shape != (c, c):
        got = (
            tuple(log_transitions.shape)
            if isinstance(log_transitions, torch.Tensor)
            else type(log_transitions).__name__
        )
        raise ValueError(
            f"log_transitions must be a tensor of shape ({c}, {c}); got {got}"
        )
    check_logits(log_transitions, "log_transitions")
    if log_initial is None:
        log_initial = torch.zeros(c, dtype=e.dtype, device=e.device)
    elif not isinstance(log_initial, torch.Tensor) or log_initial.shape != (
        c,
    ):
        got = (
            tuple(log_initial.shape)
            if isinstance(log_initial, torch.Tensor)
            else type(log_initial).__name__
        )
        raise ValueError(
            f"log_initial must be a tensor of shape ({c},); got {got}"
        )
    else:
        check_logits(log_initial, "log_initial")
    if length == 0:
        raise ValueError("scores must have at least one position; got L = 0")
    trans = log_transitions.to(device=e.device, dtype=e.dtype)
    best = (
        log_initial.to(device=e.device, dtype=e.dtype) + e[:, :, 0]
    )  # (N, C)
    back = []
    for i in range(1, length):
        cand = best.unsqueeze(2) + trans  # (N, C_prev, C_next)
        best, arg = cand.max(dim=1)
        best = best + e[:, :, i]
        back.append(arg)
    score, last = best.max(dim=1)
    path = [last]
    for arg in reversed(back):
        last = arg.gather(1, last.unsqueeze(1)).squeeze(1)
        path.append(last)
    path = torch.stack(path[::-1], dim=1)
    return (path[0], score[0]) if squeeze else (path, score)

"""Tests of xentlib.structured: the DSSP chains, the segment model, the window
model, the JS smoothness penalty, the linear-chain CRF, the segment measures
and Viterbi decoding (chapter 7)."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import accuracy_score

import xentlib
from xentlib.structured import (
    AMINO_ACIDS,
    PAD,
    STATES,
    ChainCRF,
    SegmentModel,
    WindowModel,
    count_segments,
    crf_cross_entropy,
    crf_log_partition,
    crf_marginals,
    crf_path_score,
    fit_crf,
    fit_window_model,
    fragmentation,
    js_penalized_cross_entropy,
    js_smoothness_penalty,
    load_dssp_chains,
    q3_accuracy,
    sample_chains,
    segment_lengths,
    transition_log_probs,
    viterbi_decode,
)
from xentlib.training import TrainConfig


def runs(seq):
    """Reference: (state, length) of each maximal run, by itertools.groupby."""
    return [(k, len(list(g))) for k, g in itertools.groupby(seq)]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the segment model -------------------------------------------------------


def test_sample_chains_returns_long_residues_and_states_of_the_asked_shape():
    residues, states = sample_chains(7, 33, rng=0)
    assert residues.shape == states.shape == (7, 33)
    assert residues.dtype == states.dtype == torch.long
    assert 0 <= residues.min() and residues.max() < len(AMINO_ACIDS)
    assert 0 <= states.min() and states.max() < len(STATES)


def test_sample_chains_is_deterministic_under_a_seed_and_varies_across_seeds():
    a = sample_chains(20, 50, rng=3)
    b = sample_chains(20, 50, rng=3)
    c = sample_chains(20, 50, rng=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], c[1])


def test_segments_alternate_between_coil_and_ordered_with_lengths_in_range():
    model = SegmentModel()
    _, states = sample_chains(60, 120, model, rng=1)
    ranges = model.length_ranges()
    for chain in states.tolist():
        segs = runs(chain)
        kinds = [k for k, _ in segs]
        for a, b in zip(kinds, kinds[1:]):
            assert (a == 2) != (b == 2), (
                "a coil segment must sit between helices and strands"
            )
        for k, n in segs[
            1:-1
        ]:  # the first and last may be cut by the chain's ends
            lo, hi, _ = ranges[k]
            assert lo <= n <= hi


def test_segment_lengths_have_the_requested_means():
    model = SegmentModel(helix_mean=14.0, strand_mean=5.0, coil_mean=8.0)
    _, states = sample_chains(200, 150, model, rng=2)
    for k, (_, _, mean) in enumerate(model.length_ranges()):
        inner = [
            n
            for chain in states.tolist()
            for kk, n in runs(chain)[1:-1]
            if kk == k
        ]
        assert abs(np.mean(inner) - mean) < 0.25, (
            STATES[k],
            np.mean(inner),
            mean,
        )


def test_residues_are_drawn_from_the_state_dependent_propensities():
    model = SegmentModel(sharpness=2.0)
    residues, states = sample_chains(300, 200, model, rng=5)
    probs = model.emission_probs()
    for k in range(3):
        counts = torch.bincount(residues[states == k], minlength=20).double()
        freq = counts / counts.sum()
        # Binomial standard errors are below 0.003 here; allow 5 of them.
        assert (freq - probs[k]).abs().max() < 0.015


def test_emission_probs_are_distributions_and_uniform_at_zero_sharpness():
    probs = SegmentModel(sharpness=1.5).emission_probs()
    assert probs.shape == (3, 20)
    torch.testing.assert_close(
        probs.sum(1), torch.ones(3, dtype=torch.float64)
    )
    flat = SegmentModel(sharpness=0.0).emission_probs()
    torch.testing.assert_close(
        flat, torch.full((3, 20), 0.05, dtype=torch.float64)
    )
    # Glutamate (E) and alanine favour helices, valine and isoleucine
    # strands, glycine and proline coil.
    aa = AMINO_ACIDS.index
    assert probs[0].argmax() == aa("E") and probs[1].argmax() == aa("V")
    assert (
        probs[2, aa("G")] > probs[0, aa("G")]
        and probs[2, aa("P")] > probs[1, aa("P")]
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"helix_lengths": (0, 5)}, "helix_lengths must be integers"),
        ({"strand_lengths": (6, 4)}, "strand_lengths must be integers"),
        ({"coil_mean": 20.0}, "coil_mean must lie in coil_lengths"),
        ({"helix_fraction": 1.5}, "helix_fraction must be in"),
        ({"sharpness": -1.0}, "sharpness must be a finite non-negative"),
        ({"helix_mean": "12"}, "helix_mean must lie in"),
    ],
)
def test_segment_model_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SegmentModel(**kwargs)


@pytest.mark.parametrize(
    "n, length, match",
    [
        (0, 10, "n_chains must be a positive integer"),
        (3, 2.5, "length must be a positive integer"),
    ],
)
def test_sample_chains_rejects_bad_sizes(n, length, match):
    with pytest.raises(ValueError, match=match):
        sample_chains(n, length)


# --- the window model --------------------------------------------------------


@pytest.mark.parametrize("hidden", [0, 8])
def test_window_model_sees_exactly_the_residues_within_its_window(hidden):
    torch.manual_seed(0)
    w = 3
    model = WindowModel(window=w, hidden=hidden).double()
    residues = torch.randint(0, 20, (1, 30))
    out = model(residues)
    assert out.shape == (1, 3, 30)
    changed = residues.clone()
    changed[0, 15] = (changed[0, 15] + 1) % 20
    moved = (model(changed) - out).abs().amax(1)[0] > 1e-12
    assert moved.nonzero().flatten().tolist() == list(
        range(15 - w, 15 + w + 1)
    )


def test_linear_window_model_is_a_logistic_regression_on_the_one_hot_window():
    torch.manual_seed(1)
    w = 2
    model = WindowModel(window=w, hidden=0).double()
    residues = torch.randint(0, 20, (2, 9))
    W, b = (
        model.net.weight.detach(),
        model.net.bias.detach(),
    )  # (3, 20, 2w + 1), (3,)
    expected = torch.zeros(2, 3, 9, dtype=torch.float64)
    for n in range(2):
        for i in range(9):
            expected[n, :, i] = b
            for o in range(-w, w + 1):
                if (
                    0 <= i + o < 9
                ):  # beyond the chain's ends nothing contributes
                    expected[n, :, i] += W[:, residues[n, i + o], o + w]
    torch.testing.assert_close(
        model(residues).detach(), expected, rtol=0, atol=1e-12
    )


def test_window_model_rejects_bad_sizes_and_residues():
    with pytest.raises(
        ValueError, match="window must be a non-negative integer; got -1"
    ):
        WindowModel(window=-1)
    with pytest.raises(
        ValueError, match="n_states must be a positive integer; got 2.5"
    ):
        WindowModel(n_states=2.5)
    with pytest.raises(ValueError, match=r"residues must hold amino-acid"):
        WindowModel(window=1)(torch.tensor([[0, 20]]))


def test_window_model_reads_pad_as_nothing_like_the_chains_end():
    torch.manual_seed(2)
    model = WindowModel(window=2).double()
    chain = torch.randint(0, 20, (1, 7))
    padded = torch.cat([chain, torch.full((1, 3), PAD)], 1)
    torch.testing.assert_close(model(padded)[:, :, :7], model(chain))


# --- the Jensen-Shannon smoothness penalty -----------------------------------


def random_logits(n=4, c=3, length=9, scale=3.0, seed=0, dtype=torch.float64):
    return scale * torch.randn(n, c, length, generator=gen(seed), dtype=dtype)


def test_js_penalty_agrees_with_xentlib_js_divergence_of_neighbours():
    z = random_logits()
    p = z.softmax(1).transpose(1, 2)  # (N, L, C)
    reference = xentlib.js_divergence(p[:, :-1], p[:, 1:])
    got = js_smoothness_penalty(z, reduction="none")
    torch.testing.assert_close(got, reference, rtol=0, atol=1e-14)
    torch.testing.assert_close(
        js_smoothness_penalty(z), reference.mean(), rtol=0, atol=1e-15
    )
    torch.testing.assert_close(
        js_smoothness_penalty(z, reduction="sum"),
        reference.sum(),
        rtol=1e-14,
        atol=0,
    )


def test_js_penalty_is_the_square_of_scipys_jensen_shannon_distance():
    z = random_logits(n=1, c=5, length=12, seed=1)
    p = z.softmax(1)[0].T.numpy()
    expected = np.array(
        [jensenshannon(p[i], p[i + 1]) ** 2 for i in range(len(p) - 1)]
    )
    np.testing.assert_allclose(
        js_smoothness_penalty(z[0], reduction="none").numpy(),
        expected,
        atol=1e-13,
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 30.0))
def test_js_penalty_is_bounded_by_ln2_and_invariant_to_shifting_logits(
    seed, scale
):
    z = random_logits(seed=seed, scale=scale)
    pen = js_smoothness_penalty(z, reduction="none")
    assert bool((pen >= 0).all()) and bool((pen <= math.log(2) + 1e-12).all())
    shift = (
        torch.randn(4, 1, 9, generator=gen(seed + 1), dtype=torch.float64)
        * 100
    )
    torch.testing.assert_close(
        js_smoothness_penalty(z + shift, reduction="none"),
        pen,
        rtol=1e-9,
        atol=1e-12,
    )


def test_js_penalty_is_zero_for_constant_and_ln2_for_opposite_certainties():
    const = torch.tensor([2.0, -1.0, 0.5]).reshape(1, 3, 1).expand(2, 3, 7)
    assert js_smoothness_penalty(const).item() == 0.0
    flip = torch.tensor(
        [[[1e4, -1e4], [-1e4, 1e4]]], dtype=torch.float64
    )  # (1, C=2, L=2)
    assert js_smoothness_penalty(flip).item() == pytest.approx(
        math.log(2), abs=1e-12
    )


def test_js_penalty_passes_gradcheck_in_float64():
    z = random_logits(n=1, c=3, length=4, scale=2.0).requires_grad_()
    assert torch.autograd.gradcheck(js_smoothness_penalty, (z,))


def test_js_penalty_gradient_matches_the_probability_space_formula():
    z = random_logits(n=1, c=4, length=6, seed=2).requires_grad_()
    (g,) = torch.autograd.grad(js_smoothness_penalty(z, reduction="sum"), z)
    z2 = z.detach().clone().requires_grad_()
    p = z2.softmax(1).transpose(1, 2)
    (g_ref,) = torch.autograd.grad(
        xentlib.js_divergence(p[:, :-1], p[:, 1:]).sum(), z2
    )
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_js_penalty_and_gradient_stay_finite_for_extreme_and_masked_logits(
    dtype,
):
    inf = math.inf
    z = torch.tensor(
        [
            [
                [1e4, -1e4, 0.0, 3.0],
                [-1e4, 1e4, 0.0, -inf],
                [0.0, 0.0, -inf, -inf],
            ]
        ],
        dtype=dtype,
        requires_grad=True,
    )
    pen = js_smoothness_penalty(z, reduction="none")
    pen.sum().backward()
    assert torch.isfinite(pen).all() and torch.isfinite(z.grad).all()
    assert pen[0, 0].item() == pytest.approx(math.log(2), rel=1e-6)


def test_js_penalty_accepts_a_single_sequence_of_shape_c_by_l():
    z = random_logits(n=1)
    torch.testing.assert_close(
        js_smoothness_penalty(z[0], reduction="none"),
        js_smoothness_penalty(z, reduction="none")[0],
    )


@pytest.mark.parametrize(
    "z, kwargs, match",
    [
        (
            torch.zeros(3),
            {},
            r"input must have shape \(C, L\) or \(N, C, L\); got \(3,\)",
        ),
        (
            torch.zeros(1, 3, 4),
            {"reduction": "avg"},
            "reduction must be one of",
        ),
        (torch.full((1, 3, 4), math.nan), {}, "input contains NaN"),
        (torch.zeros(1, 3, 1), {}, "at least two positions"),
        ([[0.0, 1.0]], {}, "input must be a torch.Tensor"),
    ],
)
def test_js_penalty_rejects_bad_input(z, kwargs, match):
    with pytest.raises(ValueError, match=match):
        js_smoothness_penalty(z, **kwargs)


def test_js_penalized_cross_entropy_is_cross_entropy_plus_weighted_penalty():
    z = random_logits(seed=3)
    y = torch.randint(0, 3, (4, 9), generator=gen(3))
    ce = xentlib.cross_entropy(z, y)
    assert js_penalized_cross_entropy(z, y, 0.0).item() == ce.item()
    torch.testing.assert_close(
        js_penalized_cross_entropy(z, y, 2.5),
        ce + 2.5 * js_smoothness_penalty(z),
    )
    with pytest.raises(
        ValueError,
        match="js_weight must be a finite non-negative number; got -1",
    ):
        js_penalized_cross_entropy(z, y, -1)


def test_js_penalty_and_cross_entropy_leave_out_positions_after_the_end():
    z = random_logits(n=2, length=9, seed=4)
    y = torch.randint(0, 3, (2, 9), generator=gen(4))
    y[1, 5:] = PAD
    mask = y != PAD
    pairs = js_smoothness_penalty(z, reduction="none")
    expected = torch.cat([pairs[0], pairs[1, :4]]).mean()
    torch.testing.assert_close(js_smoothness_penalty(z, mask=mask), expected)
    short = js_penalized_cross_entropy(z[1:, :, :5], y[1:, :5], 2.0)
    both = js_penalized_cross_entropy(z, y, 2.0)
    ce = torch.cat(
        [
            torch.nn.functional.cross_entropy(z[:1], y[:1], reduction="none")[
                0
            ],
            torch.nn.functional.cross_entropy(
                z[1:, :, :5], y[1:, :5], reduction="none"
            )[0],
        ]
    ).mean()
    torch.testing.assert_close(both, ce + 2.0 * expected)
    assert short.item() != both.item()


# --- measures ----------------------------------------------------------------


def test_q3_accuracy_agrees_with_scikit_learn_and_takes_the_argmax_of_scores():
    y = torch.randint(0, 3, (5, 20), generator=gen(4))
    pred = torch.randint(0, 3, (5, 20), generator=gen(5))
    assert q3_accuracy(pred, y) == pytest.approx(
        accuracy_score(y.flatten(), pred.flatten()), abs=1e-15
    )
    scores = torch.nn.functional.one_hot(pred, 3).transpose(1, 2).double()
    assert q3_accuracy(scores, y) == q3_accuracy(pred, y)


@pytest.mark.parametrize("bad", [99, -1, 3])
def test_q3_accuracy_and_fragmentation_reject_states_out_of_range(bad):
    y = torch.tensor([[0, 1, 2, 2]])
    wrong = y.clone()
    wrong[0, 1] = bad
    for measure in (q3_accuracy, fragmentation):
        with pytest.raises(ValueError, match=r"target must hold state"):
            measure(y, wrong)
        with pytest.raises(ValueError, match=r"prediction must hold state"):
            measure(wrong, y)


def test_measures_skip_the_positions_after_a_chains_end():
    y = torch.tensor([[0, 0, 1, 1, 2], [2, 2, 0, PAD, PAD]])
    pred = torch.tensor([[0, 1, 0, 1, 2], [2, 0, 0, 1, 2]])
    assert q3_accuracy(pred, y) == pytest.approx(5 / 8)
    assert count_segments(y).tolist() == [3, 2]
    assert fragmentation(pred, y) == pytest.approx((5 + 2) / 5)
    assert segment_lengths(y).tolist() == [2, 2, 1, 2, 1]
    with pytest.raises(ValueError, match="PAD only after a chain's end"):
        q3_accuracy(pred, torch.tensor([[0, PAD, 1, 1, 2], [0] * 5]))


def test_q3_accuracy_rejects_mismatched_shapes():
    with pytest.raises(
        ValueError,
        match=(
            r"prediction must have one state per target position \(2, 5\); got"
            r" \(2, 4\)"
        ),
    ):
        q3_accuracy(
            torch.zeros(2, 4, dtype=torch.long),
            torch.zeros(2, 5, dtype=torch.long),
        )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 2), min_size=1, max_size=25),
        min_size=1,
        max_size=1,
    ).map(lambda x: x[0])
)
def test_count_segments_and_segment_lengths_agree_with_groupby(seq):
    s = torch.tensor([seq, seq[::-1]])
    ref = [runs(seq), runs(seq[::-1])]
    assert count_segments(s).tolist() == [len(r) for r in ref]
    assert segment_lengths(s).tolist() == [n for r in ref for _, n in r]
    for k in range(3):
        assert segment_lengths(s, state=k).tolist() == [
            n for r in ref for kk, n in r if kk == k
        ]


def test_fragmentation_is_one_when_perfect_and_counts_spurious_segments():
    y = torch.tensor([[0] * 10 + [2] * 5 + [1] * 5])  # 3 true segments
    assert fragmentation(y, y) == 1.0
    broken = y.clone()
    # one helix residue called coil: the helix becomes 3 segments
    broken[0, 4] = 2
    assert fragmentation(broken, y) == pytest.approx(5 / 3)
    assert count_segments(torch.zeros(2, 0, dtype=torch.long)).tolist() == [
        0,
        0,
    ]


# --- transitions and Viterbi -------------------------------------------------


def test_transition_log_probs_are_normalised_counts():
    s = torch.tensor([[0, 0, 1, 1, 1, 2], [2, 2, 0, 0, 0, 0]])
    logA = transition_log_probs(s, pseudocount=0.0)
    expected = torch.tensor(
        [[4 / 5, 1 / 5, 0.0], [0.0, 2 / 3, 1 / 3], [1 / 2, 0.0, 1 / 2]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(logA.exp(), expected)
    smooth = transition_log_probs(s, pseudocount=1.0).exp()
    torch.testing.assert_close(
        smooth.sum(1), torch.ones(3, dtype=torch.float64)
    )
    assert bool((smooth > 0).all())
    with pytest.raises(
        ValueError, match=r"states must hold state indices in \[0, 1\]"
    ):
        transition_log_probs(s, n_states=2)


def brute_force_best_path(e, logA, log_pi):
    c, length = e.shape
    best, best_path = -math.inf, None
    for path in itertools.product(range(c), repeat=length):
        score = log_pi[path[0]] + e[path[0], 0]
        for i in range(1, length):
            score = score + logA[path[i - 1], path[i]] + e[path[i], i]
        if score > best:
            best, best_path = float(score), list(path)
    return best_path, best


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_finds_the_best_path_found_by_enumerating_all_paths(seed):
    g = gen(seed)
    c, length = 3, 1 + seed
    e = torch.randn(c, length, generator=g, dtype=torch.float64)
    logA = torch.log_softmax(
        torch.randn(c, c, generator=g, dtype=torch.float64), 1
    )
    log_pi = torch.log_softmax(
        torch.randn(c, generator=g, dtype=torch.float64), 0
    )
    path, score = viterbi_decode(e, logA, log_pi)
    ref_path, ref_score = brute_force_best_path(e, logA, log_pi)
    assert path.tolist() == ref_path
    assert score.item() == pytest.approx(ref_score, abs=1e-12)


def test_viterbi_decodes_a_batch_like_its_sequences_one_by_one():
    e = torch.randn(5, 3, 11, generator=gen(7), dtype=torch.float64)
    logA = torch.log_softmax(
        torch.randn(3, 3, generator=gen(8), dtype=torch.float64), 1
    )
    paths, scores = viterbi_decode(e, logA)
    for n in range(5):
        p, s = viterbi_decode(e[n], logA)
        assert torch.equal(paths[n], p) and scores[n].item() == s.item()


def test_viterbi_with_flat_transitions_is_the_argmax_and_obeys_forbidding():
    e = torch.randn(2, 3, 15, generator=gen(9), dtype=torch.float64)
    flat = torch.zeros(3, 3, dtype=torch.float64)
    assert torch.equal(viterbi_decode(e, flat)[0], e.argmax(1))
    sticky = torch.full((3, 3), -math.inf, dtype=torch.float64).fill_diagonal_(
        0.0
    )  # no state changes
    paths, _ = viterbi_decode(e, sticky)
    assert (count_segments(paths) == 1).all()


@pytest.mark.parametrize(
    "args, match",
    [
        (
            (torch.zeros(1, 3, 4), torch.zeros(2, 2)),
            (
                r"log_transitions must be a tensor of shape \(3, 3\); got"
                r" \(2, 2\)"
            ),
        ),
        (
            (torch.zeros(1, 3, 4), torch.zeros(3, 3), torch.zeros(2)),
            r"log_initial must be a tensor of shape \(3,\)",
        ),
        ((torch.zeros(1, 3, 0), torch.zeros(3, 3)), "at least one position"),
        (
            (torch.zeros(4), torch.zeros(3, 3)),
            r"scores must have shape \(C, L\) or \(N, C, L\)",
        ),
    ],
)
def test_viterbi_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        viterbi_decode(*args)


# --- training ----------------------------------------------------------------


def small_problem():
    g = gen(11)
    train = sample_chains(80, 60, SegmentModel(sharpness=2.0), rng=g)
    test = sample_chains(40, 60, SegmentModel(sharpness=2.0), rng=g)
    return train, test


CONFIG = TrainConfig(epochs=4, lr=1e-2, batch_size=20)


def test_window_model_training_is_deterministic_and_beats_the_majority():
    (x, y), (xt, yt) = small_problem()
    a = fit_window_model(x, y, window=5, config=CONFIG, rng=1)
    b = fit_window_model(x, y, window=5, config=CONFIG, rng=1)
    assert a.history.loss == b.history.loss and len(a.history.loss) == 4
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    pred = xentlib.training.predict(a.model, xt)
    majority = torch.bincount(yt.flatten()).max().item() / yt.numel()
    assert q3_accuracy(pred, yt) > majority + 0.1


def test_fit_window_model_rejects_mismatched_residues_and_states():
    with pytest.raises(
        ValueError,
        match="residues and states must have the same shape",
    ):
        fit_window_model(
            torch.zeros(2, 5, dtype=torch.long),
            torch.zeros(2, 4, dtype=torch.long),
            window=1,
            config=CONFIG,
        )


def test_the_js_penalty_makes_predictions_less_fragmented():
    (x, y), (xt, yt) = small_problem()
    plain = fit_window_model(x, y, window=5, config=CONFIG, rng=1).model
    smooth = fit_window_model(
        x, y, window=5, js_weight=10.0, config=CONFIG, rng=1
    ).model
    predict = xentlib.training.predict
    assert (
        fragmentation(predict(smooth, xt), yt)
        < fragmentation(predict(plain, xt), yt) - 0.1
    )
    assert js_smoothness_penalty(predict(smooth, xt)) < js_smoothness_penalty(
        predict(plain, xt)
    )


# --- the linear-chain CRF ----------------------------------------------------


def crf_problem(seed=0, n=2, c=3, length=5):
    g = gen(seed)
    e = torch.randn(n, c, length, generator=g, dtype=torch.float64)
    T = torch.randn(c, c, generator=g, dtype=torch.float64)
    b = torch.randn(c, generator=g, dtype=torch.float64)
    return e, T, b


def all_paths(c, length):
    return torch.tensor(list(itertools.product(range(c), repeat=length)))


@pytest.mark.parametrize("seed", range(3))
def test_crf_log_partition_sums_every_path_and_path_score_scores_one(seed):
    e, T, b = crf_problem(seed)
    paths = all_paths(3, 5)
    for n in range(2):
        scores = torch.stack(
            [crf_path_score(e[n : n + 1], p[None], T, b)[0] for p in paths]
        )
        brute = [
            b[p[0]] + e[n, p, torch.arange(5)].sum() + T[p[:-1], p[1:]].sum()
            for p in paths[:20]
        ]
        torch.testing.assert_close(scores[:20], torch.stack(brute))
        torch.testing.assert_close(
            crf_log_partition(e, T, b)[n], torch.logsumexp(scores, 0)
        )


def test_crf_probabilities_of_all_paths_sum_to_one_and_mask_cuts_chains():
    e, T, b = crf_problem(1, n=1, length=4)
    paths = all_paths(3, 4)
    nll = torch.stack(
        [crf_cross_entropy(e, p[None], T, b, reduction="sum") for p in paths]
    )
    torch.testing.assert_close(
        torch.exp(-nll).sum(), torch.tensor(1.0, dtype=torch.float64)
    )
    mask = torch.tensor([[True, True, False, False]])
    torch.testing.assert_close(
        crf_log_partition(e, T, b, mask), crf_log_partition(e[:, :, :2], T, b)
    )


def test_crf_with_zero_transitions_is_the_per_residue_cross_entropy():
    e, _, _ = crf_problem(2, n=3, length=7)
    y = torch.randint(0, 3, (3, 7), generator=gen(2))
    y[2, 4:] = PAD
    zero = torch.zeros(3, 3, dtype=torch.float64)
    torch.testing.assert_close(
        crf_cross_entropy(e, y, zero),
        xentlib.cross_entropy(e, y, ignore_index=PAD),
    )


def test_crf_marginals_match_the_brute_force_sum_over_paths():
    e, T, b = crf_problem(3, n=1, length=4)
    paths = all_paths(3, 4)
    weights = torch.stack(
        [crf_path_score(e, p[None], T, b)[0] for p in paths]
    ).softmax(0)
    brute = torch.zeros(3, 4, dtype=torch.float64)
    for w, p in zip(weights, paths):
        brute[p, torch.arange(4)] += w
    torch.testing.assert_close(crf_marginals(e, T, b)[0], brute)


def test_crf_cross_entropy_passes_gradcheck_in_float64():
    e, T, b = crf_problem(4, n=2, length=4)
    y = torch.tensor([[0, 1, 1, 2], [2, 0, PAD, PAD]])
    assert torch.autograd.gradcheck(
        lambda e, T, b: crf_cross_entropy(e, y, T, b),
        (e.requires_grad_(), T.requires_grad_(), b.requires_grad_()),
    )


def test_viterbi_on_crf_scores_finds_its_most_probable_path_in_a_batch():
    e, T, b = crf_problem(5, n=2, length=5)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    path, score = viterbi_decode(e, T, b, mask)
    for n, length in ((0, 5), (1, 3)):
        ref, ref_score = brute_force_best_path(e[n, :, :length], T, b)
        assert path[n, :length].tolist() == ref
        assert score[n].item() == pytest.approx(ref_score, abs=1e-12)
    assert path[1, 3:].tolist() == [PAD, PAD]


def test_fit_crf_learns_transitions_that_favour_staying_in_a_state():
    (x, y), (xt, yt) = small_problem()
    fitted = fit_crf(x, y, window=3, config=CONFIG, rng=1)
    crf = fitted.model
    assert isinstance(crf, ChainCRF) and len(fitted.history.loss) == 4
    assert fitted.history.loss[-1] < fitted.history.loss[0]
    T = crf.transitions.detach()
    assert bool((T.diagonal() > T.mean()).all())
    window = fit_window_model(x, y, window=3, config=CONFIG, rng=1).model
    # the same initial emission weights: identical after zero epochs
    start = fit_crf(
        x, y, window=3, config=TrainConfig(epochs=0), rng=1
    ).model.emissions
    first = fit_window_model(
        x, y, window=3, config=TrainConfig(epochs=0), rng=1
    ).model
    assert torch.equal(start.net.weight, first.net.weight)
    assert not torch.equal(window.net.weight, crf.emissions.net.weight)


def test_crf_functions_reject_bad_input():
    e, T, b = crf_problem(6)
    y = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"transitions must be a tensor of"):
        crf_log_partition(e, T[:2])
    with pytest.raises(ValueError, match=r"start must be a tensor of shape"):
        crf_cross_entropy(e, y, T, b[:2])
    with pytest.raises(ValueError, match=r"target must hold state indices"):
        crf_cross_entropy(e, y + 3, T)
    with pytest.raises(ValueError, match="mask must be True on a prefix"):
        crf_log_partition(
            e, T, mask=torch.tensor([[True, False] * 2 + [True]] * 2)
        )


# --- the DSSP chains ---------------------------------------------------------


def test_dssp_chains_are_fifty_real_chains_with_three_states():
    chains = load_dssp_chains()
    assert len(chains) == 50 and chains.residues.shape == (50, 173)
    assert int(chains.lengths.sum()) == 6860
    assert torch.equal(chains.residues == PAD, chains.states == PAD)
    counts = torch.bincount(chains.states[chains.states != PAD], minlength=3)
    assert counts.tolist() == [2468, 1680, 2712]
    part = chains.select([3, 0])
    assert part.names == (chains.names[3], chains.names[0])
    assert part.residues.shape[1] == int(chains.lengths[[3, 0]].max())

"""xentlib.calibration at its boundary: the inputs it accepts (tensors,
arrays, lists) and the ones it rejects, naming the argument. The properties
of the ECE and of temperature scaling are pinned down in
tests/test_training_and_calibration.py."""

import numpy as np
import pytest
import torch

from xentlib.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)


def test_arrays_and_lists_give_what_tensors_give():
    prob = [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]
    target = [0, 1, 1]
    as_tensors = expected_calibration_error(
        torch.tensor(prob, dtype=torch.float64), torch.tensor(target)
    )
    assert expected_calibration_error(prob, target) == as_tensors
    assert expected_calibration_error(np.array(prob), np.array(target)) == (
        as_tensors
    )
    logits = np.log(np.array(prob))
    assert fit_temperature(logits, target) == fit_temperature(
        torch.tensor(logits), torch.tensor(target)
    )


def test_binary_and_top_label_readings_agree_for_two_classes():
    # For two classes the top-label ECE of (1 - p, p) is the binary ECE of
    # the top probability against "the top class is right".
    g = torch.Generator().manual_seed(0)
    p = torch.rand(200, generator=g, dtype=torch.float64)
    y = (torch.rand(200, generator=g, dtype=torch.float64) < p).long()
    prob = torch.stack([1 - p, p], dim=1)
    top, predicted = prob.max(1)
    binary = expected_calibration_error(top, (predicted == y).double())
    assert expected_calibration_error(prob, y) == pytest.approx(binary)


@pytest.mark.parametrize("n_bins", [0, -3, 2.5, True, "15"])
def test_n_bins_must_be_a_positive_integer(n_bins):
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        reliability_curve(torch.tensor([0.5]), torch.tensor([1.0]), n_bins)


@pytest.mark.parametrize(
    "prob, target, match",
    [
        ([[0.5, 0.5]], "ab", "target must be a tensor or array of labels"),
        ([[0.5, 0.5]], [True], "target must hold integer class indices"),
        ([[0.5, 0.5]], [-1], r"class indices in \[0, 1\]; got values"),
        ([[0.5, 0.5]], [0, 1], r"target must have shape \(1,\), one label"),
        ([0.5, 0.5], [1.0], r"one label per row of prob"),
        ([[[0.5]]], [0], r"prob must have shape \(N,\) or \(N, C\)"),
    ],
)
def test_bad_labels_and_shapes_are_rejected_naming_the_argument(
    prob, target, match
):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(prob, target)


def test_fit_temperature_rejects_labels_that_do_not_fit_the_logits():
    z = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"one label per row of logits"):
        fit_temperature(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="target must hold integer class"):
        fit_temperature(z, torch.tensor([True, False, True]))

"""The shared MLP builder."""

import pytest
import torch
from torch import nn

from xentlib.models import mlp


def test_mlp_has_the_requested_shape_and_layers():
    net = mlp(5, 3, hidden=7, depth=2)
    assert [type(m) for m in net] == [
        nn.Linear,
        nn.ReLU,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]
    assert net(torch.randn(4, 5)).shape == (4, 3)


def test_mlp_of_depth_zero_is_a_linear_model():
    net = mlp(5, 3, depth=0)
    assert len(net) == 1 and isinstance(net[0], nn.Linear)


def test_mlp_takes_its_activation_from_the_caller():
    net = mlp(2, 1, hidden=4, depth=1, activation=lambda: nn.LeakyReLU(0.2))
    assert isinstance(net[1], nn.LeakyReLU) and net[1].negative_slope == 0.2


def test_mlp_initialises_identically_under_the_same_seed():
    torch.manual_seed(0)
    a = mlp(6, 2, hidden=8)
    torch.manual_seed(0)
    b = mlp(6, 2, hidden=8)
    assert all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"in_features": 0}, "in_features must be an integer >= 1; got 0"),
        ({"depth": -1}, "depth must be an integer >= 0; got -1"),
        ({"hidden": 2.5}, "hidden must be an integer >= 1; got 2.5"),
    ],
)
def test_mlp_rejects_bad_sizes(kwargs, message):
    args = {"in_features": 3, "out_features": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        mlp(**args)

"""Rows for xentlib.physics (chapter 12): quadrature and the variational
principle, Boltzmann distributions, Langevin sampling."""

import torch

from xentlib import physics

from . import (
    Arg,
    Row,
    boolean,
    callable_,
    finite_real,
    nonneg_int,
    nonneg_real,
    positive_int,
    positive_real,
    rng,
    tensor,
)

F64 = torch.float64
_grid = torch.linspace(-6.0, 6.0, 101, dtype=F64)
_radius = torch.linspace(0.0, 20.0, 101, dtype=F64)
_energies = torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=F64)


def _scalar(good):
    yield "a scalar", good.sum()


def _dim(good):
    yield from (("out of range", 5), ("a string", "0"), ("True", True))


#: Any shape is fine (elementwise or batched), so only the values and the
#: type can be bad.
_values = tensor(rank=False, rows=False)
_states = (
    tensor(rank=False, rows=False, empty=True, inf=False),
    _scalar,
)


def _oscillator_potential(x):
    return 0.5 * x**2


def _gaussian(x):
    return torch.exp(-0.5 * x**2)


def _bowl(t):
    return ((t - 1.0) ** 2).sum()


def _boltzmann_row(func, inf_ok=True):
    energies = (
        _states
        if inf_ok
        else (tensor(rank=False, rows=False, empty=True), _scalar)
    )
    return Row(
        f"xentlib.physics.{func.__name__}",
        func,
        {
            "energies": Arg(_energies, energies),
            "temperature": Arg(0.7, (positive_real,)),
            "dim": Arg(-1, (_dim,)),
        },
    )


ROWS = [
    Row(
        "xentlib.physics.simpson",
        physics.simpson,
        {
            "y": Arg(_grid**2, (tensor(rank=False, empty=True), _scalar)),
            "grid": Arg(_grid, (tensor(),)),
        },
    ),
    Row(
        "xentlib.physics.variational_energy",
        physics.variational_energy,
        {
            "psi": Arg(_gaussian, (callable_,)),
            "grid": Arg(_grid, (tensor(),)),
            "potential": Arg(0.5 * _grid**2, (tensor(),)),
            "radial": Arg(False, (boolean,)),
        },
    ),
    Row(
        "xentlib.physics.variational_energy",
        physics.variational_energy,
        {
            "psi": _gaussian,
            "grid": Arg(_radius, (lambda g: [("starting below 0", g - 1)],)),
            "potential": Arg(
                _oscillator_potential, (lambda g: [("not callable", "V")],)
            ),
            "radial": True,
        },
        note="radial",
    ),
    Row(
        "xentlib.physics.minimize_energy",
        physics.minimize_energy,
        {
            "energy": Arg(_bowl, (callable_,)),
            "init": Arg(torch.zeros(2, dtype=F64), (_values,)),
            "max_iter": Arg(5, (positive_int,)),
            "tolerance": Arg(1e-9, (positive_real,)),
        },
    ),
    _boltzmann_row(physics.boltzmann),
    _boltzmann_row(physics.log_partition),
    _boltzmann_row(physics.free_energy),
    _boltzmann_row(physics.heat_capacity, inf_ok=False),
    Row(
        "xentlib.physics.tilted_double_well",
        physics.tilted_double_well,
        {
            "x": Arg(_grid, (_values,)),
            "tilt": Arg(0.3, (finite_real,)),
        },
    ),
    Row(
        "xentlib.physics.langevin_sample",
        physics.langevin_sample,
        {
            "loss": Arg(physics.tilted_double_well, (callable_,)),
            "x0": Arg(torch.zeros(4, dtype=F64), (_values,)),
            "temperature": Arg(
                0.5, (nonneg_real, lambda g: [("a schedule too short", [g])])
            ),
            "step_size": Arg(0.01, (positive_real,)),
            "n_steps": Arg(5, (positive_int,)),
            "burn_in": Arg(1, (nonneg_int, lambda g: [("n_steps", 5)])),
            "thin": Arg(2, (positive_int,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.physics.boltzmann_bin_probabilities",
        physics.boltzmann_bin_probabilities,
        {
            "loss": Arg(physics.tilted_double_well, (callable_,)),
            "edges": Arg(
                torch.linspace(-2.0, 2.0, 9, dtype=F64),
                (
                    tensor(rows=False, empty=True),
                    lambda g: [("decreasing", g.flip(0))],
                ),
            ),
            "temperature": Arg(0.5, (positive_real,)),
            "points_per_bin": Arg(8, (positive_int, lambda g: [("odd", 3)])),
        },
    ),
]

EXEMPT = {
    "xentlib.physics.VariationalResult": "a result that minimize_energy "
    "builds",
}

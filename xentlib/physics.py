"""The physics view of cross-entropy: variational energies, Boltzmann distributions, Langevin dynamics.

Three ideas from statistical and quantum physics that the book's loss lives
beside (chapter 12):

* **The variational principle.** For any trial wavefunction :math:`\\psi`, the
  energy expectation

  .. math::

      E[\\psi] = \\frac{\\int \\bigl(\\tfrac12 |\\psi'|^2 + V |\\psi|^2\\bigr)\\, w \\, dx}
                      {\\int |\\psi|^2\\, w \\, dx}
      \\;\\ge\\; E_0

  (atomic units; :math:`w = 1` on a line, :math:`w = r^2` for an s-wave in
  three dimensions) bounds the ground-state energy :math:`E_0` from above.
  :func:`variational_energy` evaluates it by Simpson quadrature, with the
  derivative :math:`\\psi'` taken by autograd, so that the energy can be
  minimised over the trial's parameters by :func:`minimize_energy`.
* **The Boltzmann distribution.** Energies :math:`E_k` at temperature
  :math:`T` give probabilities :math:`q_k = e^{-E_k/T} / Z` with the
  partition function :math:`Z = \\sum_k e^{-E_k/T}`: a softmax of the logits
  :math:`z_k = -E_k/T` (:func:`boltzmann`, :func:`log_partition`,
  :func:`free_energy`, :func:`heat_capacity`). The cross-entropy of those
  logits against a target :math:`p` is :math:`\\langle E \\rangle_p / T + \\ln Z`.
* **Langevin dynamics.** The unadjusted Langevin iteration
  :math:`x_{t+1} = x_t - \\eta \\nabla L(x_t) + \\sqrt{2 \\eta T}\\, \\xi_t`
  samples, up to a bias of order :math:`\\eta`, the density
  :math:`\\propto e^{-L(x)/T}` (:func:`langevin_sample`), which
  :func:`boltzmann_bin_probabilities` computes by quadrature for comparison.

Introduced in chapter 12.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from ._validation import as_float_tensor, check_no_nan

__all__ = [
    "VariationalResult",
    "boltzmann",
    "boltzmann_bin_probabilities",
    "free_energy",
    "heat_capacity",
    "langevin_sample",
    "log_partition",
    "minimize_energy",
    "simpson",
    "tilted_double_well",
    "variational_energy",
]


# ---------------------------------------------------------------------------
# Quadrature and the variational principle
# ---------------------------------------------------------------------------


def _check_uniform_grid(grid, name: str = "grid") -> torch.Tensor:
    grid = as_float_tensor(grid, name)
    if grid.dim() != 1:
        raise ValueError(
            f"{name} must be a 1-D tensor of points; got shape"
            f" {tuple(grid.shape)}"
        )
    n = grid.shape[0]
    if n < 3 or n % 2 == 0:
        raise ValueError(
            f"{name} must hold an odd number (at least 3) of points for"
            f" Simpson's rule; got {n}"
        )
    check_no_nan(grid, name)
    steps = grid[1:] - grid[:-1]
    h = steps.mean()
    if not bool(h > 0) or bool(((steps - h).abs() > 1e-6 * h.abs()).any()):
        raise ValueError(
            f"{name} must be uniformly spaced and increasing (as"
            " torch.linspace makes it)"
        )
    return grid


def _simpson(y: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    # Composite Simpson weights h/3 * (1, 4, 2, 4, ..., 2, 4, 1) along the last dimension.
    return (
        h
        / 3
        * (
            y[..., 0]
            + y[..., -1]
            + 4 * y[..., 1:-1:2].sum(-1)
            + 2 * y[..., 2:-1:2].sum(-1)
        )
    )


def simpson(y, grid) -> torch.Tensor:
    r"""Composite Simpson's rule for :math:`\int y(x)\,dx` over a uniform grid.

    .. math::

        \int_{x_0}^{x_{2m}} y\,dx \approx \frac{h}{3}\Bigl(y_0 + 4\sum_{i\ \mathrm{odd}} y_i
        + 2\sum_{0<i<2m,\ i\ \mathrm{even}} y_i + y_{2m}\Bigr),

    exact for cubics, with an error of order :math:`h^4` for smooth
    integrands. Introduced in chapter 12.

    Parameters
    ----------
    y : Tensor of shape (..., n)
        Values of the integrand on the grid, along the last dimension.
    grid : Tensor of shape (n,)
        Uniformly spaced, increasing points; ``n`` odd and at least 3.

    Returns
    -------
    Tensor of shape (...)
        Differentiable with respect to ``y``.
    """
    grid = _check_uniform_grid(grid)
    y = as_float_tensor(y, "y")
    if y.dim() == 0 or y.shape[-1] != grid.shape[0]:
        raise ValueError(
            f"y must have {grid.shape[0]} values along its last dimension,"
            f" like grid; got shape {tuple(y.shape)}"
        )
    return _simpson(y, (grid[-1] - grid[0]) / (grid.shape[0] - 1))


def variational_energy(
    psi: Callable[[torch.Tensor], torch.Tensor],
    grid,
    potential,
    *,
    radial: bool = False,
) -> torch.Tensor:
    r"""Energy expectation of a real trial wavefunction, by quadrature (atomic units).

    .. math::

        E[\psi] = \frac{\int \bigl(\tfrac12 \psi'(x)^2 + V(x)\,\psi(x)^2\bigr)\, w(x)\, dx}
                       {\int \psi(x)^2\, w(x)\, dx},

    with :math:`w = 1` for a particle on a line and :math:`w = r^2` for a
    spherically symmetric (s-wave) state in three dimensions, where
    :math:`\tfrac12 \int |\nabla\psi|^2 d^3r = 2\pi \int \psi'(r)^2 r^2 dr`
    (the factor :math:`4\pi` cancels in the ratio). The kinetic term is the
    integrated-by-parts form of :math:`-\tfrac12 \psi''`, valid when
    :math:`\psi` vanishes at the ends of the grid. :math:`\psi'` is computed by
    autograd, with ``create_graph=True``, so the energy can be differentiated
    again with respect to any parameter ``psi`` closes over. By the
    variational principle, :math:`E[\psi]` is at least the ground-state
    energy. Introduced in chapter 12.

    Parameters
    ----------
    psi : callable
        Maps a tensor of points to the (unnormalised) amplitudes there,
        elementwise; normalisation is not needed.
    grid : Tensor of shape (n,)
        Uniform quadrature grid (``n`` odd), wide enough that ``psi`` has
        decayed at its ends; for ``radial=True`` it starts at ``r = 0``.
    potential : callable or Tensor of shape (n,)
        :math:`V` on the grid. With ``radial=True``, an infinite value at
        ``r = 0`` (the Coulomb potential) is allowed: the weight :math:`r^2`
        removes it.
    radial : bool
        Use the three-dimensional s-wave weight :math:`r^2`.

    Returns
    -------
    Tensor
        The energy, a 0-d tensor in the grid's dtype.
    """
    grid = _check_uniform_grid(grid)
    if radial and float(grid[0]) < 0:
        raise ValueError(
            "grid must start at r >= 0 when radial=True; got r ="
            f" {float(grid[0]):.6g}"
        )
    if not callable(psi):
        raise ValueError(
            "psi must be a callable mapping points to amplitudes; got"
            f" {type(psi).__name__}"
        )
    points = grid.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        amplitude = psi(points)
        if (
            not isinstance(amplitude, torch.Tensor)
            or amplitude.shape != grid.shape
        ):
            raise ValueError(
                "psi must return one amplitude per grid point, shape"
                f" {tuple(grid.shape)}"
            )
        (slope,) = torch.autograd.grad(
            amplitude.sum(), points, create_graph=True
        )
    v = (
        potential(grid.detach())
        if callable(potential)
        else as_float_tensor(potential, "potential")
    )
    if v.shape != grid.shape:
        raise ValueError(
            "potential must give one value per grid point, shape"
            f" {tuple(grid.shape)}; got {tuple(v.shape)}"
        )
    w = grid.detach() ** 2 if radial else torch.ones_like(grid)
    vw = torch.where(
        w == 0, torch.zeros_like(v), v * w
    )  # r^2 V(r) -> 0 at r = 0 for the Coulomb potential
    h = (grid[-1] - grid[0]).detach() / (grid.shape[0] - 1)
    numerator = _simpson(0.5 * slope**2 * w + vw * amplitude**2, h)
    return numerator / _simpson(amplitude**2 * w, h)


class VariationalResult(NamedTuple):
    """What :func:`minimize_energy` returns. Introduced in chapter 12."""

    parameter: torch.Tensor  #: the minimising parameter (detached)
    energy: float  #: the energy there
    history: list[
        float
    ]  #: the energy at every evaluation (L-BFGS steps and line search)


def minimize_energy(
    energy: Callable[[torch.Tensor], torch.Tensor],
    init,
    *,
    max_iter: int = 100,
    tolerance: float = 1e-13,
) -> VariationalResult:
    r"""Minimise an energy over a trial's parameters with autograd and L-BFGS.

    Finds :math:`\theta^\star = \arg\min_\theta E(\theta)` by L-BFGS with a
    strong-Wolfe line search; the gradients are autograd's. Parametrise
    positive quantities by their logarithm (a width :math:`a = e^{\theta}`)
    so that the search is unconstrained. Introduced in chapter 12.

    Parameters
    ----------
    energy : callable
        Maps the parameter tensor to a 0-d energy tensor (for example through
        :func:`variational_energy`).
    init : Tensor or number
        Starting parameter; float64 recommended.
    max_iter : int
        L-BFGS iterations at most.
    tolerance : float
        Stop when the largest gradient entry falls below this.

    Returns
    -------
    VariationalResult
        ``(parameter, energy, history)``.
    """
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(
            f"max_iter must be a positive integer; got {max_iter!r}"
        )
    theta = as_float_tensor(init, "init").detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tolerance,
        tolerance_change=0.0,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    history: list[float] = []

    def closure():
        optimizer.zero_grad()
        value = energy(theta)
        value.backward()
        history.append(value.item())
        return value

    optimizer.step(closure)
    final = energy(theta).item()
    return VariationalResult(theta.detach(), final, history)


# ---------------------------------------------------------------------------
# The Boltzmann distribution
# ---------------------------------------------------------------------------


def _energies_and_temperature(
    energies, temperature, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    energies = as_float_tensor(energies, "energies")
    if energies.dim() == 0:
        raise ValueError(
            "energies must have at least one dimension (the states); got a"
            " scalar"
        )
    if energies.numel() and bool(
        (torch.isnan(energies) | (energies == -math.inf)).any()
    ):
        raise ValueError(
            "energies contains NaN or -inf; expected energies in (-inf, inf]"
        )
    if not -energies.dim() <= dim < energies.dim():
        raise ValueError(
            "dim must index a dimension of energies (shape"
            f" {tuple(energies.shape)}); got {dim}"
        )
    if isinstance(temperature, torch.Tensor):
        t = temperature.to(device=energies.device, dtype=energies.dtype)
    else:
        try:
            t = torch.as_tensor(
                temperature, dtype=energies.dtype, device=energies.device
            )
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                "temperature must be a positive number or tensor; got"
                f" {temperature!r}"
            ) from err
    if (
        t.numel() == 0
        or bool(torch.isnan(t).any())
        or bool((t <= 0).any())
        or bool(torch.isinf(t).any())
    ):
        raise ValueError(
            f"temperature must be positive and finite; got {temperature!r}"
        )
    try:
        shape = torch.broadcast_shapes(energies.shape, t.shape)
    except RuntimeError as err:
        raise ValueError(
            f"temperature of shape {tuple(t.shape)} does not broadcast with"
            f" energies of shape {tuple(energies.shape)}"
        ) from err
    d = dim % len(shape)
    t_axis = d - (len(shape) - t.dim())
    if t.dim() and t_axis >= 0 and t.shape[t_axis] != 1:
        raise ValueError(
            f"temperature must not vary along dim={dim}, the states'"
            f" dimension; got shape {tuple(t.shape)}"
        )
    return energies, t


def boltzmann(energies, temperature, dim: int = -1) -> torch.Tensor:
    r"""Boltzmann probabilities of states with the given energies at temperature ``T``.

    .. math:: q_k = \frac{e^{-E_k / T}}{Z}, \qquad Z = \sum_j e^{-E_j / T},

    that is :math:`\mathrm{softmax}(-E/T)`: logits are negative energies over
    the temperature. :math:`T \to 0` puts all the mass on the lowest energy
    (an argmax), :math:`T \to \infty` spreads it uniformly. Adding a constant
    to every energy changes nothing. Introduced in chapter 12.

    Parameters
    ----------
    energies : Tensor of shape (..., K, ...)
        Energies of the states along ``dim``; ``+inf`` marks a forbidden state.
    temperature : float or Tensor
        Positive; a tensor must broadcast with ``energies`` and have size 1
        along ``dim`` (for example shape ``(M, 1)`` for ``M`` temperatures).
    dim : int
        The dimension that indexes the states.

    Returns
    -------
    Tensor
        Probabilities summing to one along ``dim``, in the broadcast shape.
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    return torch.softmax(-energies / t, dim=dim)


def log_partition(energies, temperature, dim: int = -1) -> torch.Tensor:
    r"""The log partition function :math:`\ln Z = \ln \sum_k e^{-E_k/T}`.

    It is the log-sum-exp of the logits :math:`-E/T`, computed stably (the
    shift by the largest logit of chapter 1), so that a temperature near zero
    does not underflow every term. Shifting all energies by :math:`c` shifts
    :math:`\ln Z` by :math:`-c/T`. Introduced in chapter 12.

    Parameters and broadcasting as for :func:`boltzmann`; the ``dim``
    dimension is reduced.
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    return torch.logsumexp(-energies / t, dim=dim)


def free_energy(energies, temperature, dim: int = -1) -> torch.Tensor:
    r"""The Helmholtz free energy :math:`F = -T \ln Z`.

    :math:`F = \langle E \rangle_q - T\,S(q)` for the Boltzmann distribution
    :math:`q`, and for any other distribution :math:`p`,
    :math:`\langle E \rangle_p - T\,S(p) = F + T\,\mathrm{KL}(p \,\|\, q) \ge F`
    (Gibbs' variational principle). Tends to the lowest energy as
    :math:`T \to 0`. Introduced in chapter 12.

    Parameters and broadcasting as for :func:`boltzmann`; the ``dim``
    dimension is reduced.
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    log_z = torch.logsumexp(-energies / t, dim=dim, keepdim=True)
    return (-t * log_z).squeeze(dim)


def heat_capacity(energies, temperature, dim: int = -1) -> torch.Tensor:
    r"""The heat capacity :math:`C = d\langle E \rangle / dT = \mathrm{Var}_q(E) / T^2`.

    The variance of the energy under the Boltzmann distribution, over
    :math:`T^2`: it peaks at the temperatures where the distribution changes
    fastest (where :math:`T` is comparable to the gaps between energies).
    Introduced in chapter 12.

    Parameters and broadcasting as for :func:`boltzmann` (forbidden states,
    ``+inf`` energies, are not allowed here); the ``dim`` dimension is reduced.
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    if bool(torch.isinf(energies).any()):
        raise ValueError("energies must be finite for the heat capacity")
    q = torch.softmax(-energies / t, dim=dim)
    mean = (q * energies).sum(dim, keepdim=True)
    variance = (q * (energies - mean) ** 2).sum(dim, keepdim=True)
    return (variance / t**2).squeeze(dim)


# ---------------------------------------------------------------------------
# Langevin dynamics on a loss landscape
# ---------------------------------------------------------------------------


def tilted_double_well(x, tilt: float = 0.3) -> torch.Tensor:
    r"""A one-dimensional landscape with two minima: :math:`L(x) = (x^2 - 1)^2 + \text{tilt}\cdot x`.

    With a positive tilt the well near :math:`x = -1` is the global minimum and
    the one near :math:`x = +1` a local one, separated by a barrier near
    :math:`x = 0`. Elementwise. Introduced in chapter 12.
    """
    x = as_float_tensor(x, "x")
    return (x**2 - 1) ** 2 + tilt * x


def _check_positive(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (0 < value < math.inf)
    ):
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def langevin_sample(
    loss: Callable[[torch.Tensor], torch.Tensor],
    x0,
    temperature,
    step_size: float,
    n_steps: int,
    *,
    burn_in: int = 0,
    thin: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Run unadjusted Langevin dynamics from ``x0`` and return the visited states.

    .. math:: x_{t+1} = x_t - \eta\, \nabla L(x_t) + \sqrt{2 \eta T_t}\; \xi_t,
              \qquad \xi_t \sim \mathcal N(0, I).

    For a constant temperature and a small step size :math:`\eta` the chain's
    stationary density is close to :math:`e^{-L(x)/T} / Z`; the discretisation
    leaves a bias of order :math:`\eta` (on a quadratic :math:`L = k x^2/2`
    the stationary variance is exactly :math:`T / (k (1 - \eta k / 2))`,
    not :math:`T/k`). Every element (or row) of ``x0`` is an independent chain
    when ``loss`` acts elementwise (or row-wise): the gradient is that of
    ``loss(x).sum()``. Introduced in chapter 12.

    Parameters
    ----------
    loss : callable
        Maps the states to their losses (any shape whose sum is the total).
    x0 : Tensor
        Initial states; their dtype and device are kept.
    temperature : float or sequence of length ``n_steps``
        A constant temperature :math:`T \ge 0`, or one per step (an annealing
        schedule). ``T = 0`` is plain gradient descent.
    step_size : float
        :math:`\eta > 0`.
    n_steps : int
        Number of updates.
    burn_in : int
        Number of first updates whose states are not returned; smaller than
        ``n_steps``.
    thin : int
        Return every ``thin``-th state after the burn-in, counted back from the
        final state.
    generator : torch.Generator, optional
        Source of the noise. The noise is drawn on the generator's device and
        moved to the states' device, so a CPU generator gives the same noise
        on a GPU.

    Returns
    -------
    Tensor of shape (n_kept, *x0.shape)
        The states after updates ``n_steps - j * thin`` that lie after
        ``burn_in``, oldest first; the last row is the final state.
    """
    step_size = _check_positive(step_size, "step_size")
    for value, name, low in (
        (n_steps, "n_steps", 1),
        (thin, "thin", 1),
        (burn_in, "burn_in", 0),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
        ):
            raise ValueError(
                f"{name} must be an integer >= {low}; got {value!r}"
            )
    if burn_in >= n_steps:
        raise ValueError(
            f"burn_in must be smaller than n_steps={n_steps}; got {burn_in}"
        )
    x = as_float_tensor(x0, "x0").detach().clone()
    check_no_nan(x, "x0")
    schedule = torch.as_tensor(temperature, dtype=torch.float64)
    if schedule.dim() == 0:
        schedule = schedule.expand(n_steps)
    if schedule.shape != (n_steps,):
        raise ValueError(
            f"temperature must be a number or a schedule of n_steps={n_steps}"
            f" values; got shape {tuple(schedule.shape)}"
        )
    if (
        bool(torch.isnan(schedule).any())
        or bool((schedule < 0).any())
        or bool(torch.isinf(schedule).any())
    ):
        raise ValueError("temperature must be finite and non-negative")
    noise_scale = torch.sqrt(2 * step_size * schedule).tolist()
    noise_device = generator.device if generator is not None else x.device
    kept = []
    for t in range(1, n_steps + 1):
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(leaf).sum(), leaf)
        noise = torch.randn(
            x.shape, generator=generator, dtype=x.dtype, device=noise_device
        ).to(x.device)
        x = x - step_size * grad + noise_scale[t - 1] * noise
        if t > burn_in and (n_steps - t) % thin == 0:
            kept.append(x)
    return torch.stack(kept)


def boltzmann_bin_probabilities(
    loss: Callable[[torch.Tensor], torch.Tensor],
    edges,
    temperature: float,
    points_per_bin: int = 32,
) -> torch.Tensor:
    r"""Probability of each bin under the density :math:`e^{-L(x)/T} / Z` on a line, by quadrature.

    .. math:: P_b = \frac{\int_{e_b}^{e_{b+1}} e^{-L(x)/T}\,dx}{\int_{e_0}^{e_B} e^{-L(x)/T}\,dx}

    with Simpson's rule on ``points_per_bin`` equal intervals inside each bin;
    the mass outside ``[e_0, e_B]`` is assumed negligible (choose the edges
    wide enough). This is the target a histogram of Langevin samples is
    compared with. Introduced in chapter 12.

    Parameters
    ----------
    loss : callable
        The landscape :math:`L`, elementwise.
    edges : Tensor of shape (B + 1,)
        Increasing bin edges (not necessarily uniform).
    temperature : float
        Positive.
    points_per_bin : int
        Even number of quadrature intervals per bin.

    Returns
    -------
    Tensor of shape (B,)
        Sums to one; float64, on the device of ``edges``.
    """
    temperature = _check_positive(temperature, "temperature")
    if (
        isinstance(points_per_bin, bool)
        or not isinstance(points_per_bin, int)
        or points_per_bin < 2
        or points_per_bin % 2
    ):
        raise ValueError(
            "points_per_bin must be an even integer >= 2; got"
            f" {points_per_bin!r}"
        )
    edges = as_float_tensor(edges, "edges").to(torch.float64)
    if edges.dim() != 1 or edges.shape[0] < 2:
        raise ValueError(
            "edges must be a 1-D tensor of at least 2 bin edges; got shape"
            f" {tuple(edges.shape)}"
        )
    check_no_nan(edges, "edges")
    widths = edges[1:] - edges[:-1]
    if not bool((widths > 0).all()):
        raise ValueError("edges must be strictly increasing")
    u = torch.linspace(
        0.0, 1.0, points_per_bin + 1, dtype=torch.float64, device=edges.device
    )
    x = (
        edges[:-1, None] + widths[:, None] * u
    )  # (B, points_per_bin + 1) nodes, bin by bin
    log_density = -loss(x) / temperature
    density = torch.exp(
        log_density - log_density.max()
    )  # the shift of log-sum-exp: no overflow at low T
    mass = _simpson(density, widths / points_per_bin)
    return mass / mass.sum()

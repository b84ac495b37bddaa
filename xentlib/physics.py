r"""The physics view of cross-entropy: variational energies, Boltzmann
distributions, Langevin dynamics.

Three ideas from statistical and quantum physics that the book's loss lives
beside (chapter 12):

* **The variational principle.** For any trial wavefunction :math:`\psi`,
  the energy expectation

  .. math::

      E[\psi] = \frac{\int \bigl(\tfrac12 |\psi'|^2 + V |\psi|^2\bigr)
                      \, w \, dx}{\int |\psi|^2\, w \, dx}
      \;\ge\; E_0

  (atomic units; :math:`w = 1` on a line, :math:`w = r^2` for an s-wave in
  three dimensions) bounds the ground-state energy :math:`E_0` from above.
  :func:`variational_energy` evaluates it by Simpson quadrature, with the
  derivative :math:`\psi'` taken by autograd, so that the energy can be
  minimised over the trial's parameters by :func:`minimize_energy`.
* **The Boltzmann distribution.** Energies :math:`E_k` at temperature
  :math:`T` give probabilities :math:`q_k = e^{-E_k/T} / Z` with the
  partition function :math:`Z = \sum_k e^{-E_k/T}`: a softmax of the logits
  :math:`z_k = -E_k/T` (:func:`boltzmann`, :func:`log_partition`,
  :func:`free_energy`, :func:`heat_capacity`). The cross-entropy of those
  logits against a target :math:`p` is :math:`(\langle E \rangle_p - F) /
  T`, a free-energy difference.
* **Langevin dynamics.** The unadjusted Langevin iteration
  :math:`x_{t+1} = x_t - \eta \nabla L(x_t) + \sqrt{2 \eta T}\, \xi_t`
  samples, up to a bias of order :math:`\eta`, the density
  :math:`\propto e^{-L(x)/T}` (:func:`langevin_sample`), which
  :func:`boltzmann_bin_probabilities` computes by quadrature for
  comparison. With a minibatch estimate of the gradient it is stochastic
  gradient Langevin dynamics.

Introduced in chapter 12.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._validation import as_float_tensor, check_finite
from .runtime import as_generator

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


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_positive(value, name: str) -> float:
    if not _is_real(value) or not (0 < value < math.inf):
        raise ValueError(
            f"{name} must be a finite positive number; got {value!r}"
        )
    return float(value)


def _check_int(value, name: str, low: int) -> int:
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def _check_callable(value, name: str, what: str) -> None:
    if not callable(value):
        raise ValueError(
            f"{name} must be a callable {what}; got {type(value).__name__}"
        )


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
    check_finite(grid, name)
    steps = grid[1:] - grid[:-1]
    h = steps.mean()
    if not bool(h > 0) or bool(((steps - h).abs() > 1e-6 * h.abs()).any()):
        raise ValueError(
            f"{name} must be uniformly spaced and increasing (as"
            " torch.linspace makes it)"
        )
    return grid


def _simpson(y: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    # Composite Simpson weights h/3 * (1, 4, 2, 4, ..., 2, 4, 1) along the
    # last dimension.
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
    r"""Composite Simpson's rule for :math:`\int y(x)\,dx` on a uniform grid.

    .. math::

        \int_{x_0}^{x_{2m}} y\,dx \approx \frac{h}{3}\Bigl(y_0
        + 4\sum_{i\ \mathrm{odd}} y_i
        + 2\sum_{0<i<2m,\ i\ \mathrm{even}} y_i + y_{2m}\Bigr),

    exact for cubics, with an error of order :math:`h^4` for smooth
    integrands. Integrating twice integrates over a rectangle. Introduced
    in chapter 12.

    Parameters
    ----------
    y : Tensor of shape (..., n)
        Finite values of the integrand on the grid, along the last
        dimension.
    grid : Tensor of shape (n,)
        Uniformly spaced, increasing points; ``n`` odd and at least 3.

    Returns
    -------
    Tensor of shape (...)
        Differentiable with respect to ``y``.

    Examples
    --------
    >>> x = torch.linspace(0.0, 1.0, 3, dtype=torch.float64)
    >>> simpson(x**3, x)
    tensor(0.2500, dtype=torch.float64)
    """
    grid = _check_uniform_grid(grid)
    y = as_float_tensor(y, "y")
    if y.dim() == 0 or y.shape[-1] != grid.shape[0]:
        raise ValueError(
            f"y must have {grid.shape[0]} values along its last dimension,"
            f" like grid; got shape {tuple(y.shape)}"
        )
    check_finite(y, "y")
    return _simpson(y, (grid[-1] - grid[0]) / (grid.shape[0] - 1))


def variational_energy(
    psi: Callable[[torch.Tensor], torch.Tensor],
    grid,
    potential,
    *,
    radial: bool = False,
) -> torch.Tensor:
    r"""Energy expectation of a real trial wavefunction, by quadrature
    (atomic units).

    .. math::

        E[\psi] = \frac{\int \bigl(\tfrac12 \psi'(x)^2
                        + V(x)\,\psi(x)^2\bigr)\, w(x)\, dx}
                       {\int \psi(x)^2\, w(x)\, dx},

    with :math:`w = 1` for a particle on a line and :math:`w = r^2` for a
    spherically symmetric (s-wave) state in three dimensions, where
    :math:`\tfrac12 \int |\nabla\psi|^2 d^3r = 2\pi \int \psi'(r)^2 r^2 dr`
    (the factor :math:`4\pi` cancels in the ratio). The kinetic term is the
    integrated-by-parts form of :math:`-\tfrac12 \psi''`, valid when
    :math:`\psi` vanishes at the ends of the grid. :math:`\psi'` is computed
    by autograd, with ``create_graph=True``, so the energy can be
    differentiated again with respect to any parameter ``psi`` closes over.
    By the variational principle, :math:`E[\psi]` is at least the
    ground-state energy. Introduced in chapter 12.

    Parameters
    ----------
    psi : callable
        Maps a tensor of points to the (unnormalised) amplitudes there,
        elementwise; normalisation is not needed, but it must not vanish
        everywhere.
    grid : Tensor of shape (n,)
        Uniform quadrature grid (``n`` odd), wide enough that ``psi`` has
        decayed at its ends; for ``radial=True`` it starts at ``r >= 0``.
    potential : callable or Tensor of shape (n,)
        :math:`V` on the grid, finite. With ``radial=True``, an infinite
        value at ``r = 0`` (the Coulomb potential) is allowed: the weight
        :math:`r^2` removes it.
    radial : bool
        Use the three-dimensional s-wave weight :math:`r^2`.

    Returns
    -------
    Tensor
        The energy, a 0-d tensor in the grid's dtype.
    """
    grid = _check_uniform_grid(grid)
    if not isinstance(radial, bool):
        raise ValueError(f"radial must be True or False; got {radial!r}")
    if radial and float(grid[0]) < 0:
        raise ValueError(
            "grid must start at r >= 0 when radial=True; got r ="
            f" {float(grid[0]):.6g}"
        )
    _check_callable(psi, "psi", "mapping points to amplitudes")
    points = grid.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        amplitude = psi(points)
        if (
            not isinstance(amplitude, torch.Tensor)
            or amplitude.shape != grid.shape
            or not amplitude.is_floating_point()
        ):
            raise ValueError(
                "psi must return one floating-point amplitude per grid"
                f" point, shape {tuple(grid.shape)}"
            )
        check_finite(amplitude, "psi(grid)")
        if amplitude.requires_grad:
            (slope,) = torch.autograd.grad(
                amplitude.sum(), points, create_graph=True
            )
        else:  # a trial that does not depend on the position
            slope = torch.zeros_like(amplitude)
    if callable(potential):
        v = potential(grid.detach())
        if not isinstance(v, torch.Tensor):
            raise ValueError(
                "potential must return a tensor of values on the grid; got"
                f" {type(v).__name__}"
            )
    else:
        v = as_float_tensor(potential, "potential")
    if v.shape != grid.shape:
        raise ValueError(
            "potential must give one value per grid point, shape"
            f" {tuple(grid.shape)}; got {tuple(v.shape)}"
        )
    w = grid.detach() ** 2 if radial else torch.ones_like(grid)
    # r^2 V(r) -> 0 at r = 0 for the Coulomb potential
    vw = torch.where(w == 0, torch.zeros_like(v), v * w)
    if bool(torch.isnan(v).any()) or not bool(torch.isfinite(vw).all()):
        raise ValueError(
            "potential must be finite on the grid (an infinity is allowed"
            " only at r = 0 with radial=True); got NaN or infinite values"
        )
    h = (grid[-1] - grid[0]).detach() / (grid.shape[0] - 1)
    norm = _simpson(amplitude**2 * w, h)
    if not bool(norm > 0):
        raise ValueError("psi must not vanish on the whole grid")
    numerator = _simpson(0.5 * slope**2 * w + vw * amplitude**2, h)
    return numerator / norm


@dataclass(frozen=True)
class VariationalResult:
    """What :func:`minimize_energy` returns. Introduced in chapter 12.

    Attributes
    ----------
    parameter : Tensor
        The minimising parameter (detached).
    energy : float
        The energy there.
    history : list of float
        The energy at every evaluation (L-BFGS steps and line search).
    """

    parameter: torch.Tensor
    energy: float
    history: list[float]


def minimize_energy(
    energy: Callable[[torch.Tensor], torch.Tensor],
    init,
    *,
    max_iter: int = 100,
    tolerance: float = 1e-13,
) -> VariationalResult:
    r"""Minimise an energy over a trial's parameters with autograd and
    L-BFGS.

    Finds :math:`\theta^\star = \arg\min_\theta E(\theta)` by L-BFGS with a
    strong-Wolfe line search; the gradients are autograd's. Parametrise
    positive quantities by their logarithm (a width :math:`a = e^{\theta}`)
    so that the search is unconstrained. The energy can be any
    differentiable objective: chapter 12 also minimises a population
    cross-entropy with it. Introduced in chapter 12.

    Parameters
    ----------
    energy : callable
        Maps the parameter tensor to a 0-d energy tensor (for example
        through :func:`variational_energy`).
    init : Tensor or number
        Finite starting parameter; float64 recommended.
    max_iter : int
        L-BFGS iterations at most.
    tolerance : float
        Stop when the largest gradient entry falls below this (positive).

    Returns
    -------
    VariationalResult

    Raises
    ------
    FloatingPointError
        When the energy or its gradient stops being finite.

    Examples
    --------
    >>> fit = minimize_energy(lambda t: ((t - 3.0) ** 2).sum(), [0.0])
    >>> round(fit.parameter.item(), 6), round(fit.energy, 12)
    (3.0, 0.0)
    """
    _check_callable(energy, "energy", "mapping the parameter to an energy")
    theta = as_float_tensor(init, "init").detach().clone()
    check_finite(theta, "init")
    max_iter = _check_int(max_iter, "max_iter", 1)
    tolerance = _check_positive(tolerance, "tolerance")
    theta.requires_grad_(True)
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
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(
                "energy must return a scalar tensor; got"
                f" {type(value).__name__}"
            )
        value = value.reshape(())
        value.backward()
        if not math.isfinite(value.item()) or not bool(
            torch.isfinite(theta.grad).all()
        ):
            raise FloatingPointError(
                f"the energy or its gradient became {value.item()} at"
                f" evaluation {len(history) + 1}, parameter"
                f" {theta.detach().tolist()}; start closer to the minimum or"
                " parametrise positive quantities by their logarithm"
            )
        history.append(value.item())
        return value

    optimizer.step(closure)
    final = energy(theta).item()
    return VariationalResult(theta.detach(), final, history)


# ---------------------------------------------------------------------------
# The Boltzmann distribution
# ---------------------------------------------------------------------------


def _energies_and_temperature(
    energies, temperature, dim
) -> tuple[torch.Tensor, torch.Tensor]:
    energies = as_float_tensor(energies, "energies")
    if energies.dim() == 0:
        raise ValueError(
            "energies must have at least one dimension (the states); got a"
            " scalar"
        )
    if not _is_int(dim) or not -energies.dim() <= dim < energies.dim():
        raise ValueError(
            "dim must index a dimension of energies (shape"
            f" {tuple(energies.shape)}); got {dim!r}"
        )
    if energies.shape[dim] == 0:
        raise ValueError(
            f"energies must hold at least one state along dim={dim}; got"
            f" shape {tuple(energies.shape)}"
        )
    if energies.numel() and bool(
        (torch.isnan(energies) | (energies == -math.inf)).any()
    ):
        raise ValueError(
            "energies contains NaN or -inf; expected energies in (-inf, inf]"
        )
    if energies.numel() and bool((energies == math.inf).all(dim=dim).any()):
        raise ValueError(
            "energies must hold at least one finite energy along"
            f" dim={dim}; every state is forbidden (+inf)"
        )
    if isinstance(temperature, bool):
        raise ValueError(
            "temperature must be a positive number or tensor; got"
            f" {temperature!r}"
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
    r"""Boltzmann probabilities of states with energies :math:`E_k` at
    temperature :math:`T`.

    .. math:: q_k = \frac{e^{-E_k / T}}{Z}, \qquad Z = \sum_j e^{-E_j / T},

    that is :math:`\mathrm{softmax}(-E/T)`: logits are negative energies
    over the temperature. :math:`T \to 0` puts all the mass on the lowest
    energy (an argmax), :math:`T \to \infty` spreads it uniformly. Adding a
    constant to every energy changes nothing. Introduced in chapter 12.

    Parameters
    ----------
    energies : Tensor of shape (..., K, ...)
        Energies of the states along ``dim``; ``+inf`` marks a forbidden
        state (at least one must be allowed); no NaN and no ``-inf``.
    temperature : float or Tensor
        Positive and finite; a tensor must broadcast with ``energies`` and
        have size 1 along ``dim`` (for example shape ``(M, 1)`` for ``M``
        temperatures).
    dim : int
        The dimension that indexes the states.

    Returns
    -------
    Tensor
        Probabilities summing to one along ``dim``, in the broadcast shape.

    Examples
    --------
    >>> boltzmann(torch.tensor([0.0, 1.0]), temperature=1.0)
    tensor([0.7311, 0.2689])
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    return torch.softmax(-energies / t, dim=dim)


def log_partition(energies, temperature, dim: int = -1) -> torch.Tensor:
    r"""The log partition function :math:`\ln Z = \ln \sum_k e^{-E_k/T}`.

    It is the log-sum-exp of the logits :math:`-E/T`, computed stably (the
    shift by the largest logit of chapter 1), so that a temperature near
    zero does not underflow every term. Shifting all energies by :math:`c`
    shifts :math:`\ln Z` by :math:`-c/T`. Introduced in chapter 12.

    Parameters and broadcasting as for :func:`boltzmann`; the ``dim``
    dimension is reduced.
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    return torch.logsumexp(-energies / t, dim=dim)


def free_energy(energies, temperature, dim: int = -1) -> torch.Tensor:
    r"""The Helmholtz free energy :math:`F = -T \ln Z`.

    :math:`F = \langle E \rangle_q - T\,S(q)` for the Boltzmann distribution
    :math:`q`, and for any other distribution :math:`p`,
    :math:`\langle E \rangle_p - T\,S(p) = F + T\,\mathrm{KL}(p \,\|\, q)
    \ge F` (Gibbs' variational principle). Tends to the lowest energy as
    :math:`T \to 0`. Introduced in chapter 12.

    Parameters and broadcasting as for :func:`boltzmann`; the ``dim``
    dimension is reduced.
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    log_z = torch.logsumexp(-energies / t, dim=dim, keepdim=True)
    return (-t * log_z).squeeze(dim)


def heat_capacity(energies, temperature, dim: int = -1) -> torch.Tensor:
    r"""The heat capacity :math:`C = d\langle E \rangle / dT
    = \mathrm{Var}_q(E) / T^2`.

    The variance of the energy under the Boltzmann distribution, over
    :math:`T^2`: it peaks at the temperatures where the distribution
    changes fastest (where :math:`T` is comparable to the gaps between
    energies). Introduced in chapter 12.

    Parameters and broadcasting as for :func:`boltzmann` (forbidden states,
    ``+inf`` energies, are not allowed here); the ``dim`` dimension is
    reduced.
    """
    energies, t = _energies_and_temperature(energies, temperature, dim)
    if bool(torch.isinf(energies).any()):
        raise ValueError(
            "energies must be finite for the heat capacity; got +inf"
        )
    q = torch.softmax(-energies / t, dim=dim)
    mean = (q * energies).sum(dim, keepdim=True)
    variance = (q * (energies - mean) ** 2).sum(dim, keepdim=True)
    return (variance / t**2).squeeze(dim)


# ---------------------------------------------------------------------------
# Langevin dynamics on a loss landscape
# ---------------------------------------------------------------------------


def tilted_double_well(x, tilt: float = 0.3) -> torch.Tensor:
    r"""A landscape with two minima, :math:`L(x) = (x^2 - 1)^2
    + \text{tilt}\cdot x`.

    With a positive tilt the well near :math:`x = -1` is the global minimum
    and the one near :math:`x = +1` a local one, separated by a barrier
    near :math:`x = 0`. Elementwise. Introduced in chapter 12.

    Parameters
    ----------
    x : Tensor or number
        Finite positions.
    tilt : float
        A finite slope.

    Examples
    --------
    >>> tilted_double_well(torch.tensor([-1.0, 0.0, 1.0]), tilt=0.3)
    tensor([-0.3000,  1.0000,  0.3000])
    """
    x = as_float_tensor(x, "x")
    check_finite(x, "x")
    if not _is_real(tilt) or not math.isfinite(tilt):
        raise ValueError(f"tilt must be a finite number; got {tilt!r}")
    return (x**2 - 1) ** 2 + tilt * x


def _temperature_schedule(temperature, n_steps: int) -> list[float]:
    message = (
        "temperature must be a finite number >= 0 or a schedule of"
        f" n_steps={n_steps} such numbers; got {temperature!r}"
    )
    if isinstance(temperature, (bool, str)):
        raise ValueError(message)
    try:
        schedule = torch.as_tensor(temperature, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(message) from None
    if schedule.dim() == 0:
        schedule = schedule.expand(n_steps)
    if schedule.shape != (n_steps,):
        raise ValueError(
            "temperature must be a number or a schedule of"
            f" n_steps={n_steps} values; got shape {tuple(schedule.shape)}"
        )
    if not bool(torch.isfinite(schedule).all()) or bool((schedule < 0).any()):
        raise ValueError(message)
    return schedule.tolist()


def langevin_sample(
    loss: Callable[[torch.Tensor], torch.Tensor],
    x0,
    temperature,
    step_size: float,
    n_steps: int,
    *,
    burn_in: int = 0,
    thin: int = 1,
    rng=None,
) -> torch.Tensor:
    r"""Run unadjusted Langevin dynamics from ``x0`` and return the visited
    states.

    .. math:: x_{t+1} = x_t - \eta\, \nabla L(x_t)
              + \sqrt{2 \eta T_t}\; \xi_t,
              \qquad \xi_t \sim \mathcal N(0, I).

    For a constant temperature and a small step size :math:`\eta` the
    chain's stationary density is close to :math:`e^{-L(x)/T} / Z`; the
    discretisation leaves a bias of order :math:`\eta` (on a quadratic
    :math:`L = k x^2/2` the stationary variance is exactly
    :math:`T / (k (1 - \eta k / 2))`, not :math:`T/k`). Every element (or
    row) of ``x0`` is an independent chain when ``loss`` acts elementwise
    (or row-wise): the gradient is that of ``loss(x).sum()``. A ``loss``
    that draws a minibatch at each call turns this into stochastic
    gradient Langevin dynamics (Welling and Teh 2011). Introduced in
    chapter 12.

    Parameters
    ----------
    loss : callable
        Maps the states to their losses (any shape whose sum is the total).
    x0 : Tensor
        Finite initial states; their dtype and device are kept.
    temperature : float or sequence of length ``n_steps``
        A constant temperature :math:`T \ge 0`, or one per step (an
        annealing schedule). ``T = 0`` is plain gradient descent.
    step_size : float
        :math:`\eta > 0`.
    n_steps : int
        Number of updates, at least 1.
    burn_in : int
        Number of first updates whose states are not returned; smaller than
        ``n_steps``.
    thin : int
        Return every ``thin``-th state after the burn-in, counted back from
        the final state.
    rng : int, torch.Generator or None
        The noise's randomness (see :func:`xentlib.runtime.as_generator`).
        The noise is drawn on the CPU and moved to the states' device, so a
        seed gives the same noise on a GPU.

    Returns
    -------
    Tensor of shape (n_kept, *x0.shape)
        The states after updates ``n_steps - j * thin`` that lie after
        ``burn_in``, oldest first; the last row is the final state.

    Raises
    ------
    FloatingPointError
        When a state stops being finite (a step size too large for the
        landscape's curvature); the message names the step and the step
        size.
    """
    _check_callable(loss, "loss", "mapping states to their losses")
    step_size = _check_positive(step_size, "step_size")
    n_steps = _check_int(n_steps, "n_steps", 1)
    thin = _check_int(thin, "thin", 1)
    burn_in = _check_int(burn_in, "burn_in", 0)
    if burn_in >= n_steps:
        raise ValueError(
            f"burn_in must be smaller than n_steps={n_steps}; got {burn_in}"
        )
    x = as_float_tensor(x0, "x0").detach().clone()
    check_finite(x, "x0")
    schedule = _temperature_schedule(temperature, n_steps)
    generator = as_generator(rng)
    kept = []
    for t in range(1, n_steps + 1):
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(leaf).sum(), leaf)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = (
            x
            - step_size * grad
            + math.sqrt(2 * step_size * schedule[t - 1]) * noise.to(x.device)
        )
        if not bool(torch.isfinite(x).all()):
            raise FloatingPointError(
                f"the Langevin chain diverged at step {t} of {n_steps}: a"
                " state is no longer finite. Lower the step size"
                f" (step_size={step_size:g}) or check the loss"
            )
        if t > burn_in and (n_steps - t) % thin == 0:
            kept.append(x)
    return torch.stack(kept)


def boltzmann_bin_probabilities(
    loss: Callable[[torch.Tensor], torch.Tensor],
    edges,
    temperature: float,
    points_per_bin: int = 32,
) -> torch.Tensor:
    r"""Probability of each bin under the density :math:`e^{-L(x)/T} / Z`
    on a line, by quadrature.

    .. math:: P_b = \frac{\int_{e_b}^{e_{b+1}} e^{-L(x)/T}\,dx}
                         {\int_{e_0}^{e_B} e^{-L(x)/T}\,dx}

    with Simpson's rule on ``points_per_bin`` equal intervals inside each
    bin; the mass outside :math:`[e_0, e_B]` is assumed negligible (choose
    the edges wide enough). This is the target a histogram of Langevin
    samples is compared with. Introduced in chapter 12.

    Parameters
    ----------
    loss : callable
        The landscape :math:`L`, elementwise.
    edges : Tensor of shape (B + 1,)
        Finite, strictly increasing bin edges (not necessarily uniform).
    temperature : float
        Positive and finite.
    points_per_bin : int
        Even number of quadrature intervals per bin.

    Returns
    -------
    Tensor of shape (B,)
        Sums to one; float64, on the device of ``edges``.
    """
    _check_callable(loss, "loss", "mapping positions to losses")
    temperature = _check_positive(temperature, "temperature")
    if not _is_int(points_per_bin) or points_per_bin < 2 or points_per_bin % 2:
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
    check_finite(edges, "edges")
    widths = edges[1:] - edges[:-1]
    if not bool((widths > 0).all()):
        raise ValueError("edges must be strictly increasing")
    u = torch.linspace(
        0.0, 1.0, points_per_bin + 1, dtype=torch.float64, device=edges.device
    )
    # (B, points_per_bin + 1) nodes, bin by bin
    x = edges[:-1, None] + widths[:, None] * u
    values = loss(x)
    if not isinstance(values, torch.Tensor) or bool(torch.isnan(values).any()):
        raise ValueError("loss must return a tensor without NaN on the bins")
    log_density = -values.to(torch.float64) / temperature
    # the shift of log-sum-exp: no overflow at low T
    density = torch.exp(log_density - log_density.max())
    mass = _simpson(density, widths / points_per_bin)
    return mass / mass.sum()

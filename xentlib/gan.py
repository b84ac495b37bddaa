r"""Generative adversarial networks: two cross-entropies playing against
each other.

A discriminator is a binary classifier trained with binary cross-entropy to
tell real samples (label 1) from generated ones (label 0). The generator is
trained against it, either with the minimax objective, which *minimises*
:math:`\log(1 - D(G(z)))` and whose gradient vanishes while the
discriminator rejects the fakes confidently (the "saturating" loss), or
with the non-saturating objective, which minimises :math:`-\log D(G(z))`
and keeps a full-strength gradient exactly then.

This module holds what the chapter runs: a seeded ternary "phase diagram"
(material compositions on the 2-simplex clustered around known phases),
small MLP generator and discriminator, the two losses computed from logits
(exact at infinite logits), the trainers (:func:`fit_discriminator`,
:func:`fit_generator`, :func:`fit_gan`, with their settings in one
:class:`GANConfig`), and two measures of a generator's quality: the number
of known modes it covers and the energy distance of its samples to real
ones.

Introduced in chapter 9.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ._validation import (
    check_finite,
    check_float_tensor,
    check_no_nan,
    check_reduction,
    compute_dtype,
    reduce_rows,
)
from .models import mlp
from .runtime import as_generator
from .training import History

__all__ = [
    "GENERATOR_LOSSES",
    "PHASE_NAMES",
    "TERNARY_PHASES",
    "Discriminator",
    "GANConfig",
    "Generator",
    "discriminator_loss",
    "energy_distance",
    "fit_discriminator",
    "fit_gan",
    "fit_generator",
    "generator_loss",
    "mode_counts",
    "modes_covered",
    "sample_ternary_phases",
    "ternary_axes",
    "ternary_to_cartesian",
]

#: The two generator objectives of :func:`generator_loss`.
GENERATOR_LOSSES = ("saturating", "non_saturating")

#: Fractions (A, B, C) of the seven phases of the book's made-up ternary
#: system A-B-C: three terminal solid solutions rich in one element, the
#: three equiatomic binary compounds AB, BC and AC, and an ordered ternary
#: compound A2BC (the stoichiometry of a Heusler phase X2YZ).
TERNARY_PHASES = torch.tensor(
    [
        [0.80, 0.10, 0.10],
        [0.10, 0.80, 0.10],
        [0.10, 0.10, 0.80],
        [0.45, 0.45, 0.10],
        [0.10, 0.45, 0.45],
        [0.45, 0.10, 0.45],
        [0.50, 0.25, 0.25],
    ],
    dtype=torch.float64,
)

#: Names of the rows of :data:`TERNARY_PHASES`.
PHASE_NAMES = ("A-rich", "B-rich", "C-rich", "AB", "BC", "AC", "A2BC")


def _check_int(value, name: str, low: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
    ):
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def _check_positive(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 < value < math.inf
    ):
        raise ValueError(
            f"{name} must be a positive finite number; got {value!r}"
        )
    return float(value)


# ---------------------------------------------------------------------------
# Data: compositions on the simplex
# ---------------------------------------------------------------------------


def sample_ternary_phases(
    n: int,
    *,
    phases: torch.Tensor | None = None,
    spread: float = 0.1,
    rng: int | torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw compositions of a ternary system clustered around known phases.

    Each sample picks a phase :math:`k` uniformly at random and draws a
    logistic-normal composition around the phase's composition :math:`c_k`,

    .. math::

        x = \mathrm{softmax}(\ln c_k + s\,\varepsilon), \qquad
        \varepsilon \sim \mathcal{N}(0, I_3),

    so that :math:`x` lies on the simplex (non-negative fractions summing to
    one), its log-ratios are Gaussian (Aitchison's model of compositional
    data), and :math:`\varepsilon = 0` gives exactly :math:`c_k`. Explained
    in chapter 9.

    Parameters
    ----------
    n : int
        Number of samples.
    phases : torch.Tensor, optional
        Phase compositions of shape ``(K, D)``, positive rows summing to
        one; defaults to :data:`TERNARY_PHASES` (``K = 7``, ``D = 3``).
    spread : float
        Standard deviation :math:`s` of the log-ratio noise.
    rng : int, torch.Generator or None
        The draws' randomness (see :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    compositions : torch.Tensor
        Shape ``(n, D)``, float64, on the CPU.
    labels : torch.Tensor
        Shape ``(n,)``, the phase index of each sample.

    Examples
    --------
    >>> x, labels = sample_ternary_phases(5, rng=0)
    >>> x.shape, bool(torch.allclose(x.sum(1), torch.ones(5).double()))
    (torch.Size([5, 3]), True)
    """
    _check_int(n, "n", 0)
    spread = _check_positive(spread, "spread")
    centres = TERNARY_PHASES if phases is None else phases
    if (
        not isinstance(centres, torch.Tensor)
        or centres.dim() != 2
        or centres.shape[0] < 1
        or centres.shape[1] < 2
    ):
        got = (
            tuple(centres.shape)
            if isinstance(centres, torch.Tensor)
            else type(centres).__name__
        )
        raise ValueError(
            "phases must be a tensor of shape (K, D) with K >= 1 and D >= 2;"
            f" got {got}"
        )
    centres = centres.to(device="cpu", dtype=torch.float64)
    check_finite(centres, "phases")
    if bool((centres <= 0).any()) or bool(
        ((centres.sum(1) - 1).abs() > 1e-6).any()
    ):
        raise ValueError(
            "phases must hold positive fractions that sum to one in each row"
        )
    generator = as_generator(rng)
    labels = torch.randint(0, centres.shape[0], (n,), generator=generator)
    noise = torch.randn(
        n, centres.shape[1], generator=generator, dtype=torch.float64
    )
    return torch.softmax(centres.log()[labels] + spread * noise, dim=1), labels


def ternary_to_cartesian(compositions: torch.Tensor) -> torch.Tensor:
    r"""Map ternary compositions to points in an equilateral triangle of
    side 1.

    A composition :math:`(a, b, c)` goes to
    :math:`(x, y) = (b + c/2,\ \tfrac{\sqrt3}{2} c)`, so that pure A, B and
    C sit at :math:`(0, 0)`, :math:`(1, 0)` and :math:`(1/2, \sqrt3/2)`.
    On the simplex the map is an isometry up to the factor
    :math:`1/\sqrt2`: Euclidean distances between compositions in
    :math:`\mathbb{R}^3` are :math:`\sqrt2` times the distances between
    their points in the triangle. Explained in chapter 9.

    Parameters
    ----------
    compositions : torch.Tensor
        Finite floating-point fractions, shape ``(..., 3)``.

    Returns
    -------
    torch.Tensor
        Shape ``(..., 2)``, same dtype and device.

    Examples
    --------
    >>> ternary_to_cartesian(torch.tensor([0.0, 1.0, 0.0]))
    tensor([1., 0.])
    """
    check_float_tensor(compositions, "compositions", what="compositions")
    if compositions.dim() == 0 or compositions.shape[-1] != 3:
        raise ValueError(
            "compositions must have shape (..., 3); got "
            f"{tuple(compositions.shape)}"
        )
    check_finite(compositions, "compositions")
    b, c = compositions[..., 1], compositions[..., 2]
    return torch.stack([b + c / 2, c * (math.sqrt(3) / 2)], dim=-1)


def ternary_axes(ax, labels=("A", "B", "C"), grid: int = 5):
    """Draw the frame of a ternary diagram on a matplotlib ``ax``.

    Draws the triangle of :func:`ternary_to_cartesian`, faint grid lines of
    constant fraction every ``1/grid``, and the corner labels, and hides the
    Cartesian axes; points from :func:`ternary_to_cartesian` can then be
    plotted on ``ax`` directly. Used in chapter 9.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    labels : sequence of three str
        Names of the three components, for the corners (0, 0), (1, 0) and
        (1/2, sqrt(3)/2).
    grid : int
        Number of grid intervals per side; 0 or 1 draws no grid.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    if not all(hasattr(ax, name) for name in ("plot", "text", "axis")):
        raise ValueError(
            f"ax must be a matplotlib Axes; got {type(ax).__name__}"
        )
    if (
        isinstance(labels, str)
        or not hasattr(labels, "__len__")
        or len(labels) != 3
        or not all(isinstance(label, str) for label in labels)
    ):
        raise ValueError(
            f"labels must be three strings, one per corner; got {labels!r}"
        )
    grid = _check_int(grid, "grid", 0)
    corners = torch.eye(3, dtype=torch.float64)
    frame = ternary_to_cartesian(corners[[0, 1, 2, 0]])
    ax.plot(frame[:, 0], frame[:, 1], color="black", lw=0.8)
    for i in range(1, grid):
        f = i / grid
        for k in range(3):
            # The line where component k equals f, between the two edges
            # that meet at corner k.
            a = corners[k] * f + corners[(k + 1) % 3] * (1 - f)
            b = corners[k] * f + corners[(k + 2) % 3] * (1 - f)
            seg = ternary_to_cartesian(torch.stack([a, b]))
            ax.plot(seg[:, 0], seg[:, 1], color="0.85", lw=0.5, zorder=0)
    offsets = [(-0.04, -0.05), (0.04, -0.05), (0.0, 0.04)]
    for (x, y), (dx, dy), label in zip(
        ternary_to_cartesian(corners).tolist(), offsets, labels
    ):
        ax.text(x + dx, y + dy, label, ha="center", va="center")
    ax.set_aspect("equal")
    ax.set_xlim(-0.08, 1.08)
    ax.set_ylim(-0.09, 0.95)
    ax.axis("off")
    return ax


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def _mlp(n_in: int, hidden: int, depth: int, n_out: int) -> nn.Sequential:
    return mlp(
        n_in,
        n_out,
        hidden=hidden,
        depth=depth,
        activation=lambda: nn.LeakyReLU(0.2),
    )


class Generator(nn.Module):
    r"""An MLP that maps Gaussian noise to compositions on the simplex.

    :math:`G(z) = \mathrm{softmax}(\mathrm{MLP}(z))` with
    :math:`z \sim \mathcal{N}(0, I)`: the softmax output makes every sample
    a valid composition (non-negative fractions that sum to one). Explained
    in chapter 9.

    Parameters
    ----------
    latent_dim : int
        Dimension of the noise :math:`z`.
    hidden : int
        Width of the hidden layers (LeakyReLU activations).
    depth : int
        Number of hidden layers.
    n_components : int
        Number of components of a composition (3 for a ternary system).
    """

    def __init__(
        self,
        latent_dim: int = 4,
        hidden: int = 64,
        depth: int = 2,
        n_components: int = 3,
    ):
        super().__init__()
        self.latent_dim = _check_int(latent_dim, "latent_dim", 1)
        self.n_components = _check_int(n_components, "n_components", 2)
        _check_int(hidden, "hidden", 1)
        _check_int(depth, "depth", 0)
        self.net = _mlp(latent_dim, hidden, depth, n_components)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Compositions ``(N, n_components)`` for noise ``(N, latent_dim)``."""
        return torch.softmax(self.net(z), dim=-1)

    def noise(
        self, n: int, rng: int | torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` noise vectors, drawn on the CPU from ``rng`` and moved to
        the model's device."""
        n = _check_int(n, "n", 0)
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=as_generator(rng))
        return z.to(device)

    @torch.no_grad()
    def sample(
        self, n: int, rng: int | torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` generated compositions, shape ``(n, n_components)``,
        without gradients."""
        return self(self.noise(n, rng))


class Discriminator(nn.Module):
    r"""An MLP that scores a sample with one logit:
    :math:`D(x) = \sigma(\mathrm{MLP}(x))`.

    The forward pass returns the logit :math:`\mathrm{MLP}(x)`, shape
    ``(N,)``; the losses take logits, so that no probability is ever formed
    and logged. Explained in chapter 9.

    Parameters
    ----------
    n_features : int
        Dimension of a sample (3 for a ternary composition).
    hidden : int
        Width of the hidden layers (LeakyReLU activations).
    depth : int
        Number of hidden layers.
    """

    def __init__(self, n_features: int = 3, hidden: int = 64, depth: int = 2):
        super().__init__()
        self.n_features = _check_int(n_features, "n_features", 1)
        _check_int(hidden, "hidden", 1)
        _check_int(depth, "depth", 0)
        self.net = _mlp(n_features, hidden, depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N,)`` for samples ``x`` of shape ``(N, n_features)``."""
        return self.net(x).squeeze(-1)


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def _check_logits(x, name: str, reduction: str) -> torch.Tensor:
    """Floating logits without NaN (infinities are exact limits)."""
    check_float_tensor(x, name, what="discriminator logits")
    check_no_nan(x, name)
    if reduction == "mean" and x.numel() == 0:
        raise ValueError(f"{name} is empty; a mean needs at least one logit")
    return x.to(compute_dtype(x.dtype))


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Binary cross-entropy of a discriminator: real samples are class 1,
    generated ones class 0.

    With :math:`D = \sigma(\ell)`,

    .. math::

        L_D &= \mathrm{BCE}(\ell_{\mathrm{real}}, 1)
              + \mathrm{BCE}(\ell_{\mathrm{fake}}, 0) \\
            &= \overline{\mathrm{softplus}(-\ell_{\mathrm{real}})}
              + \overline{\mathrm{softplus}(\ell_{\mathrm{fake}})},

    where the bars are means over each batch (``"mean"``) or sums
    (``"sum"``). Written with softplus, it is exact for infinite logits
    (:math:`+\infty` on a real sample, :math:`-\infty` on a fake, cost 0)
    with finite gradients. For a fixed generator its minimiser over all
    functions is :math:`D^* = p_{\mathrm{data}} / (p_{\mathrm{data}} +
    p_G)`. Explained in chapter 9.

    Parameters
    ----------
    real_logits : torch.Tensor
        Discriminator logits on real samples, shape ``(N,)``; no NaN.
    fake_logits : torch.Tensor
        Discriminator logits on generated samples, shape ``(M,)``; ``M`` may
        differ from ``N``.
    reduction : {"mean", "sum"}
        How each of the two terms reduces over its batch.

    Returns
    -------
    torch.Tensor
        A scalar, in the dtype of ``real_logits``.

    Examples
    --------
    >>> inf = float("inf")
    >>> discriminator_loss(torch.tensor([inf]), torch.tensor([-inf]))
    tensor(0.)
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(
            "reduction must be 'mean' or 'sum' (the two batches may differ "
            f"in size); got {reduction!r}"
        )
    real = _check_logits(real_logits, "real_logits", reduction)
    fake = _check_logits(fake_logits, "fake_logits", reduction)
    loss = reduce_rows(F.softplus(-real), reduction) + reduce_rows(
        F.softplus(fake), reduction
    )
    return loss.to(real_logits.dtype)


def generator_loss(
    fake_logits: torch.Tensor,
    kind: str = "non_saturating",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The generator's loss on the discriminator's logits for its samples.

    With :math:`\ell` the logit and :math:`D = \sigma(\ell)`:

    * ``"saturating"``, the minimax objective of the original GAN: minimise
      :math:`\log(1 - D) = -\mathrm{softplus}(\ell)`. Its derivative
      :math:`-\sigma(\ell) = -D` vanishes when the discriminator rejects
      the sample (:math:`D \to 0`).
    * ``"non_saturating"``: minimise :math:`-\log D =
      \mathrm{softplus}(-\ell)`. Its derivative
      :math:`\sigma(\ell) - 1 = -(1 - D)` tends to :math:`-1` there.

    Both are computed with softplus: finite for finite logits, exact at
    infinite ones (a logit of :math:`-\infty` gives 0 for the saturating
    loss, :math:`+\infty` gives 0 for the non-saturating one), with finite
    gradients. Explained in chapter 9.

    Parameters
    ----------
    fake_logits : torch.Tensor
        Discriminator logits on generated samples, any shape; no NaN.
    kind : {"saturating", "non_saturating"}
        Which objective.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    torch.Tensor
        A scalar, or one loss per logit for ``reduction="none"``.

    Examples
    --------
    >>> generator_loss(torch.tensor([float("inf")]), "non_saturating")
    tensor(0.)
    """
    if kind not in GENERATOR_LOSSES:
        raise ValueError(
            f"kind must be one of {GENERATOR_LOSSES}; got {kind!r}"
        )
    check_reduction(reduction)
    x = _check_logits(fake_logits, "fake_logits", reduction)
    if kind == "saturating":
        loss = -F.softplus(x)
    else:
        loss = F.softplus(-x)
    return reduce_rows(loss, reduction).to(fake_logits.dtype)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GANConfig:
    """How the networks of a GAN are trained: the settings of the
    optimisers and of the alternating steps, checked once.

    Parameters
    ----------
    steps : int
        Generator steps (for :func:`fit_discriminator`, discriminator
        steps); 0 trains nothing.
    lr : float
        Learning rate of both optimisers, finite and positive.
    batch_size : int
        Size of every real, generated and noise batch.
    betas : tuple of two floats
        Adam's betas, each in [0, 1) (default ``(0.5, 0.999)``, as is
        usual for GANs).
    optimizer : {"adam", "sgd"}
        Adam, or plain stochastic gradient descent (no momentum).
    d_steps : int
        Discriminator updates per generator update in :func:`fit_gan`.

    Examples
    --------
    >>> config = GANConfig(steps=100, lr=1e-3, batch_size=64)
    >>> config.betas, config.optimizer, config.d_steps
    ((0.5, 0.999), 'adam', 1)
    """

    steps: int
    lr: float = 1e-3
    batch_size: int = 256
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: str = "adam"
    d_steps: int = 1

    def __post_init__(self) -> None:
        _check_int(self.steps, "steps", 0)
        _check_positive(self.lr, "lr")
        _check_int(self.batch_size, "batch_size", 1)
        betas = self.betas
        if (
            not isinstance(betas, tuple)
            or len(betas) != 2
            or not all(
                isinstance(b, numbers.Real)
                and not isinstance(b, bool)
                and 0 <= b < 1
                for b in betas
            )
        ):
            raise ValueError(
                f"betas must be a pair of numbers in [0, 1); got {betas!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(
                f"optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}"
            )
        _check_int(self.d_steps, "d_steps", 1)


def _check_nets(generator, discriminator) -> None:
    if not isinstance(generator, Generator):
        raise ValueError(
            f"generator must be a Generator; got {type(generator).__name__}"
        )
    if not isinstance(discriminator, nn.Module):
        raise ValueError(
            "discriminator must be a torch.nn.Module; got "
            f"{type(discriminator).__name__}"
        )


def _check_config(config) -> GANConfig:
    if not isinstance(config, GANConfig):
        raise ValueError(
            f"config must be a GANConfig; got {type(config).__name__}"
        )
    return config


def _check_loss(loss: str) -> str:
    if loss not in GENERATOR_LOSSES:
        raise ValueError(
            f"loss must be one of {GENERATOR_LOSSES}; got {loss!r}"
        )
    return loss


def _check_real(real, generator: Generator) -> torch.Tensor:
    shape = (generator.n_components,)
    if (
        not isinstance(real, torch.Tensor)
        or not real.is_floating_point()
        or real.dim() != 2
        or real.shape[0] == 0
        or real.shape[1:] != shape
    ):
        got = (
            f"shape {tuple(real.shape)}, dtype {real.dtype}"
            if isinstance(real, torch.Tensor)
            else type(real).__name__
        )
        raise ValueError(
            "real must be a non-empty floating-point tensor of samples of "
            f"shape (N, {generator.n_components}); got {got}"
        )
    check_finite(real, "real")
    first = next(generator.parameters())
    return real.to(device=first.device, dtype=first.dtype)


def _optimizer(params, config: GANConfig) -> torch.optim.Optimizer:
    params = list(params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr)
    # One fused kernel for all parameters where torch has one: the networks
    # are small, so the optimiser's per-tensor overhead would dominate.
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(
        params, lr=config.lr, betas=config.betas, fused=fused or None
    )


def _discriminator_update(discriminator, generator, real, opt, batch, rng):
    """One step on the discriminator's cross-entropy; returns its loss and
    the mean D on the real and on the generated batch (detached)."""
    index = torch.randint(0, real.shape[0], (batch,), generator=rng)
    with torch.no_grad():
        fake = generator(generator.noise(batch, rng))
    # One forward pass over both batches: real rows first, then fakes.
    logits = discriminator(torch.cat([real[index.to(real.device)], fake]))
    real_logits, fake_logits = logits[:batch], logits[batch:]
    loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    d = torch.sigmoid(logits.detach())
    return loss.detach(), d[:batch].mean(), d[batch:].mean()


def _generator_update(generator, discriminator, opt, params, loss, batch, rng):
    """One step on the generator's loss; returns the loss, the gradient's
    norm, the mean step per parameter in units of the learning rate, and
    the mean D(G(z)) of the batch (detached)."""
    fake_logits = discriminator(generator(generator.noise(batch, rng)))
    if loss == "saturating":
        value = -F.softplus(fake_logits).mean()
    else:
        value = F.softplus(-fake_logits).mean()
    # The generator's gradient only: the discriminator's .grad is untouched.
    grads = torch.autograd.grad(value, params)
    before = torch.cat([p.detach().flatten() for p in params])
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()
    after = torch.cat([p.detach().flatten() for p in params])
    step = (after - before).abs().mean() / opt.param_groups[0]["lr"]
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    d_fake = torch.sigmoid(fake_logits.detach()).mean()
    return value.detach(), norm, step, d_fake


def _diverged(step: int, config: GANConfig, what: str) -> FloatingPointError:
    return FloatingPointError(
        f"training diverged at step {step} of {config.steps}: {what}. Lower "
        f"the learning rate (lr={config.lr:g}) or check the inputs for NaN "
        "and inf"
    )


def _history(names: tuple[str, ...], records, config) -> History:
    """A History from one stacked row of numbers per step; the first name
    is the loss."""
    if not records:
        return History(loss=[], logs={name: [] for name in names[1:]})
    table = torch.stack(records).cpu().double()
    for step, row in enumerate(table, start=1):
        if not bool(torch.isfinite(row).all()):
            raise _diverged(step, config, "a loss stopped being finite")
    columns = table.T.tolist()
    return History(loss=columns[0], logs=dict(zip(names[1:], columns[1:])))


def fit_discriminator(
    discriminator: nn.Module,
    generator: Generator,
    real: torch.Tensor,
    *,
    config: GANConfig,
    rng: int | torch.Generator | None = None,
) -> History:
    """Train the discriminator alone, in place, against a fixed generator.

    Early in GAN training the generator's samples are poor and the
    discriminator soon rejects them with confidence; this puts a
    discriminator in that state, so that the generator's losses can be
    compared there. Each of ``config.steps`` steps draws a real batch (with
    replacement) and a generated one and takes one step on
    :func:`discriminator_loss`. Explained in chapter 9.

    Parameters
    ----------
    discriminator : nn.Module
        Trained in place.
    generator : Generator
        Left unchanged.
    real : torch.Tensor
        Real samples, shape ``(N, n_components)``.
    config : GANConfig
        Steps, learning rate, batch size, optimiser (``d_steps`` unused).
    rng : int, torch.Generator or None
        The batches' and the noise's randomness.

    Returns
    -------
    History
        ``loss``: the discriminator's loss at each step; ``logs``:
        ``"d_real"`` and ``"d_fake"``, its mean verdict on each batch.
    """
    _check_nets(generator, discriminator)
    config = _check_config(config)
    real = _check_real(real, generator)
    generator_rng = as_generator(rng)
    opt = _optimizer(discriminator.parameters(), config)
    records = [
        torch.stack(
            _discriminator_update(
                discriminator,
                generator,
                real,
                opt,
                config.batch_size,
                generator_rng,
            )
        )
        for _ in range(config.steps)
    ]
    return _history(("d_loss", "d_real", "d_fake"), records, config)


def fit_generator(
    generator: Generator,
    discriminator: nn.Module,
    *,
    config: GANConfig,
    loss: str = "non_saturating",
    rng: int | torch.Generator | None = None,
) -> History:
    """Train the generator alone, in place, against a frozen discriminator.

    This isolates the generator's side of the game: with the discriminator
    fixed, how fast does each loss make the generator's samples look real
    to it? Plain gradient descent (``optimizer="sgd"``) moves the parameters
    in proportion to the gradient, so a small gradient means a slow
    generator; Adam divides by a running root-mean-square of the gradient
    and largely undoes its scale. Explained in chapter 9.

    Parameters
    ----------
    generator : Generator
        Trained in place.
    discriminator : nn.Module
        Not changed (its parameters get no gradient).
    config : GANConfig
        Steps, learning rate, batch size, optimiser (``d_steps`` unused).
    loss : {"saturating", "non_saturating"}
    rng : int, torch.Generator or None
        The noise's randomness.

    Returns
    -------
    History
        ``loss``: the generator's loss at each step; ``logs``:
        ``"g_grad_norm"`` (the Euclidean norm of its gradient over all
        parameters), ``"g_step"`` (the mean absolute change of a parameter,
        in units of the learning rate) and ``"d_fake"`` (the mean
        :math:`D(G(z))` of the batch).
    """
    _check_nets(generator, discriminator)
    config = _check_config(config)
    loss = _check_loss(loss)
    generator_rng = as_generator(rng)
    params = [p for p in generator.parameters() if p.requires_grad]
    opt = _optimizer(params, config)
    records = [
        torch.stack(
            _generator_update(
                generator,
                discriminator,
                opt,
                params,
                loss,
                config.batch_size,
                generator_rng,
            )
        )
        for _ in range(config.steps)
    ]
    names = ("g_loss", "g_grad_norm", "g_step", "d_fake")
    return _history(names, records, config)


def fit_gan(
    generator: Generator,
    discriminator: nn.Module,
    real: torch.Tensor,
    *,
    config: GANConfig,
    loss: str = "non_saturating",
    rng: int | torch.Generator | None = None,
    on_step_end: Callable[[int, Generator, nn.Module], dict | None]
    | None = None,
    progress: str | None = None,
) -> History:
    r"""Train a GAN in place by alternating updates; return what happened.

    Each of ``config.steps`` steps makes ``config.d_steps`` discriminator
    updates on :func:`discriminator_loss`, each with a fresh real batch
    (drawn with replacement from ``real``) and a fresh generated one
    (detached), then one generator update on :func:`generator_loss` of kind
    ``loss`` with a fresh noise batch. Each network has its own optimiser,
    created here: two runs that start from copies of the same networks with
    the same ``rng`` seed make identical first discriminator steps,
    whatever their generator loss. Explained in chapter 9.

    Parameters
    ----------
    generator : Generator
        The generator; its :meth:`Generator.noise` draws the latent batches.
    discriminator : nn.Module
        Maps a batch of samples ``(N, D)`` to logits ``(N,)``.
    real : torch.Tensor
        The pool of real samples, shape ``(N, n_components)``.
    config : GANConfig
        Steps, learning rate, batch size, Adam's betas, optimiser and
        discriminator updates per step.
    loss : {"saturating", "non_saturating"}
        The generator's objective.
    rng : int, torch.Generator or None
        Every random draw (batches, noise), for repeatable runs.
    on_step_end : callable, optional
        ``on_step_end(step, generator, discriminator)`` after each step
        (from 1), for example to keep snapshots of samples; a dict of
        numbers it returns is logged.
    progress : str, optional
        The label of a progress bar over steps; None shows none.

    Returns
    -------
    History
        One entry per step. ``loss``: the generator's loss; ``logs``:
        ``"d_loss"`` and ``"d_real"`` (the discriminator's loss and mean
        verdict on the real batch at its last update of the step),
        ``"d_fake"`` (the mean :math:`D(G(z))` on the generator's batch),
        ``"g_grad_norm"`` (the norm of the generator's gradient) and
        ``"g_step"`` (its mean absolute parameter change in units of the
        learning rate: for Adam, the mean of
        :math:`|\hat m| / (\sqrt{\hat v} + \epsilon)`), and what
        ``on_step_end`` returned.

    Raises
    ------
    FloatingPointError
        When a loss stops being finite (the message names the step and the
        learning rate).
    """
    _check_nets(generator, discriminator)
    config = _check_config(config)
    loss = _check_loss(loss)
    real = _check_real(real, generator)
    if on_step_end is not None and not callable(on_step_end):
        raise ValueError(
            "on_step_end must be callable or None; got "
            f"{type(on_step_end).__name__}"
        )
    generator_rng = as_generator(rng)
    g_params = [p for p in generator.parameters() if p.requires_grad]
    d_opt = _optimizer(discriminator.parameters(), config)
    g_opt = _optimizer(g_params, config)
    batch = config.batch_size
    records: list[torch.Tensor] = []
    extra: dict[str, list[float]] = {}
    steps = range(1, config.steps + 1)
    for step in tqdm(steps, desc=progress, disable=progress is None):
        for _ in range(config.d_steps):
            d_loss, d_real, _ = _discriminator_update(
                discriminator, generator, real, d_opt, batch, generator_rng
            )
        g_loss, g_norm, g_step, d_fake = _generator_update(
            generator,
            discriminator,
            g_opt,
            g_params,
            loss,
            batch,
            generator_rng,
        )
        record = torch.stack([g_loss, d_loss, d_real, d_fake, g_norm, g_step])
        if not bool(torch.isfinite(record[:2]).all()):
            raise _diverged(step, config, "a loss stopped being finite")
        records.append(record)
        if on_step_end is not None:
            for key, value in (
                on_step_end(step, generator, discriminator) or {}
            ).items():
                extra.setdefault(key, []).append(float(value))
    names = ("g_loss", "d_loss", "d_real", "d_fake", "g_grad_norm", "g_step")
    history = _history(names, records, config)
    history.logs.update(extra)
    return history


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


def _as_samples(x, name: str) -> torch.Tensor:
    check_float_tensor(x, name, what="samples")
    if x.dim() == 1:
        x = x.unsqueeze(1)
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (N,) or (N, d) with N >= 1; got"
            f" {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{name} contains NaN or infinite values; expected finite samples"
        )
    return x


def _mean_distance(
    a: torch.Tensor, b: torch.Tensor, block: int = 2048
) -> torch.Tensor:
    """Mean Euclidean distance over all pairs (a_i, b_j), in blocks of rows
    (to bound the memory)."""
    total = torch.zeros((), dtype=a.dtype, device=a.device)
    for start in range(0, a.shape[0], block):
        d = torch.cdist(
            a[start : start + block],
            b,
            compute_mode="donot_use_mm_for_euclid_dist",
        )
        total = total + d.sum()
    return total / (a.shape[0] * b.shape[0])


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    r"""Energy distance between two samples, in any dimension.

    For samples :math:`x_1..x_n` and :math:`y_1..y_m` (rows), with
    :math:`\|\cdot\|` the Euclidean norm,

    .. math::
        \mathcal{E}(x, y) = \Bigl( \frac{2}{nm}\sum_{i,j} \|x_i - y_j\|
            - \frac{1}{n^2}\sum_{i,i'} \|x_i - x_{i'}\|
            - \frac{1}{m^2}\sum_{j,j'} \|y_j - y_{j'}\| \Bigr)^{1/2},

    the square root of Szekely and Rizzo's energy statistic of the two
    empirical distributions (the V-statistic, all pairs included). The
    bracket is non-negative, and its population version is zero only when
    the two distributions are equal. In one dimension this is
    :func:`scipy.stats.energy_distance`. The cost is
    :math:`O((n + m)^2)` distances, computed in blocks and in float64.
    Explained in chapter 9.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(n,)`` or ``(n, d)``.
    y : torch.Tensor
        Shape ``(m,)`` or ``(m, d)``, same ``d``, same device.

    Returns
    -------
    float
    """
    x = _as_samples(x, "x").double()
    y = _as_samples(y, "y").double()
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same number of columns; got {x.shape[1]}"
            f" and {y.shape[1]}"
        )
    y = y.to(x.device)
    stat = (
        2 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y)
    )
    return math.sqrt(max(stat.item(), 0.0))


def mode_counts(
    samples: torch.Tensor, centres: torch.Tensor, radius: float
) -> torch.Tensor:
    """How many samples fall within ``radius`` of each centre.

    Each sample is assigned to its nearest centre, and counted for it if it
    lies within ``radius`` (Euclidean) of it; samples far from every centre
    are counted nowhere. Explained in chapter 9.

    Parameters
    ----------
    samples : torch.Tensor
        Shape ``(N, d)``.
    centres : torch.Tensor
        Shape ``(K, d)``.
    radius : float
        Positive.

    Returns
    -------
    torch.Tensor
        Shape ``(K,)``, integer counts, on the CPU.
    """
    samples = _as_samples(samples, "samples")
    centres = _as_samples(centres, "centres")
    if samples.shape[1] != centres.shape[1]:
        raise ValueError(
            "samples and centres must have the same number of columns; got"
            f" {samples.shape[1]} and {centres.shape[1]}"
        )
    radius = _check_positive(radius, "radius")
    d = torch.cdist(
        samples.double(),
        centres.double().to(samples.device),
        compute_mode="donot_use_mm_for_euclid_dist",
    )
    nearest, which = d.min(dim=1)
    which = which[nearest <= radius]
    return torch.bincount(which, minlength=centres.shape[0]).cpu()


def modes_covered(
    samples: torch.Tensor, centres: torch.Tensor, radius: float, min_count: int
) -> int:
    """Number of modes that at least ``min_count`` samples fall near.

    See :func:`mode_counts` for when a sample counts for a mode.

    A generator that has collapsed onto a few modes, or that spreads its mass
    between them, covers few; a perfect one covers all ``K``. Explained in
    chapter 9.

    Parameters
    ----------
    samples : torch.Tensor
        Shape ``(N, d)``.
    centres : torch.Tensor
        Shape ``(K, d)``, the known modes.
    radius : float
        A sample counts for a mode if it lies within this distance of it (and
        the mode is its nearest).
    min_count : int
        Samples a mode needs to count as covered, at least 1.

    Returns
    -------
    int
    """
    _check_int(min_count, "min_count", 1)
    return int((mode_counts(samples, centres, radius) >= min_count).sum())

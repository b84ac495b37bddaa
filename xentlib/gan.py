"""Generative adversarial networks: two cross-entropies playing against each other.

A discriminator is a binary classifier trained with binary cross-entropy to
tell real samples (label 1) from generated ones (label 0). The generator is
trained against it, either with the minimax objective, which *minimises*
:math:`\\log(1 - D(G(z)))` and whose gradient vanishes while the discriminator
rejects the fakes confidently (the "saturating" loss), or with the
non-saturating objective, which minimises :math:`-\\log D(G(z))` and keeps a
full-strength gradient exactly then.

This module holds what the chapter runs: a seeded ternary "phase diagram"
(material compositions on the 2-simplex clustered around known phases), small
MLP generator and discriminator, the two losses computed stably from logits, an
alternating training loop that records the generator's gradient norm at every
step and snapshots of its samples, and two measures of a generator's quality:
the number of known modes it covers and the energy distance of its samples to
real ones.

Introduced in chapter 9.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from .losses import binary_cross_entropy
from .models import mlp

__all__ = [
    "GENERATOR_LOSSES",
    "PHASE_NAMES",
    "TERNARY_PHASES",
    "Discriminator",
    "GANHistory",
    "Generator",
    "discriminator_loss",
    "energy_distance",
    "generator_loss",
    "mode_counts",
    "modes_covered",
    "pretrain_discriminator",
    "sample_ternary_phases",
    "ternary_axes",
    "ternary_to_cartesian",
    "train_gan",
    "train_generator_against_fixed_discriminator",
]

#: The two generator objectives of :func:`generator_loss`.
GENERATOR_LOSSES = ("saturating", "non_saturating")

#: Fractions (A, B, C) of the seven phases of the book's made-up ternary system
#: A-B-C: three terminal solid solutions rich in one element, the three
#: equiatomic binary compounds AB, BC and AC, and an ordered ternary compound
#: A2BC (the stoichiometry of a Heusler phase X2YZ).
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


# ----------------------------------------------------------------------------
# Data: compositions on the simplex
# ----------------------------------------------------------------------------


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return value


def _check_positive(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0)
        or math.isinf(value)
    ):
        raise ValueError(
            f"{name} must be a positive finite number; got {value!r}"
        )
    return float(value)


def sample_ternary_phases(
    n: int,
    *,
    phases: torch.Tensor | None = None,
    spread: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw compositions of a ternary system clustered around known phases.

    Each sample picks a phase :math:`k` uniformly at random and draws a
    logistic-normal composition around the phase's composition :math:`c_k`,

    .. math:: x = \mathrm{softmax}(\ln c_k + s\,\varepsilon), \qquad \varepsilon \sim \mathcal{N}(0, I_3),

    so that :math:`x` lies on the simplex (non-negative fractions summing to
    one), its log-ratios are Gaussian (Aitchison's model of compositional
    data), and :math:`\varepsilon = 0` gives exactly :math:`c_k`. Explained in
    chapter 9.

    Parameters
    ----------
    n : int
        Number of samples.
    phases : torch.Tensor, optional
        Phase compositions of shape ``(K, D)``, positive rows summing to one;
        defaults to :data:`TERNARY_PHASES` (``K = 7``, ``D = 3``).
    spread : float
        Standard deviation :math:`s` of the log-ratio noise.
    generator : torch.Generator, optional
        A CPU generator, for repeatable draws.

    Returns
    -------
    compositions : torch.Tensor
        Shape ``(n, D)``, float64, on the CPU (move them with ``.to(device)``).
    labels : torch.Tensor
        Shape ``(n,)``, the phase index of each sample.
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
    if bool((centres <= 0).any()) or bool(
        ((centres.sum(1) - 1).abs() > 1e-6).any()
    ):
        raise ValueError(
            "phases must hold positive fractions that sum to one in each row"
        )
    labels = torch.randint(0, centres.shape[0], (n,), generator=generator)
    noise = torch.randn(
        n, centres.shape[1], generator=generator, dtype=torch.float64
    )
    return torch.softmax(centres.log()[labels] + spread * noise, dim=1), labels


def ternary_to_cartesian(compositions: torch.Tensor) -> torch.Tensor:
    r"""Map ternary compositions to points in an equilateral triangle of side 1.

    A composition :math:`(a, b, c)` goes to
    :math:`(x, y) = (b + c/2,\ \tfrac{\sqrt3}{2} c)`, so that pure A, B and C sit
    at :math:`(0, 0)`, :math:`(1, 0)` and :math:`(1/2, \sqrt3/2)`. The map is an
    isometry up to the factor :math:`1/\sqrt2`: Euclidean distances between
    compositions in :math:`\mathbb{R}^3` are :math:`\sqrt2` times the
    distances between their points in the triangle.

    Parameters
    ----------
    compositions : torch.Tensor
        Shape ``(..., 3)``.

    Returns
    -------
    torch.Tensor
        Shape ``(..., 2)``, same dtype and device.
    """
    if (
        not isinstance(compositions, torch.Tensor)
        or compositions.dim() == 0
        or compositions.shape[-1] != 3
    ):
        got = (
            tuple(compositions.shape)
            if isinstance(compositions, torch.Tensor)
            else type(compositions).__name__
        )
        raise ValueError(
            f"compositions must be a tensor of shape (..., 3); got {got}"
        )
    b, c = compositions[..., 1], compositions[..., 2]
    return torch.stack([b + c / 2, c * (math.sqrt(3) / 2)], dim=-1)


def ternary_axes(ax, labels=("A", "B", "C"), grid: int = 5):
    """Draw the frame of a ternary diagram on a matplotlib ``ax``.

    Draws the triangle of :func:`ternary_to_cartesian`, faint grid lines of
    constant fraction every ``1/grid``, and the corner labels, and hides the
    Cartesian axes; points from :func:`ternary_to_cartesian` can then be
    plotted on ``ax`` directly.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    labels : tuple of str
        Names of the three components, for the corners (0, 0), (1, 0) and
        (1/2, sqrt(3)/2).
    grid : int
        Number of grid intervals per side; 0 or 1 draws no grid.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    corners = torch.eye(3, dtype=torch.float64)
    frame = ternary_to_cartesian(corners[[0, 1, 2, 0]])
    ax.plot(frame[:, 0], frame[:, 1], color="black", lw=0.8)
    for i in range(1, grid):
        f = i / grid
        for k in range(3):
            # the line where component k equals f, between the two edges that meet at corner k
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


# ----------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------


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
    :math:`z \sim \mathcal{N}(0, I)`: the softmax output makes every sample a
    valid composition (non-negative fractions that sum to one).

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
        for name, value, low in (
            ("latent_dim", latent_dim, 1),
            ("hidden", hidden, 1),
            ("depth", depth, 0),
            ("n_components", n_components, 2),
        ):
            _check_int(value, name, low)
        self.latent_dim = latent_dim
        self.net = _mlp(latent_dim, hidden, depth, n_components)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Compositions of shape ``(N, n_components)`` for noise ``z`` of shape ``(N, latent_dim)``."""
        return torch.softmax(self.net(z), dim=-1)

    def noise(
        self, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` noise vectors, drawn on the CPU from ``generator`` and moved to the model's device."""
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator).to(device)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` generated compositions, shape ``(n, n_components)``, without gradients."""
        return self(self.noise(n, generator))


class Discriminator(nn.Module):
    r"""An MLP that scores a sample with one logit: :math:`D(x) = \sigma(\mathrm{MLP}(x))`.

    The forward pass returns the logit :math:`\mathrm{MLP}(x)`, shape ``(N,)``;
    the losses take logits, so that no probability is ever formed and logged.

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
        for name, value, low in (
            ("n_features", n_features, 1),
            ("hidden", hidden, 1),
            ("depth", depth, 0),
        ):
            _check_int(value, name, low)
        self.net = _mlp(n_features, hidden, depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N,)`` for samples ``x`` of shape ``(N, n_features)``."""
        return self.net(x).squeeze(-1)


# ----------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------


def _check_logit_tensor(x, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = (
            f"dtype {x.dtype}"
            if isinstance(x, torch.Tensor)
            else type(x).__name__
        )
        raise ValueError(
            f"{name} must be a floating-point torch.Tensor of discriminator"
            f" logits; got {got}"
        )


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Binary cross-entropy of a discriminator: real samples are class 1, generated ones class 0.

    With :math:`D = \sigma(\ell)`,

    .. math::
        L_D = \mathrm{BCE}(\ell_{\mathrm{real}}, 1) + \mathrm{BCE}(\ell_{\mathrm{fake}}, 0)
            = -\overline{\log D(x)} - \overline{\log\bigl(1 - D(G(z))\bigr)},

    where the bars are means over each batch (``"mean"``) or sums
    (``"sum"``). For a fixed generator its minimiser over all functions is
    :math:`D^*(x) = p_{\mathrm{data}}(x) / (p_{\mathrm{data}}(x) + p_G(x))`.
    Explained in chapter 9.

    Parameters
    ----------
    real_logits : torch.Tensor
        Discriminator logits on real samples, shape ``(N,)``.
    fake_logits : torch.Tensor
        Discriminator logits on generated samples, shape ``(M,)``; ``M`` may differ from ``N``.
    reduction : {"mean", "sum"}
        How each of the two terms reduces over its batch.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(
            "reduction must be 'mean' or 'sum' (the two batches may differ in"
            f" size); got {reduction!r}"
        )
    _check_logit_tensor(real_logits, "real_logits")
    _check_logit_tensor(fake_logits, "fake_logits")
    real = binary_cross_entropy(
        real_logits, torch.ones_like(real_logits), reduction=reduction
    )
    fake = binary_cross_entropy(
        fake_logits, torch.zeros_like(fake_logits), reduction=reduction
    )
    return real + fake


def generator_loss(
    fake_logits: torch.Tensor,
    kind: str = "non_saturating",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The generator's loss on the discriminator's logits for generated samples.

    With :math:`\ell` the logit and :math:`D = \sigma(\ell)`:

    * ``"saturating"``, the minimax objective of the original GAN: minimise
      :math:`\log(1 - D) = -\mathrm{BCE}(\ell, 0) = -\mathrm{softplus}(\ell)`.
      Its derivative :math:`\partial/\partial\ell = -\sigma(\ell) = -D`
      vanishes when the discriminator rejects the sample (:math:`D \to 0`).
    * ``"non_saturating"``: minimise :math:`-\log D = \mathrm{BCE}(\ell, 1)
      = \mathrm{softplus}(-\ell)`. Its derivative
      :math:`\sigma(\ell) - 1 = -(1 - D)` tends to :math:`-1` there.

    Both are computed with softplus, finite for logits of any size.
    Explained in chapter 9.

    Parameters
    ----------
    fake_logits : torch.Tensor
        Discriminator logits on generated samples, any shape.
    kind : {"saturating", "non_saturating"}
        Which objective.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    torch.Tensor
        A scalar, or one loss per logit for ``reduction="none"``.
    """
    if kind not in GENERATOR_LOSSES:
        raise ValueError(
            f"kind must be one of {GENERATOR_LOSSES}; got {kind!r}"
        )
    _check_logit_tensor(fake_logits, "fake_logits")
    if kind == "saturating":
        return -binary_cross_entropy(
            fake_logits, torch.zeros_like(fake_logits), reduction=reduction
        )
    return binary_cross_entropy(
        fake_logits, torch.ones_like(fake_logits), reduction=reduction
    )


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------


@dataclass
class GANHistory:
    """What the training functions record, one entry per generator step.

    Attributes
    ----------
    d_loss : list of float
        The discriminator's loss at its last update of the step (empty when
        the discriminator is not trained).
    g_loss : list of float
        The generator's loss.
    g_grad_norm : list of float
        Euclidean norm of the gradient of the generator's loss with respect to
        all generator parameters together, before the update.
    d_real : list of float
        Mean :math:`D(x)` on the real batch of the step's last discriminator
        update (empty when the discriminator is not trained).
    d_fake : list of float
        Mean :math:`D(G(z))` on the batch that the generator's loss sees.
    snapshots : dict of int to torch.Tensor
        Generated samples (on the CPU) from one fixed batch of noise, by the
        number of generator steps taken (0: before the first one).
    """

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    g_grad_norm: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)
    d_fake: list[float] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)


def _check_training_args(loss, optimizer, steps, batch_size, lr) -> None:
    if loss not in GENERATOR_LOSSES:
        raise ValueError(
            f"loss must be one of {GENERATOR_LOSSES}; got {loss!r}"
        )
    if optimizer not in ("adam", "sgd"):
        raise ValueError(
            f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}"
        )
    _check_int(steps, "steps", 0)
    _check_int(batch_size, "batch_size", 1)
    _check_positive(lr, "lr")


def _check_real(real, generator: Generator) -> torch.Tensor:
    if (
        not isinstance(real, torch.Tensor)
        or real.dim() != 2
        or real.shape[0] == 0
    ):
        got = (
            tuple(real.shape)
            if isinstance(real, torch.Tensor)
            else type(real).__name__
        )
        raise ValueError(
            "real must be a non-empty tensor of samples of shape (N, D); got"
            f" {got}"
        )
    first = next(generator.parameters())
    return real.to(device=first.device, dtype=first.dtype)


def _optimizer(params, kind: str, lr: float, betas: tuple[float, float]):
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas)
    return torch.optim.SGD(params, lr=lr)


def _discriminator_update(
    discriminator, generator, real, opt, batch_size, rng
):
    """One step on the discriminator's cross-entropy; returns (loss, mean D on the real batch), detached."""
    index = torch.randint(0, real.shape[0], (batch_size,), generator=rng).to(
        real.device
    )
    with torch.no_grad():
        fake = generator(generator.noise(batch_size, rng))
    real_logits = discriminator(real[index])
    loss = discriminator_loss(real_logits, discriminator(fake))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), torch.sigmoid(real_logits.detach()).mean()


def _generator_update(
    generator, discriminator, opt, params, loss_kind, batch_size, rng
):
    """One step on the generator's loss; returns (loss, gradient norm, mean D(G(z))), detached."""
    fake_logits = discriminator(generator(generator.noise(batch_size, rng)))
    loss = generator_loss(fake_logits, loss_kind)
    opt.zero_grad(set_to_none=True)
    grads = torch.autograd.grad(
        loss, params
    )  # the generator's gradient only; D's .grad stays untouched
    for p, g in zip(params, grads):
        p.grad = g
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g) for g in grads])
    )
    opt.step()
    return loss.detach(), norm, torch.sigmoid(fake_logits.detach()).mean()


def pretrain_discriminator(
    discriminator: nn.Module,
    generator: Generator,
    real: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    rng: torch.Generator | None = None,
) -> list[float]:
    """Train the discriminator alone, with Adam, against a fixed generator.

    Early in GAN training the generator's samples are poor and the
    discriminator soon rejects them with confidence; this puts a
    discriminator in that state, so that the generator's losses can be
    compared there. Each step draws a real batch (with replacement) and a
    generated one and takes one step on :func:`discriminator_loss`.

    Parameters
    ----------
    discriminator : nn.Module
        Trained in place.
    generator : Generator
        Left unchanged.
    real : torch.Tensor
        Real samples, shape ``(N, D)``.
    steps, batch_size : int
    lr : float
    betas : tuple of float
        Adam's betas.
    rng : torch.Generator, optional
        A CPU generator for the batches and the noise.

    Returns
    -------
    list of float
        The discriminator's loss at each step.
    """
    _check_training_args("non_saturating", "adam", steps, batch_size, lr)
    real = _check_real(real, generator)
    opt = _optimizer(discriminator.parameters(), "adam", lr, betas)
    losses = [
        _discriminator_update(
            discriminator, generator, real, opt, batch_size, rng
        )[0]
        for _ in range(steps)
    ]
    return torch.stack(losses).tolist() if losses else []


def train_generator_against_fixed_discriminator(
    generator: Generator,
    discriminator: nn.Module,
    *,
    steps: int,
    loss: str = "non_saturating",
    optimizer: str = "sgd",
    lr: float = 1e-3,
    batch_size: int = 256,
    betas: tuple[float, float] = (0.5, 0.999),
    rng: torch.Generator | None = None,
) -> GANHistory:
    """Train the generator alone against a frozen discriminator.

    This isolates the generator's side of the game: with the discriminator
    fixed, how fast does each loss make the generator's samples look real to
    it? Plain gradient descent (``optimizer="sgd"``) moves the parameters in
    proportion to the gradient, so a vanishing gradient means a stalled
    generator; Adam divides by a running root-mean-square of the gradient and
    largely undoes its scale.

    Parameters
    ----------
    generator : Generator
        Trained in place.
    discriminator : nn.Module
        Not changed (its parameters get no gradient).
    steps : int
        Generator updates.
    loss : {"saturating", "non_saturating"}
    optimizer : {"sgd", "adam"}
        Plain SGD (no momentum) or Adam with ``betas``.
    lr : float
    batch_size : int
        Noise batch per step.
    betas : tuple of float
    rng : torch.Generator, optional
        A CPU generator for the noise.

    Returns
    -------
    GANHistory
        With ``g_loss``, ``g_grad_norm`` and ``d_fake`` filled in.
    """
    _check_training_args(loss, optimizer, steps, batch_size, lr)
    params = [p for p in generator.parameters() if p.requires_grad]
    opt = _optimizer(params, optimizer, lr, betas)
    records = [
        _generator_update(
            generator, discriminator, opt, params, loss, batch_size, rng
        )
        for _ in range(steps)
    ]
    history = GANHistory()
    if records:
        history.g_loss, history.g_grad_norm, history.d_fake = (
            torch.stack([torch.stack(r) for r in records]).double().T.tolist()
        )
    return history


def train_gan(
    generator: Generator,
    discriminator: nn.Module,
    real: torch.Tensor,
    *,
    steps: int,
    loss: str = "non_saturating",
    batch_size: int = 256,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    optimizer: str = "adam",
    d_steps: int = 1,
    snapshot_steps: tuple[int, ...] = (),
    snapshot_size: int = 1000,
    rng: torch.Generator | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> GANHistory:
    r"""Train a GAN by alternating updates, in place, and return what happened.

    Each of ``steps`` steps makes ``d_steps`` discriminator updates on
    :func:`discriminator_loss`, with a fresh real batch (drawn with
    replacement from ``real``) and a fresh generated one (detached), followed
    by one generator update on :func:`generator_loss` of kind ``loss`` with a
    fresh noise batch. Each network has its own optimiser (Adam with
    ``betas``, or plain SGD), created here: two runs that start from copies of
    the same networks with the same ``rng`` seed make identical first steps,
    whatever their generator loss. Explained in chapter 9.

    Parameters
    ----------
    generator : Generator
        The generator; its :meth:`Generator.noise` draws the latent batches.
    discriminator : nn.Module
        Maps a batch of samples ``(N, D)`` to logits ``(N,)``.
    real : torch.Tensor
        The pool of real samples, shape ``(N, D)``.
    steps : int
        Generator updates.
    loss : {"saturating", "non_saturating"}
        The generator's objective.
    batch_size : int
        Size of every real, generated and noise batch.
    lr : float
        Learning rate of both optimisers.
    betas : tuple of float
        Adam's betas.
    optimizer : {"adam", "sgd"}
    d_steps : int
        Discriminator updates per generator update.
    snapshot_steps : tuple of int
        After how many generator steps to keep a snapshot of samples (step 0
        is always kept).
    snapshot_size : int
        Number of samples in a snapshot (one fixed noise batch).
    rng : torch.Generator, optional
        A CPU generator for every random draw (batches, noise), for repeatable runs.
    progress : bool
        Show a tqdm progress bar over steps.
    desc : str, optional
        The progress bar's label.

    Returns
    -------
    GANHistory
    """
    _check_training_args(loss, optimizer, steps, batch_size, lr)
    _check_int(d_steps, "d_steps", 1)
    _check_int(snapshot_size, "snapshot_size", 1)
    real = _check_real(real, generator)
    g_params = [p for p in generator.parameters() if p.requires_grad]
    d_opt = _optimizer(discriminator.parameters(), optimizer, lr, betas)
    g_opt = _optimizer(g_params, optimizer, lr, betas)
    fixed_noise = generator.noise(snapshot_size, rng)
    history = GANHistory()
    history.snapshots[0] = _snapshot(generator, fixed_noise)
    keep = set(snapshot_steps)
    records: list[torch.Tensor] = []
    for step in tqdm(
        range(1, steps + 1), desc=desc, disable=not progress, mininterval=1.0
    ):
        for _ in range(d_steps):
            d_loss, d_real = _discriminator_update(
                discriminator, generator, real, d_opt, batch_size, rng
            )
        g_loss, g_norm, d_fake = _generator_update(
            generator, discriminator, g_opt, g_params, loss, batch_size, rng
        )
        # One small stack per step and one transfer at the end: no device synchronisation inside the loop.
        records.append(torch.stack([d_loss, g_loss, g_norm, d_real, d_fake]))
        if step in keep:
            history.snapshots[step] = _snapshot(generator, fixed_noise)
    if records:
        table = torch.stack(records).cpu().double().T.tolist()
        (
            history.d_loss,
            history.g_loss,
            history.g_grad_norm,
            history.d_real,
            history.d_fake,
        ) = table
    return history


@torch.no_grad()
def _snapshot(generator: Generator, noise: torch.Tensor) -> torch.Tensor:
    return generator(noise).cpu()


# ----------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------


def _as_samples(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = (
            f"dtype {x.dtype}"
            if isinstance(x, torch.Tensor)
            else type(x).__name__
        )
        raise ValueError(
            f"{name} must be a floating-point torch.Tensor of samples; got"
            f" {got}"
        )
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
    """Mean Euclidean distance over all pairs (a_i, b_j), in blocks of rows to bound memory."""
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
    are counted nowhere.

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
    """Number of modes that at least ``min_count`` samples fall near (see :func:`mode_counts`).

    A generator that has collapsed onto a few modes, or that spreads its mass
    between them, covers few; a perfect one covers all ``K``.

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

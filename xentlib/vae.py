r"""Variational autoencoders for binary fingerprints, and how to score them.

A variational autoencoder (VAE) pairs an *encoder* :math:`q_\phi(z \mid x)`, a
diagonal Gaussian over a latent code :math:`z`, with a *decoder*
:math:`p_\theta(x \mid z)`, here independent Bernoulli distributions over the
bits of a binary fingerprint with logits :math:`f_\theta(z)`. Training
maximises the evidence lower bound (ELBO) on :math:`\log p_\theta(x)`,

.. math::

    \mathrm{ELBO}(x) = \mathbb{E}_{q_\phi(z \mid x)}\bigl[\log p_\theta(x \mid z)\bigr]
                     - \mathrm{KL}\bigl(q_\phi(z \mid x) \,\|\, \mathcal{N}(0, I)\bigr),

so the loss is the negative ELBO: a *reconstruction* term, which for Bernoulli
bits is the binary cross-entropy between the decoder's logits and the input,
summed over bits, plus the *KL* term, in closed form for two Gaussians.

The module holds the data loader of the chapter
(:func:`load_solubility_fingerprints`), the model (:class:`FingerprintVAE`),
the two loss terms (:func:`reconstruction_loss`, :func:`gaussian_kl`,
:func:`elbo_terms`), the training loop (:func:`train_vae`), the Tanimoto
similarity used to judge reconstructions (:func:`tanimoto_similarity`,
:func:`pairwise_tanimoto`) and its baseline
(:func:`best_constant_fingerprint`).

Introduced in chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ._validation import (
    as_float_tensor,
    check_reduction,
    check_unit_interval,
    reduce_rows,
)
from .datasets import data_path
from .losses import binary_cross_entropy

__all__ = [
    "FingerprintData",
    "FingerprintVAE",
    "VAEConfig",
    "best_constant_fingerprint",
    "elbo_terms",
    "gaussian_kl",
    "load_solubility_fingerprints",
    "pairwise_tanimoto",
    "reconstruction_loss",
    "tanimoto_similarity",
    "train_vae",
]

SOLUBILITY_FILE = "solubility_fingerprints.npz"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class FingerprintData:
    """The solubility set as binary Morgan fingerprints (see data/solubility_fingerprints.md).

    Attributes
    ----------
    fingerprints : numpy.ndarray
        0/1 bits, uint8, shape ``(N, 2048)``: radius-2 Morgan fingerprints.
    solubility : numpy.ndarray
        Measured aqueous solubility, log10(mol/L), shape ``(N,)``.
    sol_class : numpy.ndarray
        Solubility class from the SDF records, shape ``(N,)``: 0 low
        (log10 S <= -3), 1 medium (-3 < log10 S <= -1), 2 high (log10 S > -1).
    class_names : tuple of str
        ``("low", "medium", "high")``.
    is_test : numpy.ndarray
        True for the molecules of the set's own test split, shape ``(N,)``.
    aromatic_rings : numpy.ndarray
        Number of aromatic rings of each molecule, shape ``(N,)``.
    heavy_atoms : numpy.ndarray
        Number of heavy (non-hydrogen) atoms, shape ``(N,)``.
    smiles : numpy.ndarray
        Canonical SMILES strings, shape ``(N,)``.
    names : numpy.ndarray
        Compound names, shape ``(N,)``.
    """

    fingerprints: np.ndarray
    solubility: np.ndarray
    sol_class: np.ndarray
    class_names: tuple[str, ...]
    is_test: np.ndarray
    aromatic_rings: np.ndarray
    heavy_atoms: np.ndarray
    smiles: np.ndarray
    names: np.ndarray


def load_solubility_fingerprints() -> FingerprintData:
    """Load the 1,282 molecules of the RDKit solubility set as 2,048-bit Morgan fingerprints.

    The file ``solubility_fingerprints.npz`` ships with the book (made offline
    by ``data/make_solubility_fingerprints.py`` with RDKit, which is therefore
    not needed here). The measurements are from Huuskonen (2000); the set's
    own split has 1,025 training and 257 test molecules. Introduced in chapter 8.

    Returns
    -------
    FingerprintData
    """
    with np.load(data_path(SOLUBILITY_FILE), allow_pickle=False) as archive:
        bits = np.unpackbits(archive["fingerprints"], axis=1)
        return FingerprintData(
            fingerprints=bits,
            solubility=archive["solubility"],
            sol_class=archive["sol_class"].astype(np.int64),
            class_names=tuple(str(name) for name in archive["class_names"]),
            is_test=archive["is_test"],
            aromatic_rings=archive["aromatic_rings"].astype(np.int64),
            heavy_atoms=archive["heavy_atoms"].astype(np.int64),
            smiles=archive["smiles"],
            names=archive["names"],
        )


# --------------------------------------------------------------------------- model


@dataclass
class VAEConfig:
    """Sizes of :class:`FingerprintVAE`.

    Attributes
    ----------
    n_bits : int
        Length of the fingerprints (input and output size).
    hidden : int
        Width of the one hidden layer of the encoder and of the decoder.
    latent : int
        Dimension of the latent code :math:`z`.
    """

    n_bits: int = 2048
    hidden: int = 256
    latent: int = 16

    def __post_init__(self):
        for name in ("n_bits", "hidden", "latent"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < 1
            ):
                raise ValueError(
                    f"{name} must be a positive integer; got {value!r}"
                )


class FingerprintVAE(nn.Module):
    r"""A small MLP variational autoencoder for binary fingerprints.

    Encoder: ``x -> Linear -> ReLU -> (mu, logvar)``, the mean and log-variance
    of a diagonal Gaussian :math:`q(z \mid x)`. Decoder:
    ``z -> Linear -> ReLU -> Linear``, one logit per bit of
    :math:`p(x \mid z)`. In training mode the forward pass samples
    :math:`z = \mu + \sigma \odot \varepsilon`, :math:`\varepsilon \sim \mathcal{N}(0, I)`
    (the reparameterisation trick, which makes the sample a differentiable
    function of :math:`\mu` and :math:`\log\sigma^2`); in evaluation mode it
    uses :math:`z = \mu`, so reconstructions are deterministic.

    Parameters
    ----------
    config : VAEConfig
        The layer sizes.
    generator : torch.Generator, optional
        A CPU generator for the noise :math:`\varepsilon` (drawn on the CPU and
        moved to the model's device), for repeatable training; None uses
        torch's global generator.
    """

    def __init__(
        self,
        config: VAEConfig | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.config = config or VAEConfig()
        self.generator = generator
        n, h, k = self.config.n_bits, self.config.hidden, self.config.latent
        self.encoder = nn.Sequential(nn.Linear(n, h), nn.ReLU())
        self.to_mu = nn.Linear(h, k)
        self.to_logvar = nn.Linear(h, k)
        self.decoder = nn.Sequential(
            nn.Linear(k, h), nn.ReLU(), nn.Linear(h, n)
        )

    @torch.no_grad()
    def init_output_bias(self, bit_frequency: torch.Tensor) -> None:
        r"""Start the decoder at the input-blind model: every bit at its frequency.

        Sets the last layer's bias to the log-odds
        :math:`\log(f_d / (1 - f_d))` of each bit's frequency :math:`f_d` in the
        training data (clipped to :math:`[10^{-4}, 1 - 10^{-4}]`), so that
        training starts from independent bits with the right marginals instead
        of spending its first epochs learning them.

        Parameters
        ----------
        bit_frequency : torch.Tensor
            Shape ``(n_bits,)``, values in [0, 1].
        """
        f = as_float_tensor(bit_frequency, "bit_frequency")
        if f.shape != (self.config.n_bits,):
            raise ValueError(
                f"bit_frequency must have shape ({self.config.n_bits},); got"
                f" {tuple(f.shape)}"
            )
        check_unit_interval(f, "bit_frequency", what="frequencies")
        f = f.clamp(1e-4, 1 - 1e-4)
        bias = self.decoder[-1].bias
        bias.copy_(
            torch.log(f / (1 - f)).to(device=bias.device, dtype=bias.dtype)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of :math:`q(z \\mid x)`, each of shape ``(N, latent)``."""
        hidden = self.encoder(x)
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bit logits of :math:`p(x \\mid z)`, shape ``(N, n_bits)``."""
        return self.decoder(z)

    def sample_latent(
        self, mu: torch.Tensor, logvar: torch.Tensor
    ) -> torch.Tensor:
        """One reparameterised draw :math:`\\mu + e^{\\log\\sigma^2 / 2} \\odot \\varepsilon`."""
        eps = torch.randn(
            mu.shape, generator=self.generator, dtype=mu.dtype
        ).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(logits, mu, logvar)`` for a batch ``x`` of shape ``(N, n_bits)``."""
        mu, logvar = self.encode(x)
        z = self.sample_latent(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


# --------------------------------------------------------------------------- losses


def _check_bits(x: torch.Tensor, name: str, n_bits: int | None = None) -> None:
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have shape (N, n_bits); got shape {tuple(x.shape)}"
        )
    if n_bits is not None and x.shape[1] != n_bits:
        raise ValueError(
            f"{name} must have {n_bits} bits per row; got {x.shape[1]}"
        )


def reconstruction_loss(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    r"""Negative Bernoulli log-likelihood of the bits, summed over bits.

    For one fingerprint :math:`x \in \{0, 1\}^D` and decoder logits
    :math:`\ell \in \mathbb{R}^D`,

    .. math::

        -\log p(x \mid z) = \sum_{d=1}^{D} \bigl[-x_d \log \sigma(\ell_d)
                            - (1 - x_d) \log(1 - \sigma(\ell_d))\bigr],

    the binary cross-entropy from logits (:func:`xentlib.binary_cross_entropy`,
    computed with softplus, so finite for any logit). Its gradient with respect
    to each logit is :math:`\sigma(\ell_d) - x_d = \hat x_d - x_d`.

    Parameters
    ----------
    logits : torch.Tensor
        Decoder logits, shape ``(N, D)``.
    target : torch.Tensor
        Bits (or probabilities) in [0, 1], shape ``(N, D)``.
    reduction : {"mean", "sum", "none"}
        Over fingerprints: ``"none"`` gives shape ``(N,)``, ``"mean"`` the mean
        over the batch (nats per fingerprint, not per bit).

    Returns
    -------
    torch.Tensor
    """
    check_reduction(reduction)
    if not isinstance(logits, torch.Tensor):
        raise ValueError(
            f"logits must be a torch.Tensor; got {type(logits).__name__}"
        )
    _check_bits(logits, "logits")
    per_bit = binary_cross_entropy(logits, target, reduction="none")
    per_row = per_bit.sum(dim=1)
    return reduce_rows(per_row, reduction)


def gaussian_kl(
    mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    r"""KL divergence of :math:`\mathcal{N}(\mu, \mathrm{diag}\,\sigma^2)` from :math:`\mathcal{N}(0, I)`.

    .. math::

        \mathrm{KL}\bigl(\mathcal{N}(\mu, \sigma^2) \,\|\, \mathcal{N}(0, I)\bigr)
        = \tfrac12 \sum_{j=1}^{K} \bigl(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\bigr)

    Parameters
    ----------
    mu, logvar : torch.Tensor
        Means and log-variances, shape ``(N, K)``.
    reduction : {"mean", "sum", "none"}
        Over rows: ``"none"`` gives shape ``(N,)``.

    Returns
    -------
    torch.Tensor
        In nats.
    """
    check_reduction(reduction)
    for name, value in (("mu", mu), ("logvar", logvar)):
        if (
            not isinstance(value, torch.Tensor)
            or not value.is_floating_point()
        ):
            raise ValueError(f"{name} must be a floating-point torch.Tensor")
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(
            "mu and logvar must have the same shape (N, K); got"
            f" {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    per_row = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
    return reduce_rows(per_row, reduction)


@torch.no_grad()
def elbo_terms(
    model: FingerprintVAE,
    x: torch.Tensor,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    r"""The two terms of the negative ELBO on ``x``, averaged over fingerprints.

    The reconstruction term :math:`\mathbb{E}_{q(z \mid x)}[-\log p(x \mid z)]`
    is estimated with ``n_samples`` reparameterised draws of :math:`z` per
    fingerprint; the KL term is exact. The model's mode (training or
    evaluation) is left as it was.

    Parameters
    ----------
    model : FingerprintVAE
    x : torch.Tensor
        Fingerprints, shape ``(N, n_bits)``, on the model's device.
    n_samples : int
        Monte Carlo draws of :math:`z` per fingerprint.
    generator : torch.Generator, optional
        A CPU generator for the draws.

    Returns
    -------
    dict
        ``{"reconstruction": ..., "kl": ..., "neg_elbo": ...}`` in nats per fingerprint.
    """
    if (
        not isinstance(n_samples, int)
        or isinstance(n_samples, bool)
        or n_samples < 1
    ):
        raise ValueError(
            f"n_samples must be a positive integer; got {n_samples!r}"
        )
    _check_bits(x, "x", model.config.n_bits)
    mu, logvar = model.encode(x)
    recon = 0.0
    for _ in range(n_samples):
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(
            mu.device
        )
        z = mu + torch.exp(0.5 * logvar) * eps
        recon += reconstruction_loss(model.decode(z), x).item()
    recon /= n_samples
    kl = gaussian_kl(mu, logvar).item()
    return {"reconstruction": recon, "kl": kl, "neg_elbo": recon + kl}


def train_vae(
    model: FingerprintVAE,
    train: torch.Tensor,
    held_out: torch.Tensor | None = None,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    beta: float = 1.0,
    weight_decay: float = 0.0,
    kl_warmup: int = 0,
    generator: torch.Generator | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> dict[str, list[float]]:
    r"""Train ``model`` with Adam on the negative ELBO and return the per-epoch terms.

    Each step minimises :math:`\text{reconstruction} + \beta\,\text{KL}` on a
    shuffled mini-batch, with one reparameterised sample of :math:`z` per
    fingerprint (:math:`\beta = 1` is the ELBO). The loop is
    :func:`xentlib.training.fit`'s, except that it keeps the two terms apart.

    Parameters
    ----------
    model : FingerprintVAE
    train : torch.Tensor
        Training fingerprints, shape ``(N, n_bits)``, on the model's device.
    held_out : torch.Tensor, optional
        Fingerprints on which to evaluate both terms after each epoch (one
        sample of :math:`z` each). The draws come from their own generator,
        seeded from ``generator``'s initial seed plus one, so evaluating does
        not change the training run.
    epochs : int
    lr : float
    batch_size : int
    beta : float
        Weight of the KL term (1 for the ELBO).
    weight_decay : float
        L2 penalty coefficient passed to Adam.
    kl_warmup : int
        Number of epochs over which the KL weight rises linearly from
        ``beta / kl_warmup`` to ``beta`` (0: no warm-up). Early in training
        this lets the decoder learn to use :math:`z` before the KL term pulls
        :math:`q(z \mid x)` towards the prior.
    generator : torch.Generator, optional
        A CPU generator for the shuffling order.
    progress : bool
        Show a tqdm progress bar.
    desc : str, optional
        Its label.

    Returns
    -------
    dict of lists
        ``"train_reconstruction"``, ``"train_kl"`` (epoch means over the
        mini-batches, nats per fingerprint) and, with ``held_out``,
        ``"held_out_reconstruction"`` and ``"held_out_kl"``. The model is
        left in evaluation mode.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(
            f"epochs must be a non-negative integer; got {epochs!r}"
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be a positive integer; got {batch_size!r}"
        )
    if not lr > 0:
        raise ValueError(f"lr must be positive; got {lr}")
    if not beta >= 0:
        raise ValueError(f"beta must be non-negative; got {beta}")
    _check_bits(train, "train", model.config.n_bits)
    if held_out is not None:
        _check_bits(held_out, "held_out", model.config.n_bits)
    if not weight_decay >= 0:
        raise ValueError(
            f"weight_decay must be non-negative; got {weight_decay}"
        )
    if (
        isinstance(kl_warmup, bool)
        or not isinstance(kl_warmup, int)
        or kl_warmup < 0
    ):
        raise ValueError(
            f"kl_warmup must be a non-negative integer; got {kl_warmup!r}"
        )
    optimizer = torch.optim.Adam(
        model.parameters(), lr=lr, weight_decay=weight_decay
    )
    n = train.shape[0]
    history: dict[str, list[float]] = {
        "train_reconstruction": [],
        "train_kl": [],
    }
    if held_out is not None:
        history.update(held_out_reconstruction=[], held_out_kl=[])
        eval_generator = (
            None
            if generator is None
            else torch.Generator().manual_seed(generator.initial_seed() + 1)
        )
    for epoch in tqdm(
        range(epochs), desc=desc, disable=not progress, mininterval=1.0
    ):
        model.train()
        weight = (
            beta * min(1.0, (epoch + 1) / kl_warmup) if kl_warmup else beta
        )
        order = torch.randperm(n, generator=generator).to(train.device)
        sums = [0.0, 0.0]
        for start in range(0, n, batch_size):
            x = train[order[start : start + batch_size]]
            logits, mu, logvar = model(x)
            recon = reconstruction_loss(logits, x)
            kl = gaussian_kl(mu, logvar)
            optimizer.zero_grad(set_to_none=True)
            (recon + weight * kl).backward()
            optimizer.step()
            sums[0] += recon.item() * x.shape[0]
            sums[1] += kl.item() * x.shape[0]
        history["train_reconstruction"].append(sums[0] / n)
        history["train_kl"].append(sums[1] / n)
        if held_out is not None:
            model.eval()
            terms = elbo_terms(model, held_out, generator=eval_generator)
            history["held_out_reconstruction"].append(terms["reconstruction"])
            history["held_out_kl"].append(terms["kl"])
    model.eval()
    return history


# --------------------------------------------------------------------------- similarity


def _as_bits(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    else:
        t = torch.as_tensor(np.asarray(x))
    if t.dim() == 0:
        raise ValueError(
            f"{name} must have a last dimension of bits; got a scalar"
        )
    if t.numel() and not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(
            f"{name} must hold binary fingerprints (0/1 or bool); got other"
            " values"
        )
    return t.to(torch.float64) if not t.is_floating_point() else t


def tanimoto_similarity(a, b) -> torch.Tensor:
    r"""Tanimoto (Jaccard) similarity of binary fingerprints, along the last dimension.

    .. math:: T(a, b) = \frac{|a \wedge b|}{|a \vee b|}
                      = \frac{\sum_d a_d b_d}{\sum_d a_d + \sum_d b_d - \sum_d a_d b_d}

    Two empty fingerprints (no bit set in either) are identical, so
    :math:`T = 1` there by definition (0/0 := 1); an empty and a non-empty one
    have :math:`T = 0`.

    Parameters
    ----------
    a, b : torch.Tensor or array_like
        0/1 (or boolean) arrays whose shapes broadcast, e.g. ``(N, D)`` and ``(N, D)``
        or ``(N, D)`` and ``(D,)``.

    Returns
    -------
    torch.Tensor
        Similarities in [0, 1], the broadcast shape without the last dimension, in
        the floating dtype of the inputs (float64 for integer or boolean inputs).
    """
    a = _as_bits(a, "a")
    b = _as_bits(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a and b must have the same number of bits; got {a.shape[-1]} and"
            f" {b.shape[-1]}"
        )
    b = b.to(device=a.device, dtype=torch.promote_types(a.dtype, b.dtype))
    a = a.to(b.dtype)
    inter = (a * b).sum(-1)
    union = a.sum(-1) + b.sum(-1) - inter
    return torch.where(
        union > 0, inter / union.clamp_min(1), torch.ones_like(union)
    )


def pairwise_tanimoto(a, b) -> torch.Tensor:
    """Tanimoto similarity of every row of ``a`` (shape ``(N, D)``) to every row of ``b`` (``(M, D)``).

    Returns a tensor of shape ``(N, M)``; 0/0 := 1 as in :func:`tanimoto_similarity`.
    """
    a = _as_bits(a, "a")
    b = _as_bits(b, "b")
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a and b must have shapes (N, D) and (M, D); got {tuple(a.shape)}"
            f" and {tuple(b.shape)}"
        )
    b = b.to(device=a.device, dtype=torch.promote_types(a.dtype, b.dtype))
    a = a.to(b.dtype)
    inter = a @ b.T
    union = a.sum(1, keepdim=True) + b.sum(1) - inter
    return torch.where(
        union > 0, inter / union.clamp_min(1), torch.ones_like(union)
    )


def best_constant_fingerprint(x, max_bits: int | None = None) -> torch.Tensor:
    r"""The constant fingerprint with the highest mean Tanimoto similarity to the rows of ``x``.

    A "model" that ignores its input and always answers the same fingerprint
    :math:`c` is the baseline a reconstruction must beat. Maximising
    :math:`\frac1N \sum_i T(x_i, c)` over all :math:`2^D` vectors is a
    combinatorial problem, so this searches in two steps:

    1. for every size :math:`k`, the :math:`k` most frequent bits of ``x``
       (the natural candidate of that size); keep the best :math:`k`;
    2. from there, flip single bits (on or off), always the flip that raises the
       mean similarity most, until no flip raises it.

    The result is a local optimum (no single flip improves it) at least as good
    as every top-:math:`k` candidate. Use it on training data and score it on
    held-out data.

    Parameters
    ----------
    x : torch.Tensor or array_like
        Binary fingerprints, shape ``(N, D)``.
    max_bits : int, optional
        Largest :math:`k` tried in step 1 (default: all ``D``).

    Returns
    -------
    torch.Tensor
        A 0/1 float64 vector of shape ``(D,)`` on ``x``'s device.
    """
    x = _as_bits(x, "x").to(torch.float64)
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(
            f"x must have shape (N, D) with N >= 1; got {tuple(x.shape)}"
        )
    n, d = x.shape
    k_max = d if max_bits is None else max_bits
    if (
        isinstance(k_max, bool)
        or not isinstance(k_max, int)
        or not 1 <= k_max <= d
    ):
        raise ValueError(
            f"max_bits must be an integer in [1, {d}]; got {max_bits!r}"
        )
    sizes = x.sum(1)
    order = torch.argsort(x.mean(0), descending=True, stable=True)
    # Mean Tanimoto of the top-k candidate for every k at once: cumulative intersections.
    inter = torch.cumsum(x[:, order[:k_max]], dim=1)  # (N, k_max)
    k = torch.arange(1, k_max + 1, dtype=x.dtype, device=x.device)
    scores = (inter / (sizes[:, None] + k - inter)).mean(0)
    best_k = int(scores.argmax()) + 1
    c = torch.zeros(d, dtype=x.dtype, device=x.device)
    c[order[:best_k]] = 1.0
    inter = x @ c
    current = (inter / (sizes + c.sum() - inter)).mean()
    while True:
        # Flipping bit j changes the intersection by +x_ij (on) or -x_ij (off) and |c| by +-1.
        sign = 1.0 - 2.0 * c  # +1 turns a bit on, -1 turns it off
        new_inter = inter[:, None] + sign * x
        new_union = sizes[:, None] + (c.sum() + sign) - new_inter
        flipped = torch.where(
            new_union > 0,
            new_inter / new_union.clamp_min(1),
            torch.ones_like(new_union),
        ).mean(0)
        j = int(flipped.argmax())
        if not flipped[j] > current + 1e-12:
            return c
        c[j] = 1.0 - c[j]
        inter = x @ c
        current = flipped[j]

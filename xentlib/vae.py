r"""Variational autoencoders for binary fingerprints, and how to score them.

A variational autoencoder (VAE) pairs an *encoder* :math:`q_\phi(z \mid x)`,
a diagonal Gaussian over a latent code :math:`z`, with a *decoder*
:math:`p_\theta(x \mid z)`, here independent Bernoulli distributions over
the bits of a binary fingerprint with logits :math:`f_\theta(z)`. Training
maximises the evidence lower bound (ELBO) on :math:`\log p_\theta(x)`,

.. math::

    \mathrm{ELBO}(x) = \mathbb{E}_{q_\phi(z \mid x)}
        \bigl[\log p_\theta(x \mid z)\bigr]
        - \mathrm{KL}\bigl(q_\phi(z \mid x) \,\|\, \mathcal{N}(0, I)\bigr),

so the loss is the negative ELBO: a *reconstruction* term, which for
Bernoulli bits is the binary cross-entropy between the decoder's logits and
the input, summed over bits, plus the *KL* term, in closed form for two
Gaussians.

The module holds the data loader of the chapter
(:func:`load_solubility_fingerprints`), the model (:class:`VAEConfig`,
:class:`FingerprintVAE`, :func:`reparameterize`), the loss terms
(:func:`reconstruction_loss`, :func:`gaussian_kl`, :func:`negative_elbo`,
:func:`elbo_terms`), the trainer (:func:`fit_vae`, built on
:func:`xentlib.training.fit`), the Tanimoto similarity used to judge
reconstructions (:func:`tanimoto_similarity`, :func:`pairwise_tanimoto`) and
its baseline (:func:`best_constant_fingerprint`).

Introduced in chapter 8.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_float_tensor,
    check_finite,
    check_float_tensor,
    check_no_nan,
    check_reduction,
    check_unit_interval,
    compute_dtype,
    reduce_rows,
)
from .datasets import data_path
from .runtime import as_generator
from .training import History, TrainConfig, fit

__all__ = [
    "ELBOTerms",
    "FingerprintData",
    "FingerprintVAE",
    "VAEConfig",
    "best_constant_fingerprint",
    "elbo_terms",
    "fit_vae",
    "gaussian_kl",
    "load_solubility_fingerprints",
    "negative_elbo",
    "pairwise_tanimoto",
    "reconstruction_loss",
    "reparameterize",
    "tanimoto_similarity",
]

SOLUBILITY_FILE = "solubility_fingerprints.npz"


# ------------------------------------------------------------------- data


@dataclass(frozen=True)
class FingerprintData:
    """The solubility set as binary Morgan fingerprints.

    See ``data/solubility_fingerprints.md``, the data card.

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
    """The 1,282 molecules of the RDKit solubility set as 2,048-bit Morgan
    fingerprints.

    The file ``solubility_fingerprints.npz`` ships with the book (made
    offline by ``data/make_solubility_fingerprints.py`` with RDKit, which is
    therefore not needed here). The measurements are from Huuskonen (2000);
    the set's own split has 1,025 training and 257 test molecules.
    Introduced in chapter 8.

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


# ------------------------------------------------------------------ model


@dataclass(frozen=True)
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

    Examples
    --------
    >>> VAEConfig(n_bits=64, hidden=16, latent=2)
    VAEConfig(n_bits=64, hidden=16, latent=2)
    """

    n_bits: int = 2048
    hidden: int = 256
    latent: int = 16

    def __post_init__(self):
        for name in ("n_bits", "hidden", "latent"):
            _check_int(getattr(self, name), name, 1)


def reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    rng: int | torch.Generator | None = None,
) -> torch.Tensor:
    r"""One draw :math:`z = \mu + e^{\log\sigma^2 / 2} \odot \varepsilon`.

    The reparameterisation trick: the noise
    :math:`\varepsilon \sim \mathcal{N}(0, I)` does not depend on
    :math:`\mu` or :math:`\log\sigma^2`, so the draw is a differentiable
    function of both. Explained in chapter 8.

    Parameters
    ----------
    mu, logvar : torch.Tensor
        Means and log-variances of a diagonal Gaussian, shape ``(N, K)``.
    rng : int, torch.Generator or None
        The noise's randomness (see :func:`xentlib.runtime.as_generator`);
        it is drawn on the CPU and moved to ``mu``'s device.

    Returns
    -------
    torch.Tensor
        Shape ``(N, K)``.

    Examples
    --------
    >>> mu, logvar = torch.zeros(2, 3), torch.full((2, 3), -1e4)
    >>> bool((reparameterize(mu, logvar, rng=0) == mu).all())
    True
    """
    _check_gaussian(mu, logvar)
    return _reparameterize(mu, logvar, as_generator(rng))


def _reparameterize(mu, logvar, generator: torch.Generator) -> torch.Tensor:
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps.to(mu.device)


class FingerprintVAE(nn.Module):
    r"""A small MLP variational autoencoder for binary fingerprints.

    Encoder: ``x -> Linear -> ReLU -> (mu, logvar)``, the mean and
    log-variance of a diagonal Gaussian :math:`q(z \mid x)`. Decoder:
    ``z -> Linear -> ReLU -> Linear``, one logit per bit of
    :math:`p(x \mid z)`. In training mode the forward pass draws :math:`z`
    with :func:`reparameterize`; in evaluation mode it uses
    :math:`z = \mu`, so reconstructions are deterministic. Explained in
    chapter 8.

    Parameters
    ----------
    config : VAEConfig, optional
        The layer sizes (default ``VAEConfig()``).
    rng : int, torch.Generator or None
        The randomness of the draws of :math:`z` in training mode (see
        :func:`xentlib.runtime.as_generator`).
    """

    def __init__(
        self,
        config: VAEConfig | None = None,
        rng: int | torch.Generator | None = None,
    ):
        super().__init__()
        if config is not None and not isinstance(config, VAEConfig):
            raise ValueError(
                f"config must be a VAEConfig; got {type(config).__name__}"
            )
        self.config = config or VAEConfig()
        self.rng = as_generator(rng)
        n, h, k = self.config.n_bits, self.config.hidden, self.config.latent
        self.encoder = nn.Sequential(nn.Linear(n, h), nn.ReLU())
        self.to_mu = nn.Linear(h, k)
        self.to_logvar = nn.Linear(h, k)
        self.decoder = nn.Sequential(
            nn.Linear(k, h), nn.ReLU(), nn.Linear(h, n)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of :math:`q(z \\mid x)`, each ``(N, K)``."""
        hidden = self.encoder(x)
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bit logits of :math:`p(x \\mid z)`, shape ``(N, n_bits)``."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, mu, logvar)`` for fingerprints ``x``, ``(N, n_bits)``."""
        mu, logvar = self.encode(x)
        z = _reparameterize(mu, logvar, self.rng) if self.training else mu
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def init_output_bias(self, bit_frequency: torch.Tensor) -> None:
        r"""Start the decoder at the input-blind model: each bit at its
        frequency.

        Sets the last layer's bias to the log-odds
        :math:`\log(f_d / (1 - f_d))` of each bit's frequency :math:`f_d` in
        the training data (clipped to :math:`[10^{-4}, 1 - 10^{-4}]`), so
        that training starts from independent bits with the right marginals
        instead of spending its first epochs learning them.

        Parameters
        ----------
        bit_frequency : torch.Tensor
            Shape ``(n_bits,)``, values in [0, 1].
        """
        f = as_float_tensor(bit_frequency, "bit_frequency")
        if f.shape != (self.config.n_bits,):
            raise ValueError(
                f"bit_frequency must have shape ({self.config.n_bits},); "
                f"got {tuple(f.shape)}"
            )
        check_unit_interval(f, "bit_frequency", what="frequencies")
        f = f.clamp(1e-4, 1 - 1e-4)
        bias = self.decoder[-1].bias
        bias.copy_(torch.logit(f).to(device=bias.device, dtype=bias.dtype))


# ----------------------------------------------------------------- losses


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def _check_bits(x, name: str, n_bits: int | None = None) -> torch.Tensor:
    """A floating (N, n_bits) tensor of bits or probabilities, no NaN."""
    check_float_tensor(x, name, what="fingerprints")
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have shape (N, n_bits); got shape {tuple(x.shape)}"
        )
    if n_bits is not None and x.shape[1] != n_bits:
        raise ValueError(
            f"{name} must have {n_bits} bits per row; got {x.shape[1]}"
        )
    check_unit_interval(x, name, what="bits")
    return x


def _check_gaussian(mu, logvar) -> None:
    for name, value in (("mu", mu), ("logvar", logvar)):
        check_float_tensor(value, name, what="Gaussian parameters")
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(
            "mu and logvar must have the same shape (N, K); got "
            f"{tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    check_finite(mu, "mu")
    check_finite(logvar, "logvar")


def _bernoulli_nll(logits: torch.Tensor, target: torch.Tensor):
    """Per-bit binary cross-entropy from logits, exact at infinite logits.

    An infinite logit costs 0 when it points at its target (-inf on a bit
    that is off, +inf on one that is on) and +inf otherwise, with the
    limit of the gradient, sigmoid(logit) - target, which is finite.
    """
    dtype = compute_dtype(logits.dtype)
    x, y = logits.to(dtype), target.to(dtype)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    infinite = torch.isinf(x)
    if bool(infinite.any()):
        # The weight of the term that grows like |x|: 1 - y for +inf, y for
        # -inf; where it is zero the loss tends to 0.
        weight = torch.where(x > 0, 1 - y, y)
        limit = torch.where(weight > 0, weight * x.abs(), 0.0)
        loss = torch.where(infinite, limit, loss)
    return loss


def reconstruction_loss(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    r"""Negative Bernoulli log-likelihood of the bits, summed over bits.

    For one fingerprint :math:`x \in \{0, 1\}^D` and decoder logits
    :math:`\ell \in \mathbb{R}^D`,

    .. math::

        -\log p(x \mid z) = \sum_{d=1}^{D} \bigl[
            x_d\,\mathrm{softplus}(-\ell_d)
            + (1 - x_d)\,\mathrm{softplus}(\ell_d)\bigr],

    the binary cross-entropy from logits, summed over bits. It is finite
    for any finite logit and exact at infinite ones (a logit of
    :math:`-\infty` on a bit that is off costs 0, on a bit that is on
    :math:`+\infty`), with finite gradients. Its gradient with respect to
    each logit is :math:`\sigma(\ell_d) - x_d = \hat x_d - x_d`. Explained
    in chapter 8.

    Parameters
    ----------
    logits : torch.Tensor
        Decoder logits, shape ``(N, D)``; may be infinite, not NaN.
    target : torch.Tensor
        Bits (or probabilities) in [0, 1], shape ``(N, D)``.
    reduction : {"mean", "sum", "none"}
        Over fingerprints: ``"none"`` gives shape ``(N,)``, ``"mean"`` the
        mean over the batch (nats per fingerprint, not per bit).

    Returns
    -------
    torch.Tensor
        In the dtype of ``logits``.

    Examples
    --------
    >>> inf = float("inf")
    >>> reconstruction_loss(torch.tensor([[-inf, inf]]),
    ...                     torch.tensor([[0.0, 1.0]]))
    tensor(0.)
    """
    check_reduction(reduction)
    check_float_tensor(logits, "logits")
    if logits.dim() != 2:
        raise ValueError(
            "logits must have shape (N, n_bits); got shape "
            f"{tuple(logits.shape)}"
        )
    check_no_nan(logits, "logits")
    if not isinstance(target, torch.Tensor) or target.shape != logits.shape:
        got = (
            tuple(target.shape)
            if isinstance(target, torch.Tensor)
            else type(target).__name__
        )
        raise ValueError(
            "target must be a tensor of the same shape as logits "
            f"{tuple(logits.shape)}; got {got}"
        )
    check_unit_interval(target, "target", what="bits")
    rows = _bernoulli_nll(logits, target).sum(dim=1)
    return reduce_rows(rows, reduction).to(logits.dtype)


def gaussian_kl(
    mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    r"""KL divergence of :math:`\mathcal{N}(\mu, \mathrm{diag}\,\sigma^2)`
    from :math:`\mathcal{N}(0, I)`, in nats.

    .. math::

        \mathrm{KL} = \tfrac12 \sum_{j=1}^{K}
            \bigl(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\bigr)

    Explained in chapter 8.

    Parameters
    ----------
    mu, logvar : torch.Tensor
        Means and log-variances, finite, shape ``(N, K)``.
    reduction : {"mean", "sum", "none"}
        Over rows: ``"none"`` gives shape ``(N,)``.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> gaussian_kl(torch.zeros(4, 2), torch.zeros(4, 2))
    tensor(0.)
    """
    check_reduction(reduction)
    _check_gaussian(mu, logvar)
    rows = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
    return reduce_rows(rows, reduction)


def negative_elbo(
    logits: torch.Tensor,
    target: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float = 1.0,
) -> torch.Tensor:
    r"""The VAE's loss on a batch: reconstruction plus :math:`\beta` KL.

    .. math::

        \mathcal{L} = \frac1N \sum_{i=1}^{N} \Bigl[
            -\log p(x_i \mid z_i)
            + \beta\, \mathrm{KL}\bigl(q(z \mid x_i) \,\|\, p(z)\bigr)
        \Bigr],

    with :func:`reconstruction_loss` and :func:`gaussian_kl`; for
    :math:`\beta = 1` and :math:`z_i` drawn from :math:`q(z \mid x_i)` it
    is a one-sample estimate of the negative ELBO, in nats per
    fingerprint. Explained in chapter 8.

    Parameters
    ----------
    logits : torch.Tensor
        Decoder logits, shape ``(N, D)``.
    target : torch.Tensor
        The fingerprints, shape ``(N, D)``.
    mu, logvar : torch.Tensor
        The encoder's Gaussian, shape ``(N, K)``, same ``N``.
    beta : float
        Weight of the KL term, finite and >= 0.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    beta = _check_weight(beta, "beta")
    recon = reconstruction_loss(logits, target)
    kl = gaussian_kl(mu, logvar)
    if mu.shape[0] != logits.shape[0]:
        raise ValueError(
            f"mu must have one row per fingerprint ({logits.shape[0]}); "
            f"got {mu.shape[0]}"
        )
    return recon + beta * kl


def _check_weight(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 <= value < math.inf
    ):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


# --------------------------------------------------------------- training


@dataclass(frozen=True)
class ELBOTerms:
    r"""The two terms of the negative ELBO, in nats per fingerprint.

    Attributes
    ----------
    reconstruction : float
        :math:`\mathbb{E}_{q(z \mid x)}[-\log p(x \mid z)]`, averaged over
        fingerprints.
    kl : float
        :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))`, averaged over
        fingerprints; its average bounds the information the code carries
        about :math:`x` from above.
    """

    reconstruction: float
    kl: float

    @property
    def neg_elbo(self) -> float:
        r"""Their sum, an upper bound on :math:`-\log p(x)`."""
        return self.reconstruction + self.kl


def _check_model(model) -> FingerprintVAE:
    if not isinstance(model, FingerprintVAE):
        raise ValueError(
            f"model must be a FingerprintVAE; got {type(model).__name__}"
        )
    return model


def _check_rows(x, name: str, n_bits: int) -> torch.Tensor:
    _check_bits(x, name, n_bits)
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one fingerprint; got 0")
    return x


@torch.no_grad()
def elbo_terms(
    model: FingerprintVAE,
    x: torch.Tensor,
    n_samples: int = 1,
    rng: int | torch.Generator | None = None,
) -> ELBOTerms:
    r"""The two terms of the negative ELBO on ``x``, per fingerprint.

    The reconstruction term
    :math:`\mathbb{E}_{q(z \mid x)}[-\log p(x \mid z)]` is estimated with
    ``n_samples`` draws of :math:`z` per fingerprint
    (:func:`reparameterize`); the KL term is exact. The model's mode is left
    as it was. Explained in chapter 8.

    Parameters
    ----------
    model : FingerprintVAE
    x : torch.Tensor
        Fingerprints, shape ``(N, n_bits)``, on the model's device.
    n_samples : int
        Draws of :math:`z` per fingerprint, at least 1.
    rng : int, torch.Generator or None
        The draws' randomness (see :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    ELBOTerms
    """
    model = _check_model(model)
    x = _check_rows(x, "x", model.config.n_bits)
    n_samples = _check_int(n_samples, "n_samples", 1)
    generator = as_generator(rng)
    mu, logvar = model.encode(x)
    recon = 0.0
    for _ in range(n_samples):
        z = reparameterize(mu, logvar, generator)
        recon += reconstruction_loss(model.decode(z), x).item()
    return ELBOTerms(recon / n_samples, gaussian_kl(mu, logvar).item())


def _kl_rows(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def fit_vae(
    model: FingerprintVAE,
    train: torch.Tensor,
    held_out: torch.Tensor | None = None,
    *,
    config: TrainConfig,
    beta: float = 1.0,
    kl_warmup: int = 0,
    rng: int | torch.Generator | None = None,
    on_epoch_end: Callable[[int, nn.Module], dict | None] | None = None,
    progress: str | None = None,
) -> History:
    r"""Train ``model`` in place on the negative ELBO with
    :func:`xentlib.training.fit`.

    Each step minimises :math:`\text{reconstruction} + w\,\text{KL}` on a
    shuffled mini-batch, with one draw of :math:`z` per fingerprint; the
    weight :math:`w` rises linearly from :math:`\beta / T` to
    :math:`\beta` over the first :math:`T` = ``kl_warmup`` epochs, then
    stays at :math:`\beta` (:math:`\beta = 1` is the ELBO). Early in
    training the warm-up lets the decoder learn to use :math:`z` before the
    KL term pulls :math:`q(z \mid x)` towards the prior. Explained in
    chapter 8.

    Parameters
    ----------
    model : FingerprintVAE
        Trained in place, then left in evaluation mode.
    train : torch.Tensor
        Training fingerprints, shape ``(N, n_bits)``, ``N >= 1``, on the
        model's device.
    held_out : torch.Tensor, optional
        Fingerprints on which both terms are evaluated after each epoch
        (:func:`elbo_terms`, one draw each, from a generator of their own
        seeded from ``rng``'s initial seed plus one, so that evaluating does
        not change the training run).
    config : TrainConfig
        Epochs, learning rate, batch size, weight decay, optimiser.
    beta : float
        Weight of the KL term after the warm-up, finite and >= 0.
    kl_warmup : int
        Epochs of the linear warm-up (0: none).
    rng : int, torch.Generator or None
        The shuffling order's randomness; the draws of :math:`z` come from
        the model's own ``rng``.
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch, model)`` after each epoch, as in
        :func:`xentlib.training.fit`: a dict of numbers it returns is
        logged.
    progress : str, optional
        The label of a progress bar over epochs; None shows none.

    Returns
    -------
    History
        ``loss``: the weighted objective of each epoch; ``logs``:
        ``"reconstruction"``, ``"kl"`` and ``"kl_weight"`` (epoch means
        over the mini-batches, nats per fingerprint) and, with
        ``held_out``, ``"held_out_reconstruction"`` and ``"held_out_kl"``,
        and what ``on_epoch_end`` returned.

    Raises
    ------
    FloatingPointError
        When training diverges (see :func:`xentlib.training.fit`).
    """
    model = _check_model(model)
    n_bits = model.config.n_bits
    train = _check_rows(train, "train", n_bits)
    if held_out is not None:
        held_out = _check_rows(held_out, "held_out", n_bits)
    beta = _check_weight(beta, "beta")
    kl_warmup = _check_int(kl_warmup, "kl_warmup", 0)
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise ValueError(
            "on_epoch_end must be callable or None; got "
            f"{type(on_epoch_end).__name__}"
        )
    generator = as_generator(rng)
    held_out_rng = torch.Generator().manual_seed(generator.initial_seed() + 1)
    weight = [_kl_weight(0, beta, kl_warmup)]

    def loss_fn(output, x):
        logits, mu, logvar = output
        recon = _bernoulli_nll(logits, x).sum(dim=1).mean()
        kl = _kl_rows(mu, logvar).mean()
        logs = {"reconstruction": recon, "kl": kl, "kl_weight": weight[0]}
        return recon + weight[0] * kl, logs

    def after_epoch(epoch, model):
        weight[0] = _kl_weight(epoch + 1, beta, kl_warmup)
        logs = {}
        if held_out is not None:
            terms = elbo_terms(model, held_out, rng=held_out_rng)
            logs["held_out_reconstruction"] = terms.reconstruction
            logs["held_out_kl"] = terms.kl
        if on_epoch_end is not None:
            logs.update(on_epoch_end(epoch, model) or {})
        return logs

    history = fit(
        model,
        loss_fn,
        train,
        config=config,
        rng=generator,
        on_epoch_end=after_epoch,
        progress=progress,
    )
    model.eval()
    return history


def _kl_weight(epoch: int, beta: float, warmup: int) -> float:
    return beta * min(1.0, (epoch + 1) / warmup) if warmup else beta


# ------------------------------------------------------------- similarity


def _as_bits(x, name: str) -> torch.Tensor:
    """``x`` as a floating tensor of 0/1 bits (float64 unless floating)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{name} must be an array of 0/1 bits; got {type(x).__name__}"
            ) from err
    if t.dim() == 0:
        raise ValueError(
            f"{name} must have a last dimension of bits; got a scalar"
        )
    if t.numel() and not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(
            f"{name} must hold binary fingerprints (0/1 or bool); got other"
            " values"
        )
    return t if t.is_floating_point() else t.to(torch.float64)


def _common_dtype(a: torch.Tensor, b: torch.Tensor):
    b = b.to(device=a.device, dtype=torch.promote_types(a.dtype, b.dtype))
    return a.to(b.dtype), b


def tanimoto_similarity(a, b) -> torch.Tensor:
    r"""Tanimoto (Jaccard) similarity of binary fingerprints, along the last
    dimension.

    .. math::

        T(a, b) = \frac{|a \wedge b|}{|a \vee b|}
                = \frac{\sum_d a_d b_d}
                       {\sum_d a_d + \sum_d b_d - \sum_d a_d b_d}

    Two empty fingerprints (no bit set in either) are identical, so
    :math:`T = 1` there by definition (0/0 := 1); an empty and a non-empty
    one have :math:`T = 0`. Explained in chapter 8.

    Parameters
    ----------
    a, b : torch.Tensor or array_like
        0/1 (or boolean) arrays whose shapes broadcast, e.g. ``(N, D)`` and
        ``(N, D)`` or ``(N, D)`` and ``(D,)``.

    Returns
    -------
    torch.Tensor
        Similarities in [0, 1], the broadcast shape without the last
        dimension, in the floating dtype of the inputs (float64 for integer
        or boolean inputs).

    Examples
    --------
    >>> tanimoto_similarity([1, 1, 0, 1], [1, 0, 0, 1])
    tensor(0.6667, dtype=torch.float64)
    """
    a = _as_bits(a, "a")
    b = _as_bits(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            "a and b must have the same number of bits; got "
            f"{a.shape[-1]} and {b.shape[-1]}"
        )
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(
            "a and b must have shapes that broadcast; got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        ) from None
    a, b = _common_dtype(a, b)
    inter = (a * b).sum(-1)
    union = a.sum(-1) + b.sum(-1) - inter
    return torch.where(
        union > 0, inter / union.clamp_min(1), torch.ones_like(union)
    )


def pairwise_tanimoto(a, b) -> torch.Tensor:
    """Tanimoto similarity of every row of ``a`` to every row of ``b``.

    Parameters
    ----------
    a, b : torch.Tensor or array_like
        0/1 (or boolean) fingerprints, shapes ``(N, D)`` and ``(M, D)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N, M)``; 0/0 := 1 as in :func:`tanimoto_similarity`.
        Explained in chapter 8.
    """
    a = _as_bits(a, "a")
    b = _as_bits(b, "b")
    for name, x in (("a", a), ("b", b)):
        if x.dim() != 2:
            raise ValueError(
                f"{name} must have shape (N, D); got {tuple(x.shape)}"
            )
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            "a and b must have the same number of bits; got "
            f"{a.shape[1]} and {b.shape[1]}"
        )
    a, b = _common_dtype(a, b)
    inter = a @ b.T
    union = a.sum(1, keepdim=True) + b.sum(1) - inter
    return torch.where(
        union > 0, inter / union.clamp_min(1), torch.ones_like(union)
    )


def best_constant_fingerprint(x, max_bits: int | None = None) -> torch.Tensor:
    r"""The constant fingerprint with the highest mean Tanimoto similarity to
    the rows of ``x``.

    A "model" that ignores its input and always answers the same fingerprint
    :math:`c` is the baseline a reconstruction must beat. Maximising
    :math:`\frac1N \sum_i T(x_i, c)` over all :math:`2^D` vectors is a
    combinatorial problem, so this searches in two steps:

    1. for every size :math:`k`, the :math:`k` most frequent bits of ``x``
       (the natural candidate of that size); keep the best :math:`k`;
    2. from there, flip single bits (on or off), always the flip that
       raises the mean similarity most, until no flip raises it.

    The result is a local optimum (no single flip improves it) at least as
    good as every top-:math:`k` candidate. Use it on training data and score
    it on held-out data. Explained in chapter 8.

    Parameters
    ----------
    x : torch.Tensor or array_like
        Binary fingerprints, shape ``(N, D)``, ``N >= 1``.
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
        or not isinstance(k_max, numbers.Integral)
        or not 1 <= k_max <= d
    ):
        raise ValueError(
            f"max_bits must be an integer in [1, {d}]; got {max_bits!r}"
        )
    sizes = x.sum(1)
    order = torch.argsort(x.mean(0), descending=True, stable=True)
    # The mean Tanimoto of the top-k candidate for every k at once, from
    # cumulative intersections.
    inter = torch.cumsum(x[:, order[:k_max]], dim=1)  # (N, k_max)
    k = torch.arange(1, k_max + 1, dtype=x.dtype, device=x.device)
    scores = (inter / (sizes[:, None] + k - inter)).mean(0)
    best_k = int(scores.argmax()) + 1
    c = torch.zeros(d, dtype=x.dtype, device=x.device)
    c[order[:best_k]] = 1.0
    inter = x @ c
    current = (inter / (sizes + c.sum() - inter)).mean()
    while True:
        # Flipping bit j changes the intersection by +x_ij (on) or -x_ij
        # (off), and |c| by +1 or -1.
        sign = 1.0 - 2.0 * c
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

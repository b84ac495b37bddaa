"""Rows for xentlib.vae: the VAE, its loss terms, its trainer and Tanimoto
similarity."""

import math

import torch

from xentlib import vae
from xentlib.training import TrainConfig

from . import (
    Arg,
    Row,
    callable_,
    choice,
    module,
    nonneg_int,
    nonneg_real,
    positive_int,
    rng,
    tensor,
    unit_interval,
)

_gen = torch.Generator().manual_seed(0)
_bits = (torch.rand(6, 8, generator=_gen) < 0.3).float()
_logits = torch.randn(6, 8, generator=_gen)
_mu = torch.randn(6, 2, generator=_gen)
_logvar = torch.randn(6, 2, generator=_gen)


def _model():
    torch.manual_seed(0)
    return vae.FingerprintVAE(vae.VAEConfig(n_bits=8, hidden=4, latent=2))


def _fit_vae(
    model, train, held_out, config, beta, kl_warmup, rng, on_epoch_end
):
    return vae.fit_vae(
        model,
        train,
        held_out,
        config=config,
        beta=beta,
        kl_warmup=kl_warmup,
        rng=rng,
        on_epoch_end=on_epoch_end,
    )


def _bits_kinds(good):
    yield "a string", "not bits"
    yield "a scalar", 1.0
    yield "a bit of 0.5", torch.full_like(torch.as_tensor(good), 0.5)
    yield "NaN", torch.full_like(torch.as_tensor(good), math.nan)


#: Logits may be infinite (the exact limits), never NaN.
_logit_kinds = tensor(inf=False, neg_inf=False)

ROWS = [
    Row(
        "xentlib.vae.VAEConfig",
        vae.VAEConfig,
        {
            "n_bits": Arg(8, (positive_int,)),
            "hidden": Arg(4, (positive_int,)),
            "latent": Arg(2, (positive_int,)),
        },
    ),
    Row(
        "xentlib.vae.FingerprintVAE",
        vae.FingerprintVAE,
        {
            "config": Arg(
                vae.VAEConfig(n_bits=8, hidden=4, latent=2),
                (lambda g: [("a dict", {"n_bits": 8})],),
            ),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.vae.reparameterize",
        vae.reparameterize,
        {
            "mu": Arg(_mu, (tensor(),)),
            "logvar": Arg(_logvar, (tensor(),)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.vae.reconstruction_loss",
        vae.reconstruction_loss,
        {
            "logits": Arg(_logits, (_logit_kinds,)),
            "target": Arg(_bits, (tensor(), unit_interval)),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.vae.gaussian_kl",
        vae.gaussian_kl,
        {
            "mu": Arg(_mu, (tensor(),)),
            "logvar": Arg(_logvar, (tensor(),)),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.vae.negative_elbo",
        vae.negative_elbo,
        {
            "logits": Arg(_logits, (_logit_kinds,)),
            "target": Arg(_bits, (tensor(), unit_interval)),
            "mu": Arg(_mu, (tensor(),)),
            "logvar": Arg(_logvar, (tensor(),)),
            "beta": Arg(1.0, (nonneg_real,)),
        },
    ),
    Row(
        "xentlib.vae.elbo_terms",
        vae.elbo_terms,
        {
            "model": Arg(_model(), (module,)),
            "x": Arg(_bits, (tensor(rows=False, empty=True), unit_interval)),
            "n_samples": Arg(2, (positive_int,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.vae.fit_vae",
        _fit_vae,
        {
            "model": Arg(_model(), (module,)),
            "train": Arg(
                _bits, (tensor(rows=False, empty=True), unit_interval)
            ),
            "held_out": Arg(
                _bits[:3], (tensor(rows=False, empty=True), unit_interval)
            ),
            "config": Arg(
                TrainConfig(epochs=2, lr=1e-2, batch_size=4),
                (lambda g: [("a dict", {"epochs": 2})],),
            ),
            "beta": Arg(1.0, (nonneg_real,)),
            "kl_warmup": Arg(1, (nonneg_int,)),
            "rng": Arg(0, (rng,)),
            "on_epoch_end": Arg(None, (callable_,)),
        },
    ),
    Row(
        "xentlib.vae.tanimoto_similarity",
        vae.tanimoto_similarity,
        {
            "a": Arg(_bits, (_bits_kinds,)),
            "b": Arg(
                _bits[0],
                (
                    _bits_kinds,
                    lambda g: [("a bit short", g[:-1]), ("rows", _bits[:2])],
                ),
            ),
        },
    ),
    Row(
        "xentlib.vae.pairwise_tanimoto",
        vae.pairwise_tanimoto,
        {
            "a": Arg(_bits, (_bits_kinds, tensor(rows=False, nan=False))),
            "b": Arg(
                _bits[:4],
                (
                    _bits_kinds,
                    tensor(rows=False, nan=False),
                    lambda g: [("a bit short", g[:, :-1])],
                ),
            ),
        },
    ),
    Row(
        "xentlib.vae.best_constant_fingerprint",
        vae.best_constant_fingerprint,
        {
            "x": Arg(
                _bits,
                (_bits_kinds, tensor(rows=False, nan=False, empty=True)),
            ),
            "max_bits": Arg(
                4, (positive_int, lambda g: [("more than the bits", 9)])
            ),
        },
    ),
]

EXEMPT = {
    "xentlib.vae.FingerprintData": "a record that the loader builds",
    "xentlib.vae.ELBOTerms": "a result record that elbo_terms builds",
    "xentlib.vae.load_solubility_fingerprints": "takes no arguments",
}

"""Rows for xentlib.gan: the data, the networks, the losses, the trainers
and the measures of a generator."""

import math

import matplotlib
import torch

from xentlib import gan

from . import (
    Arg,
    Row,
    callable_,
    choice,
    module,
    nonneg_int,
    positive_int,
    positive_real,
    rng,
    tensor,
)

matplotlib.use("Agg")

_gen = torch.Generator().manual_seed(0)
_real = gan.sample_ternary_phases(40, rng=0)[0].float()
_xy = torch.rand(30, 2, generator=_gen)
_centres = torch.rand(4, 2, generator=_gen)
_logits = torch.randn(6, generator=_gen)


def _networks():
    torch.manual_seed(0)
    return gan.Generator(hidden=4), gan.Discriminator(hidden=4)


_G, _D = _networks()
_config = gan.GANConfig(steps=2, batch_size=4)


def _axes(ax, labels, grid):
    import matplotlib.pyplot as plt

    fig = None
    if ax == "axes":  # the good value: a fresh Axes (Axes do not deep-copy)
        fig, ax = plt.subplots()
    try:
        return gan.ternary_axes(ax, labels, grid)
    finally:
        if fig is not None:
            plt.close(fig)


def _fit_discriminator(discriminator, generator, real, config, rng):
    return gan.fit_discriminator(
        discriminator, generator, real, config=config, rng=rng
    )


def _fit_generator(generator, discriminator, config, loss, rng):
    return gan.fit_generator(
        generator, discriminator, config=config, loss=loss, rng=rng
    )


def _fit_gan(generator, discriminator, real, config, loss, rng, on_step_end):
    return gan.fit_gan(
        generator,
        discriminator,
        real,
        config=config,
        loss=loss,
        rng=rng,
        on_step_end=on_step_end,
    )


#: Logits may be infinite (the exact limits), never NaN; any shape goes.
_logit_kinds = tensor(rank=False, rows=False, inf=False, neg_inf=False)
#: Samples: (N, d) or (N,), finite, at least one row.
_sample_kinds = tensor(rows=False, empty=True)
_empty = tensor(
    rank=False, rows=False, empty=True, nan=False, inf=False, neg_inf=False
)
_config_kinds = (lambda g: [("a dict", {"steps": 2})],)
_network = (lambda g: [("not a model", "not a model")],)

ROWS = [
    Row(
        "xentlib.gan.sample_ternary_phases",
        gan.sample_ternary_phases,
        {
            "n": Arg(5, (nonneg_int,)),
            "phases": Arg(
                gan.TERNARY_PHASES[:3],
                (
                    tensor(rows=False),
                    lambda g: [("rows not summing to one", g * 0.5)],
                    lambda g: [("a negative fraction", -g)],
                ),
            ),
            "spread": Arg(0.1, (positive_real,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.gan.ternary_to_cartesian",
        gan.ternary_to_cartesian,
        {
            "compositions": Arg(
                _real,
                (
                    tensor(rank=False, rows=False),
                    lambda g: [
                        ("two components", g[:, :2]),
                        ("integers", g.long()),
                        ("a scalar", g[0, 0]),
                    ],
                ),
            )
        },
    ),
    Row(
        "xentlib.gan.ternary_axes",
        _axes,
        {
            "ax": Arg("axes", (lambda g: [("not an Axes", "not axes")],)),
            "labels": Arg(
                ("A", "B", "C"),
                (
                    lambda g: [
                        ("two labels", ("A", "B")),
                        ("a string", "ABC"),
                        ("numbers", (1, 2, 3)),
                    ],
                ),
            ),
            "grid": Arg(5, (nonneg_int,)),
        },
    ),
    Row(
        "xentlib.gan.Generator",
        gan.Generator,
        {
            "latent_dim": Arg(2, (positive_int,)),
            "hidden": Arg(4, (positive_int,)),
            "depth": Arg(1, (nonneg_int,)),
            "n_components": Arg(3, (positive_int,)),
        },
    ),
    Row(
        "xentlib.gan.Discriminator",
        gan.Discriminator,
        {
            "n_features": Arg(3, (positive_int,)),
            "hidden": Arg(4, (positive_int,)),
            "depth": Arg(1, (nonneg_int,)),
        },
    ),
    Row(
        "xentlib.gan.discriminator_loss",
        gan.discriminator_loss,
        {
            "real_logits": Arg(_logits, (_logit_kinds,)),
            "fake_logits": Arg(_logits[:4], (_logit_kinds,)),
            "reduction": Arg("mean", (choice, lambda g: [("none", "none")])),
        },
    ),
    Row(
        "xentlib.gan.discriminator_loss",
        gan.discriminator_loss,
        {
            "real_logits": Arg(_logits, (_empty,)),
            "fake_logits": Arg(_logits, (_empty,)),
        },
        note="empty batches",
    ),
    Row(
        "xentlib.gan.generator_loss",
        gan.generator_loss,
        {
            "fake_logits": Arg(_logits, (_logit_kinds,)),
            "kind": Arg("saturating", (choice,)),
            "reduction": Arg("mean", (choice,)),
        },
    ),
    Row(
        "xentlib.gan.GANConfig",
        gan.GANConfig,
        {
            "steps": Arg(2, (nonneg_int,)),
            "lr": Arg(1e-3, (positive_real,)),
            "batch_size": Arg(4, (positive_int,)),
            "betas": Arg(
                (0.5, 0.999),
                (
                    lambda g: [
                        ("beta2 of 1", (0.5, 1.0)),
                        ("a negative beta", (-0.1, 0.9)),
                        ("one number", 0.5),
                        ("NaN", (math.nan, 0.9)),
                    ],
                ),
            ),
            "optimizer": Arg("adam", (choice,)),
            "d_steps": Arg(1, (positive_int,)),
        },
    ),
    Row(
        "xentlib.gan.fit_discriminator",
        _fit_discriminator,
        {
            "discriminator": Arg(_D, (module,)),
            "generator": Arg(_G, _network),
            "real": Arg(_real, (_sample_kinds,)),
            "config": Arg(_config, _config_kinds),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.gan.fit_generator",
        _fit_generator,
        {
            "generator": Arg(_G, _network),
            "discriminator": Arg(_D, (module,)),
            "config": Arg(_config, _config_kinds),
            "loss": Arg("saturating", (choice,)),
            "rng": Arg(0, (rng,)),
        },
    ),
    Row(
        "xentlib.gan.fit_gan",
        _fit_gan,
        {
            "generator": Arg(_G, _network),
            "discriminator": Arg(_D, (module,)),
            "real": Arg(_real, (_sample_kinds,)),
            "config": Arg(_config, _config_kinds),
            "loss": Arg("non_saturating", (choice,)),
            "rng": Arg(0, (rng,)),
            "on_step_end": Arg(None, (callable_,)),
        },
    ),
    Row(
        "xentlib.gan.energy_distance",
        gan.energy_distance,
        {
            "x": Arg(_xy, (_sample_kinds,)),
            "y": Arg(_xy[:20], (_sample_kinds,)),
        },
    ),
    Row(
        "xentlib.gan.mode_counts",
        gan.mode_counts,
        {
            "samples": Arg(_xy, (_sample_kinds,)),
            "centres": Arg(_centres, (_sample_kinds,)),
            "radius": Arg(0.2, (positive_real,)),
        },
    ),
    Row(
        "xentlib.gan.modes_covered",
        gan.modes_covered,
        {
            "samples": Arg(_xy, (_sample_kinds,)),
            "centres": Arg(_centres, (_sample_kinds,)),
            "radius": Arg(0.2, (positive_real,)),
            "min_count": Arg(2, (positive_int,)),
        },
    ),
]

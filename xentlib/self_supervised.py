r"""Self-supervised learning by predicting rotations, measured by probes.

A network can learn features from images without a single label if it is
given a task whose answer the data supply for free. Rotation prediction
(Gidaris, Singh and Komodakis 2018) turns every unlabelled image :math:`x`
into four labelled examples, :math:`\mathrm{rot}_k(x)` with label :math:`k`
for :math:`k = 0, 1, 2, 3` quarter turns, and trains a classifier on them
with the ordinary four-class cross-entropy. How useful the features are is
then measured by a *linear probe*: the encoder is frozen, and a logistic
regression on its features is fitted with a few labels per class of a
downstream task.

This module holds the pieces chapter 10 needs:

* the pretext data, :func:`rotation_batch`;
* the network, :class:`ConvEncoder` (configured by :class:`EncoderConfig`)
  with a linear head, :class:`Classifier`;
* the fair random baseline: :func:`calibrate_batchnorm` re-estimates an
  untrained encoder's batch-normalisation statistics on unlabelled data,
  without a gradient step;
* the evaluation: :func:`extract_features`, :func:`few_shot_indices`,
  :class:`LinearProbe`, :func:`fit_linear_probe` and
  :func:`few_shot_probe_accuracies`.

Introduced in chapter 10.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from ._validation import check_class_target, check_finite
from .losses import cross_entropy
from .runtime import as_generator
from .training import accuracy, predict

__all__ = [
    "Classifier",
    "ConvEncoder",
    "EncoderConfig",
    "LinearProbe",
    "LinearProbeFit",
    "calibrate_batchnorm",
    "extract_features",
    "few_shot_indices",
    "few_shot_probe_accuracies",
    "fit_linear_probe",
    "rotation_batch",
]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_positive_int(value, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)}, dtype {x.dtype}"
    return type(x).__name__


def _check_images(x, name: str = "x") -> torch.Tensor:
    """A floating tensor of images ``(N, C, H, W)`` without NaN or inf."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(
            f"{name} must be a tensor of images of shape (N, C, H, W); got"
            f" {_describe(x)}"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must hold floating-point pixels; got dtype {x.dtype}"
        )
    check_finite(x, name)
    return x


def _check_features(x, name: str) -> torch.Tensor:
    """A floating tensor of feature rows ``(N, D)`` without NaN or inf."""
    if (
        not isinstance(x, torch.Tensor)
        or x.dim() != 2
        or not x.is_floating_point()
    ):
        raise ValueError(
            f"{name} must be a floating-point tensor of shape (N, D); got"
            f" {_describe(x)}"
        )
    check_finite(x, name)
    return x


def _check_rows(labels, name: str, features: torch.Tensor, of: str) -> None:
    """One label per row of ``features`` (named ``of``), when a tensor."""
    if (
        isinstance(labels, torch.Tensor)
        and labels.dim() == 1
        and labels.shape[0] != features.shape[0]
    ):
        raise ValueError(
            f"{name} must hold one label per row of {of}: {of} has"
            f" {features.shape[0]} rows, {name} {labels.shape[0]}"
        )


def _check_labels(labels, name: str):
    """Integer class indices >= 0 of shape ``(N,)``."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError(
            f"{name} must be a tensor of class indices of shape (N,); got"
            f" {_describe(labels)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"{name} must hold integer class indices; got dtype {labels.dtype}"
        )
    if labels.numel() == 0:
        raise ValueError(f"{name} is empty; expected at least one label")
    if int(labels.min()) < 0:
        raise ValueError(
            f"{name} must hold class indices >= 0; got {int(labels.min())}"
        )
    return labels


def rotation_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in four orientations, labelled by its quarter turns.

    Parameters
    ----------
    x : torch.Tensor
        Square images of shape ``(N, C, H, H)``.

    Returns
    -------
    rotated : torch.Tensor
        Shape ``(4N, C, H, H)``: first all images turned by 0 degrees, then
        all by 90 degrees counter-clockwise, then 180, then 270
        (:func:`torch.rot90` over the last two dimensions, ``k = 0, 1, 2,
        3``).
    turns : torch.Tensor
        Shape ``(4N,)``, int64, the ``k`` of each row, on ``x``'s device.

    Examples
    --------
    >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> rotated, turns = rotation_batch(x)
    >>> rotated[1, 0]
    tensor([[2., 4.],
            [1., 3.]])
    >>> turns
    tensor([0, 1, 2, 3])
    """
    x = _check_images(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(
            "x must hold square images (H == W) so that rotations keep the"
            f" shape; got {tuple(x.shape)}"
        )
    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    turns = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return rotated, turns


@dataclass(frozen=True)
class EncoderConfig:
    """The shape of a :class:`ConvEncoder`.

    Attributes
    ----------
    in_channels : int
        Channels of the input images (1 for grayscale).
    widths : tuple of int
        Output channels of each convolutional block.
    first_kernel : int
        Kernel side of the first convolution (odd); later ones are 3x3.
    """

    in_channels: int = 1
    widths: tuple[int, ...] = (16, 32, 64)
    first_kernel: int = 5

    def __post_init__(self) -> None:
        _check_positive_int(self.in_channels, "in_channels")
        if (
            not isinstance(self.widths, tuple)
            or not self.widths
            or not all(_is_int(w) and w >= 1 for w in self.widths)
        ):
            raise ValueError(
                "widths must be a non-empty tuple of positive integers; got"
                f" {self.widths!r}"
            )
        if (
            not _is_int(self.first_kernel)
            or self.first_kernel < 1
            or self.first_kernel % 2 == 0
        ):
            raise ValueError(
                "first_kernel must be a positive odd integer; got"
                f" {self.first_kernel!r}"
            )


class ConvEncoder(nn.Module):
    """A small convolutional network that turns an image into features.

    Each block is a convolution (no bias), batch normalisation and ReLU;
    2x2 max pooling sits between blocks. The features are the global
    averages of the last block's maps, shape ``(N, widths[-1])``;
    :meth:`block_features` gives every block's averages.

    Parameters
    ----------
    config : EncoderConfig
        Channels and first kernel.

    Examples
    --------
    >>> encoder = ConvEncoder(EncoderConfig(widths=(4, 8)))
    >>> encoder(torch.zeros(2, 1, 12, 12)).shape
    torch.Size([2, 8])
    """

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise ValueError(
                f"config must be an EncoderConfig; got {type(config).__name__}"
            )
        self.config = config
        blocks, channels = [], config.in_channels
        for i, width in enumerate(config.widths):
            kernel = config.first_kernel if i == 0 else 3
            conv = nn.Conv2d(
                channels, width, kernel, padding=kernel // 2, bias=False
            )
            blocks.append(
                nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU())
            )
            channels = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2)
        self.feature_dim = channels

    def block_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Global averages of every block's maps: ``(N, widths[i])`` each."""
        pooled = []
        for i, block in enumerate(self.blocks):
            x = block(self.pool(x) if i else x)
            pooled.append(x.mean(dim=(-2, -1)))
        return pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_features(x)[-1]


class Classifier(nn.Module):
    """An encoder followed by a linear layer to ``n_classes`` logits.

    With four classes and :func:`rotation_batch` it is the rotation
    predictor of the pretext task; with ten digit classes it is the fully
    supervised reference.

    Parameters
    ----------
    encoder : ConvEncoder
        Its ``feature_dim`` features feed the linear layer.
    n_classes : int
        Number of logits.
    """

    def __init__(self, encoder: ConvEncoder, n_classes: int):
        super().__init__()
        if not isinstance(encoder, ConvEncoder):
            raise ValueError(
                f"encoder must be a ConvEncoder; got {type(encoder).__name__}"
            )
        n_classes = _check_positive_int(n_classes, "n_classes")
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@torch.no_grad()
def calibrate_batchnorm(
    model: nn.Module, x: torch.Tensor, batch_size: int = 512
) -> nn.Module:
    """Re-estimate every batch-norm layer's statistics on ``x``, in place.

    A freshly built batch-norm layer holds a running mean of 0 and a running
    variance of 1, so in evaluation mode it does nothing, whatever the
    scale of the activations it receives. An untrained encoder compared with
    a trained one would be handicapped by this alone. Here every layer's
    running statistics are reset and set to the average, over batches of
    ``x``, of the batch means and variances that training mode computes
    (the running estimate without momentum), with no gradient and no change
    to any weight; :func:`torch.optim.swa_utils.update_bn` does the same.

    Parameters
    ----------
    model : nn.Module
        Its batch-norm layers are recalibrated; its training mode is
        restored afterwards.
    x : torch.Tensor
        Unlabelled images ``(N, C, H, W)`` on the model's device.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    nn.Module
        ``model`` itself.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model must be a torch.nn.Module; got {type(model).__name__}"
        )
    x = _check_images(x)
    batch_size = _check_positive_int(batch_size, "batch_size")
    if x.shape[0] < 2:
        raise ValueError(
            "x must hold at least 2 images to estimate a variance; got"
            f" {x.shape[0]}"
        )
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._NormBase)
    ]
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        for start in range(0, x.shape[0], batch_size):
            model(x[start : start + batch_size])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return model


def extract_features(
    encoder: ConvEncoder,
    x: torch.Tensor,
    blocks: int | tuple[int, ...] | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Frozen features of images: the encoder in evaluation mode, no grad.

    Parameters
    ----------
    encoder : ConvEncoder
        Maps ``(N, C, H, W)`` images to features; its mode is restored.
    x : torch.Tensor
        Images of shape ``(N, C, H, W)`` on the encoder's device.
    blocks : int or tuple of int, optional
        Which blocks' globally averaged maps to return, side by side
        (0-based; negative counts from the end); None gives the encoder's
        output, the last block's.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    torch.Tensor
        Features of shape ``(N, D)``, detached, with ``D`` the sum of the
        chosen blocks' widths.

    Examples
    --------
    >>> encoder = ConvEncoder(EncoderConfig(widths=(4, 8, 16)))
    >>> extract_features(encoder, torch.zeros(3, 1, 12, 12), (0, 1)).shape
    torch.Size([3, 12])
    """
    if not isinstance(encoder, ConvEncoder):
        raise ValueError(
            f"encoder must be a ConvEncoder; got {type(encoder).__name__}"
        )
    x = _check_images(x)
    batch_size = _check_positive_int(batch_size, "batch_size")
    if blocks is None:
        return predict(encoder, x, batch_size=batch_size)
    depth = len(encoder.blocks)
    chosen = (blocks,) if _is_int(blocks) else blocks
    if (
        not isinstance(chosen, tuple)
        or not chosen
        or not all(_is_int(b) and -depth <= b < depth for b in chosen)
    ):
        raise ValueError(
            f"blocks must be an integer in [{-depth}, {depth - 1}], a"
            f" non-empty tuple of them, or None; got {blocks!r}"
        )
    view = _BlockView(encoder, tuple(int(b) for b in chosen))
    return predict(view.train(encoder.training), x, batch_size=batch_size)


class _BlockView(nn.Module):
    """Some blocks' pooled features of an encoder, side by side."""

    def __init__(self, encoder: ConvEncoder, blocks: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.blocks = blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.encoder.block_features(x)
        return torch.cat([pooled[b] for b in self.blocks], dim=1)


def few_shot_indices(
    labels: torch.Tensor,
    per_class: int,
    rng: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Indices of ``per_class`` randomly chosen examples of every class.

    Parameters
    ----------
    labels : torch.Tensor
        Class indices, shape ``(N,)``; every class in ``[0, max]`` must
        have at least ``per_class`` examples.
    per_class : int
        Examples to keep per class.
    rng : int, torch.Generator or None
        The draw's randomness (see :func:`xentlib.runtime.as_generator`).

    Returns
    -------
    torch.Tensor
        Sorted indices into ``labels``, shape ``(n_classes * per_class,)``,
        on the CPU.

    Examples
    --------
    >>> labels = torch.tensor([0, 1, 0, 1, 1])
    >>> labels[few_shot_indices(labels, 2, rng=0)].bincount()
    tensor([2, 2])
    """
    labels = _check_labels(labels, "labels").detach().cpu()
    per_class = _check_positive_int(per_class, "per_class")
    generator = as_generator(rng)
    counts = torch.bincount(labels)
    if int(counts.min()) < per_class:
        short = int(counts.argmin())
        raise ValueError(
            f"labels must hold at least per_class={per_class} examples of"
            f" every class in [0, {len(counts) - 1}]; class {short} has"
            f" {int(counts[short])}"
        )
    chosen = []
    for c in range(len(counts)):
        members = torch.nonzero(labels == c).flatten()
        order = torch.randperm(len(members), generator=generator)
        chosen.append(members[order[:per_class]])
    return torch.cat(chosen).sort().values


class LinearProbe(nn.Module):
    """Logistic regression on standardized frozen features.

    ``forward(z)`` returns ``linear((z - mean) / std)``, logits of shape
    ``(M, n_classes)``. The weights start at zero: the probe's loss is
    convex, so the start does not change the optimum, and a fixed start
    makes the fit independent of the global random state.

    Parameters
    ----------
    mean, std : torch.Tensor
        The training features' mean and standard deviation, shape ``(D,)``;
        ``std`` finite and positive.
    n_classes : int
        Number of classes.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, n_classes: int):
        super().__init__()
        if (
            not isinstance(mean, torch.Tensor)
            or mean.dim() != 1
            or not mean.is_floating_point()
        ):
            raise ValueError(
                "mean must be a floating-point tensor of shape (D,); got"
                f" {_describe(mean)}"
            )
        check_finite(mean, "mean")
        if not isinstance(std, torch.Tensor) or std.shape != mean.shape:
            raise ValueError(
                "std must be a tensor of the mean's shape"
                f" {tuple(mean.shape)}; got {_describe(std)}"
            )
        if not std.is_floating_point() or not bool(
            (torch.isfinite(std) & (std > 0)).all()
        ):
            raise ValueError(
                "std must hold finite positive standard deviations; got"
                f" values in [{std.min().item():.3g}, {std.max().item():.3g}]"
            )
        n_classes = _check_positive_int(n_classes, "n_classes")
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().to(mean.dtype).clone())
        self.linear = nn.Linear(mean.shape[0], n_classes).to(
            device=mean.device, dtype=mean.dtype
        )
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std)


@dataclass(frozen=True)
class LinearProbeFit:
    """A fitted :class:`LinearProbe` and the objective it reached.

    Attributes
    ----------
    probe : LinearProbe
        Maps features ``(M, D)`` to logits ``(M, n_classes)``.
    loss : float
        The penalised cross-entropy at the optimum found.
    """

    probe: LinearProbe
    loss: float


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    *,
    weight_decay: float = 1e-3,
    max_iter: int = 200,
) -> LinearProbeFit:
    r"""Fit a multinomial logistic regression on frozen features.

    Each feature is standardized with the training features' mean and
    standard deviation (plus :math:`10^{-6}`, so that a constant feature
    is harmless); then the weights :math:`W, b` minimise

    .. math::

        -\frac1N \sum_i \ln \mathrm{softmax}(W z_i + b)_{y_i}
        + \frac{\lambda}{2}\lVert W \rVert^2,

    (the intercepts :math:`b` are not penalised), a smooth convex problem,
    solved from zero weights by L-BFGS with a strong-Wolfe line search
    (as scikit-learn's ``lbfgs`` solver does).
    The optimum does not depend on a step size or a number of epochs, so
    two feature sets probed alike differ only in their features.

    Parameters
    ----------
    features : torch.Tensor
        Shape ``(N, D)``, finite, at least two rows.
    labels : torch.Tensor
        Class indices in ``[0, n_classes - 1]``, shape ``(N,)``.
    n_classes : int
        Number of classes.
    weight_decay : float
        The L2 coefficient :math:`\lambda`, finite and >= 0.
    max_iter : int
        At most this many L-BFGS iterations.

    Returns
    -------
    LinearProbeFit
        The probe and its final objective.

    Raises
    ------
    FloatingPointError
        If the objective stops being finite.
    """
    features = _check_features(features, "features")
    n_classes = _check_positive_int(n_classes, "n_classes")
    _check_rows(labels, "labels", features, "features")
    labels = check_class_target(labels, features.shape[0], n_classes, "labels")
    if features.shape[0] < 2:
        raise ValueError(
            "features must have at least 2 rows to standardize; got"
            f" {features.shape[0]}"
        )
    if not _is_real(weight_decay) or not 0 <= weight_decay < math.inf:
        raise ValueError(
            "weight_decay must be a finite non-negative number; got"
            f" {weight_decay!r}"
        )
    max_iter = _check_positive_int(max_iter, "max_iter")
    features = features.detach()
    labels = labels.to(features.device)
    probe = LinearProbe(features.mean(0), features.std(0) + 1e-6, n_classes)
    params = list(probe.linear.parameters())
    opt = torch.optim.LBFGS(
        params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def objective():
        opt.zero_grad()
        penalty = probe.linear.weight.square().sum()
        loss = cross_entropy(probe(features), labels)
        loss = loss + 0.5 * weight_decay * penalty
        loss.backward()
        return loss

    loss = opt.step(objective).item()
    if not math.isfinite(loss) or not all(
        bool(torch.isfinite(p).all()) for p in params
    ):
        raise FloatingPointError(
            f"the probe's objective became {loss}; check the features"
        )
    return LinearProbeFit(probe, objective().item())


def few_shot_probe_accuracies(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    per_class: int,
    draws: int,
    rng: int | torch.Generator | None = None,
    weight_decay: float = 1e-3,
) -> torch.Tensor:
    """Test accuracies of linear probes fitted on random few-shot subsets.

    Each draw keeps ``per_class`` labelled examples of every class
    (:func:`few_shot_indices`), fits :func:`fit_linear_probe` on their
    features and scores it on all test features. With few labels the
    accuracy depends on which examples were drawn; the spread over draws
    shows by how much. Two feature sets probed with the same ``rng`` seed
    see the same draws, so their difference is a paired comparison.

    Parameters
    ----------
    train_features, train_labels : torch.Tensor
        The labelled pool, shapes ``(N, D)`` and ``(N,)``.
    test_features, test_labels : torch.Tensor
        Held-out examples, shapes ``(M, D)`` and ``(M,)``, with labels among
        the pool's classes.
    per_class : int
        Labelled examples per class in each draw.
    draws : int
        Number of random subsets.
    rng : int, torch.Generator or None
        The draws' randomness (see :func:`xentlib.runtime.as_generator`).
    weight_decay : float
        The probes' L2 coefficient (see :func:`fit_linear_probe`).

    Returns
    -------
    torch.Tensor
        Shape ``(draws,)``, float64: the test accuracy of each draw's probe.
    """
    train_features = _check_features(train_features, "train_features")
    _check_rows(train_labels, "train_labels", train_features, "train_features")
    train_labels = _check_labels(train_labels, "train_labels")
    test_features = _check_features(test_features, "test_features")
    if test_features.shape[1] != train_features.shape[1]:
        raise ValueError(
            f"test_features must have shape (M, {train_features.shape[1]})"
            " like the training features; got"
            f" {tuple(test_features.shape)}"
        )
    n_classes = int(train_labels.max()) + 1
    _check_rows(test_labels, "test_labels", test_features, "test_features")
    test_labels = check_class_target(
        test_labels, test_features.shape[0], n_classes, "test_labels"
    )
    per_class = _check_positive_int(per_class, "per_class")
    draws = _check_positive_int(draws, "draws")
    if not _is_real(weight_decay) or not 0 <= weight_decay < math.inf:
        raise ValueError(
            "weight_decay must be a finite non-negative number; got"
            f" {weight_decay!r}"
        )
    generator = as_generator(rng)
    scores = []
    for _ in range(draws):
        idx = few_shot_indices(train_labels, per_class, generator)
        idx = idx.to(train_features.device)
        probe = fit_linear_probe(
            train_features[idx],
            train_labels[idx],
            n_classes,
            weight_decay=weight_decay,
        ).probe
        scores.append(accuracy(predict(probe, test_features), test_labels))
    return torch.tensor(scores, dtype=torch.float64)

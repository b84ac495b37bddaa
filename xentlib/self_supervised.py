"""Self-supervised learning by predicting rotations, and linear probes.

A network can learn useful features from images without a single label if it
is given a task whose answer the data supply for free. Rotation prediction
(Gidaris, Singh and Komodakis 2018) turns every unlabelled image :math:`x` into
four labelled examples: :math:`\\mathrm{rot}_k(x)` for :math:`k = 0, 1, 2, 3`
quarter turns, with label :math:`k`. A classifier trained on them with the
ordinary four-class cross-entropy

.. math::

    L = -\\frac{1}{4N} \\sum_{i=1}^{N} \\sum_{k=0}^{3}
        \\log \\mathrm{softmax}\\bigl(f(\\mathrm{rot}_k(x_i))\\bigr)_k

must notice what in an image has an "up": edges, shading, oriented
structures. How good its features are is then measured by a *linear probe*:
the network is frozen and only a logistic regression on its features is
trained, with few labels, for a downstream task.

This module holds the pieces chapter 10 needs: the unlabelled images (real
micrographs and textures that ship inside scikit-image), a seeded crop
sampler that keeps the pretext, probe-training and probe-test crops in
disjoint regions of each image, the rotation batch, a small convolutional
encoder with a linear head, feature extraction, the linear probe, and few-shot
probes of every block of an encoder (to choose the block on validation data).

Introduced in chapter 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .losses import cross_entropy
from .training import TrainConfig, accuracy, fit, predict

__all__ = [
    "SOURCES",
    "SPLITS",
    "brightness_gradient",
    "Classifier",
    "ConvEncoder",
    "crop_dataset",
    "EncoderConfig",
    "extract_features",
    "few_shot_block_accuracies",
    "few_shot_indices",
    "few_shot_probe_accuracies",
    "fit_linear_probe",
    "LinearProbe",
    "load_sources",
    "remove_brightness_gradient",
    "rotation_batch",
    "rotation_loss",
    "RotationPredictor",
    "sample_crops",
    "SourceImage",
    "split_mask",
]

#: The scikit-image pictures used as unlabelled data, in label order for the
#: downstream task "which picture does a crop come from?".
SOURCES = (
    "cell",
    "immunohistochemistry",
    "retina",
    "brick",
    "grass",
    "gravel",
)

#: How much larger a crop's window is in each picture than in the others: the
#: retina photograph has about three times the resolution of the rest.
_RELATIVE_SCALES = {"retina": 2}


@dataclass(frozen=True)
class SourceImage:
    """One unlabelled picture and where crops may be taken from it.

    Attributes
    ----------
    name : str
        The scikit-image function that loads it (``skimage.data.<name>``).
    pixels : numpy.ndarray
        Grayscale intensities in [0, 1], shape ``(H, W)``, float64.
    valid : numpy.ndarray or None
        Boolean mask of shape ``(H, W)``: a crop's window must lie where it is
        True (None: anywhere).
    scale : int
        Side of a crop's window in picture pixels per crop pixel; windows are
        averaged down by this factor.
    """

    name: str
    pixels: np.ndarray
    valid: np.ndarray | None
    scale: int


def _retina_disk(gray: np.ndarray, shrink: float = 0.9) -> np.ndarray:
    """The inside of the fundus photograph's circular field of view, rim excluded."""
    lit = gray > 0.08
    rows, cols = np.nonzero(lit)
    centre_r, centre_c = rows.mean(), cols.mean()
    radius = np.sqrt(lit.sum() / np.pi)
    rr, cc = np.mgrid[: gray.shape[0], : gray.shape[1]]
    return (rr - centre_r) ** 2 + (cc - centre_c) ** 2 <= (
        shrink * radius
    ) ** 2


def load_sources(
    names: tuple[str, ...] = SOURCES, *, scale: int = 1
) -> list[SourceImage]:
    """Load scikit-image's bundled micrographs and textures as grayscale pictures.

    Only pictures stored inside the scikit-image wheel are allowed (nothing is
    downloaded): ``cell`` (phase contrast), ``immunohistochemistry``,
    ``retina`` (a fundus photograph), ``brick``, ``grass`` and ``gravel``.
    Colour pictures become luminance with :func:`skimage.color.rgb2gray`. The
    retina is restricted to the inside of its circular field of view (its
    black surround and dark rim would tell a network where "up" is).

    Parameters
    ----------
    names : tuple of str
        Which pictures, a subset of :data:`SOURCES`.
    scale : int
        Picture pixels per crop pixel (see :func:`sample_crops`); 1 keeps the
        native resolution. The retina, with about three times the resolution
        of the others, gets twice this scale.

    Returns
    -------
    list of SourceImage
    """
    import skimage.data
    from skimage.color import rgb2gray

    if isinstance(names, str):
        names = (names,)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"names must be among {SOURCES}; got {unknown[0]!r}")
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, np.integer))
        or scale < 1
    ):
        raise ValueError(f"scale must be a positive integer; got {scale!r}")
    sources = []
    for name in names:
        picture = getattr(skimage.data, name)()
        gray = rgb2gray(picture) if picture.ndim == 3 else picture / 255.0
        gray = np.asarray(gray, dtype=np.float64)
        valid = _retina_disk(gray) if name == "retina" else None
        sources.append(
            SourceImage(
                name, gray, valid, int(scale) * _RELATIVE_SCALES.get(name, 1)
            )
        )
    return sources


#: The three disjoint parts of every picture: unlabelled crops for the pretext
#: task, labelled crops for training probes, labelled crops for testing them.
SPLITS = ("pretext", "train", "test")


def split_mask(
    shape: tuple[int, int], split: str, grid: int = 4
) -> np.ndarray:
    """Where in a picture a split's crops may lie: a fixed pattern of tiles.

    The picture is cut into a ``grid x grid`` array of tiles; tile
    :math:`(i, j)` belongs to part :math:`(j - i) \\bmod 4` of the pattern
    ``pretext, pretext, train, test``. So half of the tiles are for the
    pretext task and a quarter each for the probe's training and test crops,
    every row and column of tiles holds some of each (for ``grid = 4``), and
    crops of different splits never share a pixel.

    Parameters
    ----------
    shape : (int, int)
        The picture's ``(H, W)``.
    split : {"pretext", "train", "test"}
        Which part.
    grid : int
        Tiles per side (at least 2).

    Returns
    -------
    numpy.ndarray
        Boolean mask of shape ``(H, W)``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(
            f"grid must be an integer of at least 2; got {grid!r}"
        )
    height, width = shape
    tile_row = np.minimum(np.arange(height) * grid // height, grid - 1)
    tile_col = np.minimum(np.arange(width) * grid // width, grid - 1)
    part = (tile_col[None, :] - tile_row[:, None]) % 4
    wanted = {"pretext": (0, 1), "train": (2,), "test": (3,)}[split]
    return np.isin(part, wanted)


def _window_origins(valid: np.ndarray, window: int) -> np.ndarray:
    """Top-left corners (r, c) of every window x window square lying where ``valid`` is True."""
    height, width = valid.shape
    if height < window or width < window:
        return np.zeros((0, 2), dtype=np.int64)
    # An integral image counts the valid pixels of every window at once.
    counts = np.zeros((height + 1, width + 1), dtype=np.int64)
    counts[1:, 1:] = np.cumsum(
        np.cumsum(valid.astype(np.int64), axis=0), axis=1
    )
    inside = (
        counts[window:, window:]
        - counts[:-window, window:]
        - counts[window:, :-window]
        + counts[:-window, :-window]
    ) == window * window
    return np.argwhere(inside)


def sample_crops(
    image,
    n: int,
    *,
    size: int = 32,
    scale: int = 2,
    valid=None,
    standardize: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random square crops of a grayscale picture, from where a mask allows.

    A window of ``size * scale`` pixels is placed uniformly at random among
    all positions where it lies entirely inside ``valid`` (anywhere in the
    picture if None), and averaged down by ``scale`` in each direction to
    ``size x size``. Crops drawn with disjoint masks share no pixel, which is
    how chapter 10 keeps its pretext, probe-training and probe-test data
    apart (see :func:`split_mask`).

    With ``standardize``, each crop is shifted and scaled to zero mean and
    unit standard deviation, :math:`(x - \\bar x) / (s_x + 10^{-6})`, so that
    neither its brightness nor its contrast identifies the picture it came
    from; its structure, including any brightness gradient, remains.

    Parameters
    ----------
    image : array or Tensor
        A grayscale picture of shape ``(H, W)``.
    n : int
        Number of crops.
    size : int
        Side of a crop in pixels.
    scale : int
        Downsampling factor; the window has side ``size * scale``.
    valid : array, optional
        Boolean mask of shape ``(H, W)``; windows must lie where it is True.
    standardize : bool
        Standardize each crop (see above).
    generator : torch.Generator, optional
        A CPU generator for the positions, for repeatable draws.

    Returns
    -------
    torch.Tensor
        Crops of shape ``(n, 1, size, size)``, float32, on the CPU.
    """
    pixels = np.asarray(
        image.detach().cpu() if isinstance(image, torch.Tensor) else image,
        dtype=np.float64,
    )
    if pixels.ndim != 2:
        raise ValueError(
            "image must be a grayscale picture of shape (H, W); got shape"
            f" {pixels.shape}"
        )
    for name, value in (("size", size), ("scale", scale)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < 1
        ):
            raise ValueError(
                f"{name} must be a positive integer; got {value!r}"
            )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer; got {n!r}")
    if valid is None:
        valid = np.ones(pixels.shape, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != pixels.shape:
        raise ValueError(
            f"valid must have the image's shape {pixels.shape}; got"
            f" {valid.shape}"
        )
    window = size * scale
    origins = _window_origins(valid, window)
    if len(origins) == 0:
        raise ValueError(
            f"no {window}x{window} window fits inside the valid region of a"
            f" {pixels.shape[0]}x{pixels.shape[1]} image; use a smaller size"
            " or scale, or a larger region"
        )
    pick = torch.randint(len(origins), (n,), generator=generator).numpy()
    crops = np.empty((n, size, size), dtype=np.float64)
    for i, (r, c) in enumerate(origins[pick]):
        patch = pixels[r : r + window, c : c + window]
        crops[i] = patch.reshape(size, scale, size, scale).mean(axis=(1, 3))
    out = torch.from_numpy(crops).unsqueeze(1).float()
    return _standardize(out) if standardize and n else out


def brightness_gradient(x: torch.Tensor) -> torch.Tensor:
    """The least-squares brightness plane of each image: its slope down and across.

    Each image is fitted by :math:`a + b\\,u + c\\,v`, where :math:`u, v \\in [-1, 1]`
    run down the rows and across the columns; the slopes :math:`(b, c)` say
    in which direction the image gets brighter, and by how much.

    Parameters
    ----------
    x : torch.Tensor
        Images of shape ``(N, 1, H, W)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N, 2)``: ``b`` (down the rows) and ``c`` (across the columns).
    """
    return _plane_fit(_check_images(x, "x", gray=True))[1]


def remove_brightness_gradient(x: torch.Tensor) -> torch.Tensor:
    """Subtract each image's brightness plane, then standardize it again.

    A smooth brightness gradient (uneven illumination, a vignette) points in
    a direction that turns with the image, so a rotation predictor can read
    the rotation off it without looking at any structure: a shortcut.
    Subtracting the least-squares plane :math:`a + b\\,u + c\\,v` (see
    :func:`brightness_gradient`) removes it; the residual is rescaled to zero
    mean and unit standard deviation.

    Parameters
    ----------
    x : torch.Tensor
        Images of shape ``(N, 1, H, W)``.

    Returns
    -------
    torch.Tensor
        The flattened, standardized images, same shape and dtype as ``x``.
    """
    x = _check_images(x, "x", gray=True)
    residual, _ = _plane_fit(x)
    return _standardize(residual)


def _check_images(x, name: str, gray: bool = False) -> torch.Tensor:
    channels = "1" if gray else "C"
    if (
        not isinstance(x, torch.Tensor)
        or x.dim() != 4
        or not x.is_floating_point()
        or (gray and x.shape[1] != 1)
    ):
        what = (
            f"shape {tuple(x.shape)}, dtype {x.dtype}"
            if isinstance(x, torch.Tensor)
            else type(x).__name__
        )
        raise ValueError(
            f"{name} must be a floating tensor of images of shape (N,"
            f" {channels}, H, W); got {what}"
        )
    return x


def _plane_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual after the least-squares plane, and the plane's two slopes."""
    n, c, h, w = x.shape
    u = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device)[
        :, None
    ].expand(h, w)
    v = torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device)[
        None, :
    ].expand(h, w)
    # On a symmetric grid the constant, u and v are orthogonal, so each
    # coefficient is a separate projection.
    flat = x.reshape(n, c, h * w)
    u, v = u.reshape(-1), v.reshape(-1)
    b = flat @ u / (u @ u)
    s = flat @ v / (v @ v)
    residual = (
        flat
        - flat.mean(-1, keepdim=True)
        - b[..., None] * u
        - s[..., None] * v
    )
    return residual.reshape(x.shape), torch.stack([b[:, 0], s[:, 0]], dim=1)


def _standardize(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1)
    flat = (flat - flat.mean(1, keepdim=True)) / (
        flat.std(1, keepdim=True) + 1e-6
    )
    return flat.reshape(x.shape)


def crop_dataset(
    sources: list[SourceImage],
    n_per_source: int,
    *,
    split: str,
    size: int = 32,
    grid: int = 4,
    flatten: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same number of crops from each picture, with the picture's index as label.

    Parameters
    ----------
    sources : list of SourceImage
        From :func:`load_sources`; each supplies its mask and scale.
    n_per_source : int
        Crops per picture.
    split : {"pretext", "train", "test"}
        Which tiles of each picture the crops come from (:func:`split_mask`).
    size : int
        Side of a crop in pixels.
    grid : int
        Tiles per side of the split pattern.
    flatten : bool
        Remove each crop's brightness gradient
        (:func:`remove_brightness_gradient`); otherwise only standardize it.
    generator : torch.Generator, optional
        A CPU generator, for repeatable draws.

    Returns
    -------
    x : torch.Tensor
        Standardized crops, shape ``(len(sources) * n_per_source, 1, size, size)``, float32, CPU.
    y : torch.Tensor
        The index of each crop's picture in ``sources``, shape ``(N,)``, int64.
    """
    if len(sources) == 0:
        raise ValueError(
            "sources must hold at least one SourceImage; got none"
        )
    crops = []
    for source in sources:
        region = split_mask(source.pixels.shape, split, grid)
        if source.valid is not None:
            region &= source.valid
        crops.append(
            sample_crops(
                source.pixels,
                n_per_source,
                size=size,
                scale=source.scale,
                valid=region,
                standardize=not flatten,
                generator=generator,
            )
        )
    crops = torch.cat(crops)
    if flatten:
        crops = remove_brightness_gradient(crops)
    labels = torch.arange(len(sources)).repeat_interleave(n_per_source)
    return crops, labels


def rotation_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in four orientations, labelled by its number of quarter turns.

    Parameters
    ----------
    x : torch.Tensor
        Square images of shape ``(N, C, H, H)``.

    Returns
    -------
    rotated : torch.Tensor
        Shape ``(4N, C, H, H)``: first all images turned by 0 degrees, then
        all by 90 degrees counter-clockwise, then 180, then 270
        (:func:`torch.rot90` over the last two dimensions, ``k = 0, 1, 2, 3``).
    labels : torch.Tensor
        Shape ``(4N,)``, int64, the ``k`` of each row, on ``x``'s device.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = (
            tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        )
        raise ValueError(
            f"x must be a tensor of images of shape (N, C, H, W); got {shape}"
        )
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(
            "x must hold square images (H == W) so that rotations keep the"
            f" shape; got {tuple(x.shape)}"
        )
    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return rotated, labels


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of :class:`ConvEncoder`.

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


class ConvEncoder(nn.Module):
    """A small convolutional network that turns an image into a feature vector.

    Each block is convolution, batch normalisation and ReLU; 2x2 max pooling
    sits between blocks. Global average pooling of the last block's maps
    gives the features, shape ``(N, widths[-1])``. :meth:`block_features`
    pools every block's maps the same way, for probing each depth.
    """

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        if config.first_kernel < 1 or config.first_kernel % 2 == 0:
            raise ValueError(
                "first_kernel must be a positive odd integer; got"
                f" {config.first_kernel!r}"
            )
        if len(config.widths) == 0 or min(config.widths) < 1:
            raise ValueError(
                "widths must be a non-empty tuple of positive integers; got"
                f" {config.widths!r}"
            )
        self.config = config
        blocks = []
        channels = config.in_channels
        for i, width in enumerate(config.widths):
            kernel = config.first_kernel if i == 0 else 3
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(
                        channels,
                        width,
                        kernel,
                        padding=kernel // 2,
                        bias=False,
                    ),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                )
            )
            channels = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2)
        self.feature_dim = channels
        # Channels-last maps run these small convolutions about a quarter faster on a CPU
        # (oneDNN) and are native to GPU tensor cores; the arithmetic is the same.
        self.to(memory_format=torch.channels_last)

    @property
    def first_layer(self) -> nn.Conv2d:
        """The first convolution, whose filters act directly on pixels."""
        return self.blocks[0][0]

    def block_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Global averages of every block's maps: a list of ``(N, widths[i])`` tensors."""
        pooled = []
        x = x.contiguous(memory_format=torch.channels_last)
        for i, block in enumerate(self.blocks):
            x = block(self.pool(x) if i else x)
            pooled.append(x.mean(dim=(-2, -1)))
        return pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_features(x)[-1]


class Classifier(nn.Module):
    """An encoder followed by a linear layer to ``n_classes`` logits.

    With four classes and :func:`rotation_batch` it is the rotation predictor;
    with the picture labels it is the fully supervised reference.
    """

    def __init__(self, encoder: ConvEncoder, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class RotationPredictor(nn.Module):
    """The pretext model: it turns each input image four ways and classifies the turn.

    ``forward(x)`` applies :func:`rotation_batch` to the batch ``x`` of shape
    ``(N, C, H, H)`` and returns the ``(4N, 4)`` logits of the encoder plus a
    linear head, so that all four orientations of an image land in the same
    mini-batch (as in Gidaris et al. 2018). Train it with :func:`rotation_loss`.
    """

    def __init__(self, encoder: ConvEncoder):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rotated, _ = rotation_batch(x)
        return self.head(self.encoder(rotated))


def rotation_loss(
    input: torch.Tensor, images: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of rotation logits against the turns that :func:`rotation_batch` applied.

    Parameters
    ----------
    input : torch.Tensor
        Logits of shape ``(4N, 4)`` for the rotated batch, in the order of
        :func:`rotation_batch` (all images at 0 degrees, then 90, 180, 270).
    images : torch.Tensor
        The ``N`` unrotated images (only their number is used), so that the
        function can be passed to :func:`xentlib.training.fit` without a target.
    reduction : {"mean", "sum", "none"}
        As for :func:`xentlib.cross_entropy`.

    Returns
    -------
    torch.Tensor
        :math:`-\\frac{1}{4N}\\sum_{i,k} \\log \\mathrm{softmax}(z_{i,k})_k` for ``"mean"``.
    """
    n = images.shape[0]
    if not isinstance(input, torch.Tensor) or tuple(input.shape) != (4 * n, 4):
        got = (
            tuple(input.shape)
            if isinstance(input, torch.Tensor)
            else type(input).__name__
        )
        raise ValueError(
            f"input must hold rotation logits of shape (4N, 4) = ({4 * n}, 4)"
            f" for N = {n} images; got {got}"
        )
    labels = torch.arange(4, device=input.device).repeat_interleave(n)
    return cross_entropy(input, labels, reduction=reduction)


def extract_features(
    encoder: ConvEncoder,
    x: torch.Tensor,
    block: int | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Frozen features of images: the encoder in evaluation mode, without gradients.

    Parameters
    ----------
    encoder : ConvEncoder
        Maps ``(N, C, H, W)`` images to features.
    x : torch.Tensor
        Images of shape ``(N, C, H, W)`` on the encoder's device.
    block : int, optional
        Which block's globally averaged maps to return (0-based; negative
        indices count from the end); None gives the encoder's output, the last block.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    torch.Tensor
        Features of shape ``(N, D)``, detached; ``D = widths[block]``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = (
            tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        )
        raise ValueError(
            f"x must be a tensor of images of shape (N, C, H, W); got {shape}"
        )
    if block is None:
        return predict(encoder, x, batch_size=batch_size)
    depth = len(encoder.blocks)
    if (
        isinstance(block, bool)
        or not isinstance(block, int)
        or not -depth <= block < depth
    ):
        raise ValueError(
            f"block must be an integer in [{-depth}, {depth - 1}] or None; got"
            f" {block!r}"
        )

    # A view whose training mode is the encoder's own, so that predict() restores it.
    return predict(
        _BlockView(encoder, block).train(encoder.training),
        x,
        batch_size=batch_size,
    )


class _BlockView(nn.Module):
    """One block's pooled features of an encoder, as a module."""

    def __init__(self, encoder: ConvEncoder, block: int):
        super().__init__()
        self.encoder = encoder
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.block_features(x)[self.block]


def few_shot_indices(
    labels: torch.Tensor,
    per_class: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Indices of ``per_class`` randomly chosen examples of every class.

    Parameters
    ----------
    labels : torch.Tensor
        Class indices, shape ``(N,)``.
    per_class : int
        Examples to keep per class; every class must have at least this many.
    generator : torch.Generator, optional
        A CPU generator, for repeatable draws.

    Returns
    -------
    torch.Tensor
        Sorted indices into ``labels``, shape ``(n_classes * per_class,)``, on the CPU.
    """
    if (
        isinstance(per_class, bool)
        or not isinstance(per_class, int)
        or per_class < 1
    ):
        raise ValueError(
            f"per_class must be a positive integer; got {per_class!r}"
        )
    labels = labels.detach().cpu()
    chosen = []
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).flatten()
        if len(members) < per_class:
            raise ValueError(
                f"class {int(c)} has {len(members)} examples; per_class must"
                f" be at most that, got {per_class}"
            )
        chosen.append(
            members[
                torch.randperm(len(members), generator=generator)[:per_class]
            ]
        )
    return torch.cat(chosen).sort().values


class LinearProbe(nn.Module):
    """Logistic regression on frozen features, standardized with the training set's statistics."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, n_classes: int):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.shape[-1], n_classes).to(
            device=mean.device, dtype=mean.dtype
        )
        # Zero weights: the probe's loss is convex, so the start does not matter, and
        # a fixed start makes the fit independent of the global random state.
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std)


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    *,
    epochs: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-3,
) -> LinearProbe:
    """Fit a multinomial logistic regression on frozen features.

    Each feature is standardized with the training features' mean and
    standard deviation, then the weights :math:`W, b` minimise the
    cross-entropy :math:`-\\frac1N \\sum_i \\log \\mathrm{softmax}(W z_i + b)_{y_i}`
    with an L2 penalty (``weight_decay``), by full-batch Adam from zero.

    Parameters
    ----------
    features : torch.Tensor
        Shape ``(N, D)``.
    labels : torch.Tensor
        Class indices in ``[0, n_classes - 1]``, shape ``(N,)``.
    n_classes : int
        Number of classes.
    epochs, lr, weight_decay
        Full-batch Adam steps, step size and L2 coefficient.

    Returns
    -------
    LinearProbe
        Maps features of shape ``(M, D)`` to logits of shape ``(M, n_classes)``.
    """
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = (
            tuple(features.shape)
            if isinstance(features, torch.Tensor)
            else type(features).__name__
        )
        raise ValueError(
            f"features must be a tensor of shape (N, D); got {shape}"
        )
    if (
        not isinstance(labels, torch.Tensor)
        or labels.shape != features.shape[:1]
    ):
        shape = (
            tuple(labels.shape)
            if isinstance(labels, torch.Tensor)
            else type(labels).__name__
        )
        raise ValueError(
            f"labels must be a tensor of shape ({features.shape[0]},), one per"
            f" feature row; got {shape}"
        )
    if features.shape[0] < 2:
        raise ValueError(
            "features must have at least 2 rows to standardize; got"
            f" {features.shape[0]}"
        )
    features = features.detach()
    mean = features.mean(0)
    std = features.std(0) + 1e-6
    probe = LinearProbe(mean, std, n_classes)
    fit(
        probe,
        cross_entropy,
        features,
        labels.to(features.device),
        config=TrainConfig(epochs=epochs, lr=lr, weight_decay=weight_decay),
    )
    return probe


def few_shot_probe_accuracies(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    per_class: int,
    draws: int,
    generator: torch.Generator | None = None,
    **probe_options,
) -> torch.Tensor:
    """Test accuracies of linear probes trained on several random few-shot subsets.

    Each draw keeps ``per_class`` labelled examples of every class
    (:func:`few_shot_indices`), fits :func:`fit_linear_probe` on their
    features and scores it on all test features. With few labels the
    accuracy depends on which examples were drawn; the spread over draws
    shows by how much.

    Parameters
    ----------
    train_features, train_labels : torch.Tensor
        The labelled pool, shapes ``(N, D)`` and ``(N,)``.
    test_features, test_labels : torch.Tensor
        Held-out examples, shapes ``(M, D)`` and ``(M,)``.
    per_class : int
        Labelled examples per class in each draw.
    draws : int
        Number of random subsets.
    generator : torch.Generator, optional
        A CPU generator, for repeatable draws.
    **probe_options
        Passed to :func:`fit_linear_probe` (``epochs``, ``lr``, ``weight_decay``).

    Returns
    -------
    torch.Tensor
        Shape ``(draws,)``, float64: the test accuracy of each draw's probe.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer; got {draws!r}")
    if (
        test_features.dim() != 2
        or test_features.shape[1] != train_features.shape[-1]
    ):
        raise ValueError(
            f"test_features must have shape (M, {train_features.shape[-1]})"
            f" like the training features; got {tuple(test_features.shape)}"
        )
    n_classes = int(train_labels.max()) + 1
    scores = []
    for _ in range(draws):
        idx = few_shot_indices(train_labels, per_class, generator).to(
            train_features.device
        )
        probe = fit_linear_probe(
            train_features[idx], train_labels[idx], n_classes, **probe_options
        )
        scores.append(accuracy(predict(probe, test_features), test_labels))
    return torch.tensor(scores, dtype=torch.float64)


def few_shot_block_accuracies(
    encoder: ConvEncoder,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    evaluate: dict[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    per_class: int,
    draws: int,
    seed: int = 0,
    **probe_options,
) -> dict[str, torch.Tensor]:
    """Few-shot linear-probe accuracies on the pooled features of every block of an encoder.

    For each block :math:`b` and each of ``draws`` random few-shot subsets of
    the labelled pool (:func:`few_shot_indices`), a probe
    (:func:`fit_linear_probe`) is fitted on the frozen features of block
    :math:`b` (:func:`extract_features`) and scored on every evaluation set.
    The subsets come from a CPU generator seeded with ``seed`` afresh for each
    block, so every block, and every encoder probed with the same ``seed``,
    sees the same draws: differences are paired comparisons, and each row
    equals :func:`few_shot_probe_accuracies` of that block. A validation set
    says which block to probe; a test set, how good each block is.

    Parameters
    ----------
    encoder : ConvEncoder
        The frozen network.
    x_train, y_train : torch.Tensor
        The labelled pool of images ``(N, C, H, W)`` and labels ``(N,)``.
    evaluate : dict of str to (images, labels)
        The sets to score each probe on, by name.
    per_class, draws : int
        Labelled examples per class in each draw, and number of draws.
    seed : int
        Seed of the CPU generator that draws the few-shot subsets.
    **probe_options
        Passed to :func:`fit_linear_probe`.

    Returns
    -------
    dict of str to torch.Tensor
        For each evaluation set, a float64 tensor of shape ``(n_blocks, draws)``:
        the accuracy of each block's probe in each draw.

    Introduced in chapter 10.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer; got {draws!r}")
    if not isinstance(evaluate, dict) or not evaluate:
        raise ValueError(
            "evaluate must be a non-empty dict of name -> (images, labels);"
            f" got {evaluate!r}"
        )
    n_classes = int(y_train.max()) + 1
    scores = {
        name: torch.zeros(len(encoder.blocks), draws, dtype=torch.float64)
        for name in evaluate
    }
    for block in range(len(encoder.blocks)):
        train = extract_features(encoder, x_train, block)
        sets = {
            name: (extract_features(encoder, x, block), y)
            for name, (x, y) in evaluate.items()
        }
        generator = torch.Generator().manual_seed(seed)
        for draw in range(draws):
            idx = few_shot_indices(y_train, per_class, generator).to(
                train.device
            )
            probe = fit_linear_probe(
                train[idx], y_train[idx], n_classes, **probe_options
            )
            for name, (features, labels) in sets.items():
                scores[name][block, draw] = accuracy(
                    predict(probe, features), labels
                )
    return scores

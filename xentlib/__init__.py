"""xentlib: the code behind *Cross-Entropy, Run*, a book on cross-entropy.

The package is organised by idea, one module each:

* :mod:`xentlib.information` - surprise, entropy, cross-entropy, KL and JS
  divergences of probability vectors (chapters 1-2);
* :mod:`xentlib.losses` - cross-entropy losses from logits, with the semantics
  of ``torch.nn.functional`` (chapters 1, 3 and on);
* :mod:`xentlib.linear_models` - logistic and softmax regression fitted by
  gradient descent (chapter 3);
* :mod:`xentlib.noisy_labels` - label-noise transition matrices, forward and
  backward corrected losses, estimating the noise (chapter 4);
* :mod:`xentlib.biology` - DNA hairpin stability and protein localisation:
  threshold fits and multi-label metrics (chapter 5);
* :mod:`xentlib.imbalance` - focal loss, prior-shift corrections, rare-event
  metrics, a simulated binding screen and rare positives subsampled from
  real data (chapter 6);
* :mod:`xentlib.structured` - real protein chains with DSSP states, the
  window model, JS smoothness penalty, a linear-chain CRF, Q3 and
  fragmentation, Viterbi decoding (chapter 7);
* :mod:`xentlib.vae` - a variational autoencoder for binary fingerprints,
  its ELBO terms and Tanimoto similarity (chapter 8);
* :mod:`xentlib.gan` - generator and discriminator losses, a small GAN
  training loop, mode coverage and the energy distance (chapter 9);
* :mod:`xentlib.self_supervised` - rotation prediction on handwritten
  digits, a small CNN encoder, batch-norm calibration and few-shot linear
  probes (chapter 10);
* :mod:`xentlib.fairness` - the demographic-parity penalty and fair binary
  cross-entropy, group metrics (parity gap, equalised odds), bootstrap
  intervals of a gap, and the Adult and German credit data (chapter 11);
* :mod:`xentlib.physics` - variational energies by quadrature, Boltzmann
  distributions and free energies, Langevin sampling (chapter 12);
* :mod:`xentlib.attacks` - FGSM and PGD attacks, adversarial accuracy and
  PGD adversarial training (chapter 13);
* :mod:`xentlib.models` - the multilayer perceptron used by chapters 4, 9
  and 14;
* :mod:`xentlib.training` - the small training loop, prediction and accuracy
  (chapter 3 and on);
* :mod:`xentlib.calibration` - reliability curves and the expected
  calibration error, temperature scaling (chapters 5, 6 and 14);
* :mod:`xentlib.distillation` - soft targets, the distillation loss and the
  student loop (chapter 14);
* :mod:`xentlib.scale` - the chunked linear cross-entropy and the
  vocabulary-parallel loss (chapter 15), and :mod:`xentlib.benchmark`, which
  measures them;
* :mod:`xentlib.runtime` - device choice and seeding;
* :mod:`xentlib.datasets` - the book's data files;
* :mod:`xentlib.results` - recording a chapter's headline numbers;
* :mod:`xentlib.book` - executing, checking and rendering the book.

The most used functions are importable from the top level.
"""

from .datasets import data_path
from .information import (
    distribution_cross_entropy,
    entropy,
    js_divergence,
    kl_divergence,
    surprise,
)
from .losses import binary_cross_entropy, cross_entropy
from .results import clear_recorded, record, recorded
from .runtime import as_generator, resolve_device, seed_everything

__version__ = "0.1.0"

__all__ = [
    "as_generator",
    "binary_cross_entropy",
    "clear_recorded",
    "cross_entropy",
    "data_path",
    "distribution_cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "record",
    "recorded",
    "resolve_device",
    "seed_everything",
    "surprise",
]

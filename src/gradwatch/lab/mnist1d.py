"""MNIST-1D (Greydanus 2020), generated procedurally and deterministically; never downloaded.

Ten 12-point templates, one per digit, are each padded with a random number of zeros, stretched, rescaled,
shifted, given correlated background noise and white noise, sheared and resampled to 40 points — the
recipe of the MNIST-1D paper, implemented here with NumPy's ``Generator`` so a seed fixes the whole dataset.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

# The ten templates of the MNIST-1D paper (values in arbitrary units; normalised below).
TEMPLATES = np.array(
    [
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ]
)
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
FINAL_LENGTH = 40
EPS = 1e-8


def _templates() -> np.ndarray:
    t = TEMPLATES - TEMPLATES.mean(1, keepdims=True)
    t = t / t.std(1, keepdims=True)
    t = t - t[:, :1]  # every signal starts at 0
    return t / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _one(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pad = rng.integers(PADDING[0], PADDING[1] + 1)
    x = np.concatenate([template + EPS, np.zeros(pad)])
    x = _resample(x, len(template) + PADDING[1])  # stretch to 72 points
    x = x * (1 + SCALE_COEFF * (rng.random() - 0.5))  # rescale
    x = np.roll(x, rng.integers(MAX_TRANSLATION))  # shift
    background = gaussian_filter1d(CORR_NOISE_SCALE * rng.standard_normal(len(x)), 2)
    x = np.where(x != 0, x, background)  # correlated noise where no signal
    x = x + IID_NOISE_SCALE * rng.standard_normal(len(x))  # white noise
    x = x - SHEAR_SCALE * (rng.random() - 0.5) * np.linspace(-0.5, 0.5, len(x))  # shear
    return _resample(x, FINAL_LENGTH)


def make_mnist1d(num_samples: int = 5000, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """``x float64 [num_samples, 40]`` (standardised over the whole set) and ``y int64 [num_samples]``.

    Classes are balanced (num_samples // 10 per digit) and shuffled; the same seed gives the same data.
    """
    rng = np.random.default_rng(seed)
    templates = _templates()
    per_class = num_samples // len(templates)
    y = np.repeat(np.arange(len(templates)), per_class)
    x = np.stack([_one(templates[label], rng) for label in y])
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    return (x - x.mean()) / x.std(), y.astype(np.int64)

"""Datasets for the lab: ``load_dataset(name, ...)`` returns train/test tensors ready for a model.

- ``digits``: scikit-learn's bundled 8×8 handwritten digits (1797 images, no network: the embedded default);
- ``mnist``: the real 28×28 MNIST from its IDX files (see :mod:`gradwatch.lab.mnist` for where they are looked
  for); when only the t10k pair is present its 10,000 images are split into train and test;
- ``mnist1d``: MNIST-1D, generated procedurally (:mod:`gradwatch.lab.mnist1d`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from gradwatch.errors import ConfigError, check_choice

SCALES = ("unit", "standardize", "none")


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors of one dataset. ``x_*`` are float32, ``y_*`` int64 class indices."""

    name: str
    x_train: Tensor  # [n_train, *input_shape] or [n_train, n_features] when flattened
    y_train: Tensor  # [n_train]
    x_test: Tensor
    y_test: Tensor
    n_classes: int
    input_shape: tuple[int, ...]
    source: str = field(default="", compare=False)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
            f"classes={self.n_classes}, source={self.source!r})"
        )


@dataclass(frozen=True)
class _Raw:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    max_value: float | None  # the value that maps to 1 under scale="unit" (None: use the training max)
    source: str


def _digits(data_dir: str | os.PathLike | None, download: bool | None) -> _Raw:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _Raw(d.images, d.target, None, None, 16.0, "scikit-learn load_digits (UCI 8x8 digits)")


def _mnist(data_dir: str | os.PathLike | None, download: bool | None) -> _Raw:
    from gradwatch.lab import mnist

    found = mnist.locate(data_dir, download=download)
    x_test, y_test = mnist.load_arrays(found["test"])
    if "train" in found:
        x_train, y_train = mnist.load_arrays(found["train"])
        return _Raw(x_train, y_train, x_test, y_test, 255.0, f"MNIST 60k/10k from {found['test'][0].parent}")
    return _Raw(x_test, y_test, None, None, 255.0, f"MNIST t10k from {found['test'][0].parent} (split)")


def _mnist1d(data_dir: str | os.PathLike | None, download: bool | None) -> _Raw:
    from gradwatch.lab.mnist1d import make_mnist1d

    x, y = make_mnist1d()
    return _Raw(x, y, None, None, None, "MNIST-1D, generated (Greydanus 2020 recipe, seed 42)")


DATASETS: dict[str, Callable[[str | os.PathLike | None, bool | None], _Raw]] = {
    "digits": _digits,
    "mnist": _mnist,
    "mnist1d": _mnist1d,
}


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def _scale(x_train: np.ndarray, x_test: np.ndarray, scale: str, max_value: float | None):
    if scale == "unit":
        if max_value is None:  # min-max from the training split
            lo, hi = x_train.min(), x_train.max()
            return (x_train - lo) / (hi - lo), (x_test - lo) / (hi - lo)
        return x_train / max_value, x_test / max_value
    if scale == "standardize":  # per feature, statistics of the training split only
        mean, std = x_train.mean(0), x_train.std(0)
        std = np.where(std > 0, std, 1.0)
        return (x_train - mean) / std, (x_test - mean) / std
    return x_train, x_test


def load_dataset(
    name: str = "digits",
    *,
    data_dir: str | os.PathLike | None = None,
    flatten: bool = True,
    scale: str = "unit",
    test_fraction: float = 0.2,
    seed: int = 0,
    download: bool | None = None,
) -> Dataset:
    """Load a dataset as float32 inputs and int64 labels, split into train and test.

    Args:
        name: ``digits`` (default, offline), ``mnist`` or ``mnist1d``.
        data_dir: where the MNIST files are (else ``GRADWATCH_DATA``, else the cache).
        flatten: return inputs as ``[n, features]`` (else ``[n, *image_shape]``).
        scale: ``unit`` (to [0, 1]), ``standardize`` (zero mean, unit variance per feature, fitted on the
            training split), or ``none``.
        test_fraction: share of examples held out when the dataset has no fixed test set.
        seed: seed of that split (stratified by class).
        download: allow downloading MNIST into the cache when it is not found; None (the default) allows it
            only when the environment has ``GRADWATCH_DOWNLOAD=1``.
    """
    check_choice("dataset", name, DATASETS)
    check_choice("scale", scale, SCALES)
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError("test_fraction", test_fraction, "must be strictly between 0 and 1")
    raw = DATASETS[name](data_dir, download)
    if raw.x_test is None:
        x_train, x_test, y_train, y_test = _split(raw.x_train, raw.y_train, test_fraction, seed)
    else:
        x_train, x_test, y_train, y_test = raw.x_train, raw.x_test, raw.y_train, raw.y_test
    x_train, x_test = _scale(x_train.astype(np.float64), x_test.astype(np.float64), scale, raw.max_value)
    input_shape = tuple(x_train.shape[1:])
    if flatten:
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    as_x = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    return Dataset(
        name,
        as_x(x_train),
        as_y(y_train),
        as_x(x_test),
        as_y(y_test),
        int(max(y_train.max(), y_test.max())) + 1,
        input_shape,
        raw.source,
    )

"""Synthetic tasks of the seeds, generated from a seed (no files, no network).

- ``adding`` (Hochreiter & Schmidhuber 1997, seed 002): each step carries a value in [−1, 1] and a marker in
  {1, 0, −1}; X₁ is marked among the first 10 steps, X₂ among the first T/2 − 1; the first and last markers are
  −1 unless chosen; target 0.5 + (X₁ + X₂)/4, a sequence is solved when |error| < 0.04. Sequences here all have
  length T (the paper draws lengths in [T, T + T/10]) so they batch without padding.
- ``temporal_order`` (H&S 1997 task 6a, Pascanu et al. 2013): random distractors from {a, b, c, d}; X or Y at
  one step in [0.1T, 0.2T) and one in [0.5T, 0.6T); the class is the ordered pair (XX, XY, YX, YY).
- ``copy_memory`` (Arjovsky et al. 2016): 10 symbols from 1…8, T blanks (0), a delimiter (9) and 9 more blanks;
  the net must output blanks, then the 10 symbols in the last 10 steps (an output at every step).
- ``teacher_student``: x ~ N(0, I), y = a random one-hidden-layer tanh teacher (weights N(0, 1/fan_in)) + noise.
- ``polynomial`` (seed 004): x ~ U[−1, 1], y = sin(πx) + noise, features x¹ … x^D so a linear model is the
  degree-D polynomial of the lecture's under/over-fitting pictures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from gradwatch.errors import ConfigError
from gradwatch.lab.data import Dataset

IMAGE_DATASETS = ("digits", "mnist")
SEQUENCE_TASKS = ("adding", "temporal_order", "copy_memory")
REGRESSION_TASKS = ("adding", "teacher_student", "polynomial")
ADDING_TOLERANCE = 0.04  # H&S 1997: a sequence counts as solved when |prediction − target| < 0.04
COPY_SYMBOLS = 10  # copy_memory: symbols to remember (Arjovsky et al. 2016)
MIN_SEQ_LEN = {"adding": 6, "temporal_order": 10, "copy_memory": 2}  # X₂ lies in the first T/2 − 1 steps, …


def check_seq_len(name: str, seq_len: int) -> None:
    """Raise a :class:`ConfigError` when ``seq_len`` is too short for the sequence task ``name``."""
    if seq_len < MIN_SEQ_LEN.get(name, 0):
        raise ConfigError("seq_len", seq_len, f"{name} needs T ≥ {MIN_SEQ_LEN[name]}")


def adding(n: int, seq_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x`` [n, T, 2] (value, marker), ``y`` [n, 1] = 0.5 + (X₁ + X₂)/4."""
    check_seq_len("adding", seq_len)
    values = rng.uniform(-1.0, 1.0, size=(n, seq_len))
    markers = np.zeros((n, seq_len))
    markers[:, 0] = markers[:, -1] = -1.0
    half = seq_len // 2 - 1
    p1 = rng.integers(0, min(10, half), size=n)
    p2 = rng.integers(0, half - 1, size=n)
    p2 = p2 + (p2 >= p1)  # distinct from p1, still < half
    rows = np.arange(n)
    markers[rows, p1] = markers[rows, p2] = 1.0
    y = 0.5 + (values[rows, p1] + values[rows, p2]) / 4.0
    return np.stack([values, markers], axis=-1), y[:, None]


def temporal_order(n: int, seq_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x`` [n, T, 6] one-hot symbols (a, b, c, d, X, Y), ``y`` [n] class of the (first, second) pair."""
    check_seq_len("temporal_order", seq_len)
    symbols = rng.integers(0, 4, size=(n, seq_len))
    t1 = rng.integers(seq_len // 10, max(seq_len // 10 + 1, 2 * seq_len // 10), size=n)
    t2 = rng.integers(5 * seq_len // 10, max(5 * seq_len // 10 + 1, 6 * seq_len // 10), size=n)
    first, second = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)
    rows = np.arange(n)
    symbols[rows, t1], symbols[rows, t2] = 4 + first, 4 + second
    return np.eye(6)[symbols], 2 * first + second


def copy_memory(n: int, seq_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x`` [n, T + 20, 10] one-hot, ``y`` [n, T + 20] the symbol to output at every step."""
    total = seq_len + 2 * COPY_SYMBOLS
    seq = rng.integers(1, 9, size=(n, COPY_SYMBOLS))
    inputs = np.zeros((n, total), dtype=np.int64)
    inputs[:, :COPY_SYMBOLS] = seq
    inputs[:, seq_len + COPY_SYMBOLS - 1] = 9  # the delimiter: "start copying"
    targets = np.zeros((n, total), dtype=np.int64)
    targets[:, -COPY_SYMBOLS:] = seq
    return np.eye(10)[inputs], targets


def teacher_student(
    n: int, input_dim: int, width: int, noise: float, rng: np.random.Generator, teacher_rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` [n, d] ~ N(0, I), ``y`` [n, 1] = w₂ᵀ tanh(W₁x) + noise (teacher drawn from ``teacher_rng``)."""
    w1 = teacher_rng.normal(0, 1 / np.sqrt(input_dim), size=(width, input_dim))
    w2 = teacher_rng.normal(0, 1 / np.sqrt(width), size=(1, width))
    x = rng.normal(size=(n, input_dim))
    y = np.tanh(x @ w1.T) @ w2.T + noise * rng.normal(size=(n, 1))
    return x, y


def polynomial(n: int, degree: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x`` [n, D] = (x, x², …, x^D) for x ~ U[−1, 1], ``y`` [n, 1] = sin(πx) + noise."""
    x = rng.uniform(-1.0, 1.0, size=n)
    y = np.sin(np.pi * x) + noise * rng.normal(size=n)
    return x[:, None] ** np.arange(1, degree + 1)[None, :], y[:, None]


TASKS: dict[str, str] = {
    "adding": "adding problem (H&S 1997): regression from a 2-feature sequence of length T",
    "temporal_order": "temporal-order task (H&S 1997, Pascanu 2013): 4 classes from a sequence of length T",
    "copy_memory": "copy-memory task (Arjovsky 2016): output 10 symbols after T blanks",
    "teacher_student": "teacher–student regression: a random tanh teacher plus noise",
    "polynomial": "polynomial regression of degree D on sin(πx) + noise (seed 004)",
}


def make_task(
    name: str,
    *,
    n_train: int,
    n_test: int,
    seed: int,
    seq_len: int = 20,
    input_dim: int = 10,
    teacher_width: int = 32,
    degree: int = 3,
    noise: float = 0.1,
) -> Dataset:
    """Generate a synthetic task as a :class:`Dataset` (train and test drawn independently from one seed)."""
    makers: dict[str, Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
        "adding": lambda n, r: adding(n, seq_len, r),
        "temporal_order": lambda n, r: temporal_order(n, seq_len, r),
        "copy_memory": lambda n, r: copy_memory(n, seq_len, r),
        "teacher_student": lambda n, r: teacher_student(
            n, input_dim, teacher_width, noise, r, np.random.default_rng([seed, 1])
        ),
        "polynomial": lambda n, r: polynomial(n, degree, noise, r),
    }
    if name not in makers:
        raise ConfigError("dataset", name, "expected one of " + ", ".join(makers))
    if name == "polynomial" and degree < 1:
        raise ConfigError("degree", degree, "polynomial regression needs degree ≥ 1")
    rng = np.random.default_rng([seed, 0])
    x_train, y_train = makers[name](n_train, rng)
    x_test, y_test = makers[name](n_test, rng)
    regression = name in REGRESSION_TASKS
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.float32 if regression else torch.int64)  # noqa: E731
    n_classes = 0 if regression else int(max(y_train.max(), y_test.max())) + 1
    if name == "temporal_order":
        n_classes = 4
    if name == "copy_memory":
        n_classes = 10
    return Dataset(
        name, as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test), n_classes, tuple(x_train.shape[1:]), TASKS[name]
    )

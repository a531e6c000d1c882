"""Data for the zoo, all local: scikit-learn's digits (1797 real 8×8 images), the text of its data-set descriptions
(bytes), synthetic token tasks.
Every batch stream is drawn from a seeded ``torch.Generator`` so that a scenario replays exactly."""

from __future__ import annotations

from functools import lru_cache
import torch
import torch.nn.functional as F
from torch import Tensor


@lru_cache(maxsize=1)
def _digits() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0  # [1797, 64] in [0, 1]
    return x, torch.tensor(d.target, dtype=torch.long)


def digits(centre: bool = True) -> tuple[Tensor, Tensor]:
    """The digits as ``[1797, 64]`` features (centred and scaled to unit variance per pixel if ``centre``) and
    labels ``[1797]``."""
    x, y = _digits()
    if centre:
        x = (x - x.mean(0)) / (x.std(0) + 0.1)
    return x.clone(), y.clone()


def digit_images(size: int = 8) -> tuple[Tensor, Tensor]:
    """The digits as images ``[1797, 1, size, size]`` (centred), resized bilinearly when ``size`` ≠ 8."""
    x, y = digits()
    img = x.view(-1, 1, 8, 8)
    if size != 8:
        img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
    return img, y


def batches(x: Tensor, y: Tensor, size: int, gen: torch.Generator):
    """Endless random mini-batches (with replacement across batches) of ``(x, y)``."""
    while True:
        idx = torch.randint(0, len(x), (size,), generator=gen)
        yield x[idx], y[idx]


@lru_cache(maxsize=1)
def text_bytes() -> Tensor:
    """ASCII bytes of real English text that ships with scikit-learn (the descriptions of its bundled data sets),
    values below 128: ``[n]`` long."""
    from sklearn import datasets

    loaders = (
        datasets.load_digits,
        datasets.load_iris,
        datasets.load_wine,
        datasets.load_breast_cancer,
        datasets.load_diabetes,
        datasets.load_linnerud,
    )
    raw = "\n\n".join(load().DESCR for load in loaders).encode("ascii", "ignore")
    return torch.tensor(list(raw), dtype=torch.long)


def text_batches(seq: int, size: int, gen: torch.Generator):
    """Endless ``[size, seq + 1]`` windows of :func:`text_bytes` (inputs ``[:, :-1]``, targets ``[:, 1:]``)."""
    data = text_bytes()
    while True:
        start = torch.randint(0, len(data) - seq - 1, (size,), generator=gen)
        yield torch.stack([data[s : s + seq + 1] for s in start.tolist()])


def presence_batches(vocab: int, seq: int, size: int, gen: torch.Generator, token: int = 3):
    """A learnable sequence-classification task: random tokens ``[size, seq]`` (ids ≥ 1), label 1 when ``token``
    occurs in the sequence. The token is planted in half of the sequences, at a random place."""
    while True:
        ids = torch.randint(4, vocab, (size, seq), generator=gen)
        label = torch.randint(0, 2, (size,), generator=gen)
        where = torch.randint(0, seq, (size,), generator=gen)
        ids[label.bool(), where[label.bool()]] = token
        yield ids, label


def adding_batches(T: int, size: int, seed: int = 0, scale: float = 1.0):
    """The adding problem (Hochreiter & Schmidhuber 1997): values and a two-hot marker; target their marked sum."""
    g = torch.Generator().manual_seed(seed)
    while True:
        values = torch.rand(size, T, generator=g)
        marks = torch.zeros(size, T)
        idx = torch.stack(
            [torch.randint(0, T // 2, (size,), generator=g), torch.randint(T // 2, T, (size,), generator=g)], 1
        )
        marks.scatter_(1, idx, 1.0)
        yield torch.stack([values, marks], -1) * scale, (values * marks).sum(1)

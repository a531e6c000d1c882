"""Turn a :class:`~gradwatch.lab.Config` into tensors ready to train on: load or generate the data, hold out a
validation split, fit the preprocessing on the training split only, and shape the inputs for the model
(flat vectors for an MLP, [batch, steps, features] for a recurrent net: image rows become time steps)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gradwatch.errors import ConfigError
from gradwatch.lab.config import Config
from gradwatch.lab.data import DATASETS, Dataset, load_dataset
from gradwatch.lab.preprocess import Preprocessor
from gradwatch.lab.tasks import COPY_SYMBOLS, REGRESSION_TASKS, make_task


@dataclass
class Prepared:
    """The splits of one run (``x_val`` is empty when ``val_fraction`` is 0)."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    n_in: int  # features per example (MLP) or per step (recurrent)
    n_out: int  # output units
    regression: bool
    per_step: bool  # an output and a target at every time step (copy_memory)
    image_shape: tuple[int, ...]
    source: str
    dataset: Dataset

    @property
    def seq_len(self) -> int | None:
        return self.x_train.shape[1] if self.x_train.dim() == 3 else None


def _load(cfg: Config) -> Dataset:
    if cfg.dataset in DATASETS:
        return load_dataset(
            cfg.dataset,
            data_dir=cfg.data_dir,
            scale=cfg.scale,
            seed=cfg.seed,
            flatten=True,
            download=cfg.download or None,
        )
    return make_task(
        cfg.dataset,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        seed=cfg.seed,
        seq_len=cfg.seq_len,
        input_dim=cfg.input_dim,
        teacher_width=cfg.teacher_width,
        degree=cfg.degree,
        noise=cfg.noise,
    )


def _as_sequence(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """[n, features] → [n, steps, features per step]: image rows, or one feature per step for 1-D signals."""
    if len(shape) >= 2:
        return x.reshape(len(x), shape[0], -1)
    return x.reshape(len(x), -1, 1)


def _preprocess(cfg: Config, train: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Fit on the training split (per feature of a step for sequences), apply to every split."""
    if cfg.preprocess == "none":
        return (train, *others)
    flat = lambda t: t.reshape(-1, t.shape[-1])  # noqa: E731  [n·T, d] for sequences, [n, d] otherwise
    pre = Preprocessor(cfg.preprocess).fit(flat(train))
    width = pre.out_features or train.shape[-1]
    return tuple(pre.transform(flat(t)).reshape(*t.shape[:-1], width) for t in (train, *others))


def prepare(cfg: Config) -> Prepared:
    data = _load(cfg)
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    sequence_task = x_train.dim() == 3
    if cfg.recurrent and not sequence_task:
        x_train, x_test = _as_sequence(x_train, data.input_shape), _as_sequence(x_test, data.input_shape)
    if not cfg.recurrent and sequence_task:
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    n_val = int(round(cfg.val_fraction * len(x_train)))
    if cfg.val_fraction > 0 and not 1 <= n_val < len(x_train):
        most = (len(x_train) - 1) / len(x_train)
        emptied = "validation" if n_val < 1 else "training"
        raise ConfigError(
            "val_fraction",
            cfg.val_fraction,
            f"leaves an empty {emptied}"
            f" split of the {len(x_train)} training examples; use a value in "
            f"[{1 / len(x_train):.2g}, {most:.4g}]",
        )
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(x_train), generator=g)
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_val, y_val = x_train[val_idx], y_train[val_idx]
    x_train, y_train = x_train[train_idx], y_train[train_idx]
    x_train, x_val, x_test = _preprocess(cfg, x_train, x_val, x_test)
    regression = cfg.dataset in REGRESSION_TASKS
    n_out = y_train.shape[-1] if regression else data.n_classes
    device = torch.device(cfg.device)
    to = lambda t: t.to(device)  # noqa: E731
    return Prepared(
        to(x_train),
        to(y_train),
        to(x_val),
        to(y_val),
        to(x_test),
        to(y_test),
        x_train.shape[-1],
        n_out,
        regression,
        cfg.dataset == "copy_memory",
        tuple(data.input_shape),
        data.source,
        data,
    )


def task_loss(out: Tensor, y: Tensor, loss: str, reduction: str = "mean") -> Tensor:
    """Cross-entropy on logits or mean squared error (one-hot targets for classes); ``reduction="none"``
    gives one value per example (averaged over steps and outputs)."""
    if out.dim() == 3:  # per step: [B, T, C] → [B·T, C]
        per = task_loss(out.reshape(-1, out.shape[-1]), y.reshape(-1), loss, "none").reshape(out.shape[0], -1)
        per = per.mean(1)
        return per.mean() if reduction == "mean" else per
    if loss == "cross_entropy":
        return torch.nn.functional.cross_entropy(out, y, reduction=reduction)
    target = y if y.is_floating_point() else torch.nn.functional.one_hot(y, out.shape[-1]).to(out.dtype)
    per = ((out - target) ** 2).reshape(len(out), -1).mean(1)
    return per.mean() if reduction == "mean" else per


def accuracy(cfg: Config, out: Tensor, y: Tensor) -> float | None:
    """Share of examples solved: the right class; adding: |error| < 0.04 (H&S 1997); copy_memory: the 10
    recalled symbols; None for the other regression tasks."""
    from gradwatch.lab.tasks import ADDING_TOLERANCE

    if cfg.dataset == "adding":
        return float(((out - y).abs() < ADDING_TOLERANCE).float().mean())
    if y.is_floating_point():
        return None
    if out.dim() == 3:
        return float((out[:, -COPY_SYMBOLS:].argmax(-1) == y[:, -COPY_SYMBOLS:]).float().mean())
    return float((out.argmax(-1) == y).float().mean())

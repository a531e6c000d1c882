"""What the catalogue experiments that train networks with :func:`gradwatch.lab.train` share: the dataset knob
(MNIST when its files are found, the embedded digits otherwise or with ``--quick``), the run store they record
their runs in, and a few readers of a finished :class:`~gradwatch.lab.Run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Protocol

import numpy as np
from pydantic import Field, field_validator, model_validator

from gradwatch import lab
from gradwatch.errors import DataError, check_choice
from gradwatch.lab.data import DATASETS
from gradwatch.lab.experiments.base import ExperimentConfig
from gradwatch.stat_names import GRAD_NORM
from gradwatch.store import DEFAULT_STORE, RunStore


class TrainedExperimentConfig(ExperimentConfig):
    """:class:`ExperimentConfig` plus the dataset and the run store of experiments that train networks.

    Without ``--dataset`` the choice is made once, when the config is created, and recorded in it: MNIST when
    its files are found locally (never downloaded) in full mode, the embedded digits otherwise and with --quick.
    """

    EXTRA_DATASETS: ClassVar[tuple[str, ...]] = ()  # dataset names a subclass accepts besides the lab's

    dataset: str | None = Field(
        None,
        description="digits, mnist or mnist1d [default: mnist when its files are "
        "found, digits otherwise and with --quick]",
    )
    data_dir: str | None = Field(None, description="directory with the MNIST *-ubyte.gz files")
    store: str = Field(str(DEFAULT_STORE), description="SQLite run store the training runs are recorded in")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str | None) -> str | None:
        return None if v is None else check_choice("dataset", v, tuple(DATASETS) + cls.EXTRA_DATASETS)

    @model_validator(mode="after")
    def _resolve_dataset(self):
        if self.dataset is None:  # bypass validate_assignment: the value is already a valid name
            object.__setattr__(self, "dataset", "mnist" if not self.quick and mnist_found(self.data_dir) else "digits")
        return self

    @property
    def dataset_name(self) -> str:
        """``dataset`` as resolved when the config was created (set by then, never None)."""
        if self.dataset is None:  # pragma: no cover - _resolve_dataset sets it
            raise RuntimeError(f"{type(self).__name__}.dataset was not resolved")
        return self.dataset


def mnist_found(data_dir: str | None) -> bool:
    """Whether the MNIST files can be read locally (never downloads)."""
    from gradwatch.lab import mnist

    try:
        mnist.locate(data_dir, download=False)
    except DataError:
        return False
    return True


class BatchedConfig(Protocol):
    """A :class:`TrainedExperimentConfig` whose experiment has a ``batch_size`` knob."""

    @property
    def dataset(self) -> str | None: ...
    @property
    def data_dir(self) -> str | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def batch_size(self) -> int: ...


def training_config(cfg: BatchedConfig, steps: int, *, records: int = 100, **fields) -> lab.Config:
    """The ``lab.Config`` of the experiment's nets: its dataset, seed and batch size, ``steps`` optimizer steps
    (epochs unbounded), the watch recording about ``records`` times, and the experiment's ``fields``."""
    return lab.Config(
        dataset=cfg.dataset,
        data_dir=cfg.data_dir,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        epochs=10**6,
        steps=steps,
        watch_every=max(1, steps // records),
        **fields,
    )


@contextmanager
def open_store(cfg: TrainedExperimentConfig) -> Iterator[RunStore]:
    """The experiment's run store, closed afterwards."""
    with RunStore(cfg.store) as store:
        yield store


def error_rate(run, key: str = "accuracy") -> float:
    """1 − the last epoch's accuracy (``accuracy`` is the training split's, ``test_accuracy`` the test's);
    1.0 when training diverged (non-finite loss, hence no meaningful prediction)."""
    final = run.final
    if not np.isfinite(final.get("train_loss", np.nan)):
        return 1.0
    return 1.0 - float(final[key])


def accuracy_curve(run, key: str = "test_accuracy") -> tuple[list[int], list[float]]:
    """(optimizer steps, the metric) at the end of every epoch of ``run``."""
    return [int(m["step"]) for m in run.metrics], [float(m.get(key, np.nan)) for m in run.metrics]


def first_step_layer_norms(run, kind: str = "Linear") -> tuple[list[str], list[float]]:
    """(layer names, ‖∂L/∂θ‖ of each layer of type ``kind``) at the first recorded step of ``run``'s watch."""
    h = run.history
    keep = [j for j, k in enumerate(h.kinds) if k == kind]
    g = h.stat(GRAD_NORM)[0]
    return [h.layers[j] for j in keep], [float(g[j]) for j in keep]

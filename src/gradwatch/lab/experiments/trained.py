"""The options every catalogue experiment that trains networks shares: which image data, and where the runs are
stored. Experiments subclass :class:`TrainedExperimentConfig` and add their own knobs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from gradwatch.errors import check_choice
from gradwatch.lab.experiments.base import ExperimentConfig

IMAGE_DATA = ("digits", "mnist")
DEFAULT_STORE = "gradwatch-runs/runs.sqlite"


class TrainedExperimentConfig(ExperimentConfig):
    EXTRA_DATASETS: ClassVar[tuple[str, ...]] = ()  # dataset names a subclass accepts besides IMAGE_DATA

    dataset: str = Field("digits", description="digits (embedded) or mnist")
    data_dir: str | None = Field(None, description="directory with the MNIST *-ubyte.gz files")
    store: str = Field(DEFAULT_STORE, description="run store the trainings are recorded in")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return check_choice("dataset", v, IMAGE_DATA + cls.EXTRA_DATASETS)

"""Knobs shared by catalogue experiments, declared once with their checks.

- :class:`ActivationExperimentConfig`: an ``activation`` field checked against the registry (subclasses may
  redeclare the field with another default; the check still applies);
- :class:`NetExperimentConfig`: that plus ``dataset`` and ``data_dir``, for experiments that build an MLP on
  an image dataset.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from gradwatch.errors import check_choice
from gradwatch.lab.data import DATASETS
from gradwatch.lab.experiments.base import ExperimentConfig
from gradwatch.nn.activations import ACTIVATIONS


class ActivationExperimentConfig(ExperimentConfig):
    """:class:`ExperimentConfig` plus the activation, checked against :data:`gradwatch.nn.activations.ACTIVATIONS`."""

    activation: str = Field("sigmoid", description="sigmoid, tanh, relu, leaky_relu, elu, selu, ...")

    @field_validator("activation")
    @classmethod
    def _activation(cls, v: str) -> str:
        return check_choice("activation", v, ACTIVATIONS)


class NetExperimentConfig(ActivationExperimentConfig):
    """The activation plus the dataset of an MLP experiment."""

    dataset: str = Field("digits", description="digits (embedded), mnist or mnist1d")
    data_dir: str | None = Field(None, description="directory with the MNIST *-ubyte.gz files")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return check_choice("dataset", v, DATASETS)

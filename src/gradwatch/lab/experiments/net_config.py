"""The knobs shared by experiments that build an MLP on an image dataset: dataset, data_dir, activation.

Experiments subclass :class:`NetExperimentConfig` instead of repeating these fields and their checks.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from gradwatch.errors import check_choice
from gradwatch.lab.data import DATASETS
from gradwatch.lab.experiments.base import ExperimentConfig
from gradwatch.nn.activations import ACTIVATIONS


class NetExperimentConfig(ExperimentConfig):
    """:class:`ExperimentConfig` plus the dataset and the hidden activation, both checked against the registries."""

    dataset: str = Field("digits", description="digits (embedded), mnist or mnist1d")
    data_dir: str | None = Field(None, description="directory with the MNIST *-ubyte.gz files")
    activation: str = Field("sigmoid", description="sigmoid, tanh, relu, leaky_relu, elu, selu, ...")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return check_choice("dataset", v, DATASETS)

    @field_validator("activation")
    @classmethod
    def _activation(cls, v: str) -> str:
        return check_choice("activation", v, ACTIVATIONS)

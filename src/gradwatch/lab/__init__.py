"""The lab: datasets, models and the seeds' experiments."""

from gradwatch.lab.data import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]

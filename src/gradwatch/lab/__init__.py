"""The lab: datasets, models, one validated :class:`Config` and :func:`train` for every network of the seeds.

from gradwatch import lab
run = lab.train(lab.Config(depth=10, width=100, activation="sigmoid", init="xavier_uniform", epochs=5))
run.metrics[-1]["test_accuracy"], run.history
"""

from gradwatch.lab.config import Config
from gradwatch.lab.data import Dataset, load_dataset
from gradwatch.lab.fold import fold_batchnorm
from gradwatch.lab.run import Run
from gradwatch.lab.train import StepProgress, StopTraining, train

__all__ = ["Config", "Dataset", "Run", "StepProgress", "StopTraining", "fold_batchnorm", "load_dataset", "train"]

"""Imported once by the process pool's fork server, before it forks the workers: pays the imports every run
needs (torch, the lab, scikit-learn's datasets) and torch's lazy imports on the first optimizer (about 6 s on a
busy 2-core machine) once, instead of once per worker. Runs no tensor computation (fork safety)."""

import sklearn.datasets  # noqa: F401
import sklearn.model_selection  # noqa: F401
import torch

import gradwatch.lab.train  # noqa: F401
import gradwatch.sweep.worker  # noqa: F401

torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # triggers torch.optim's lazy imports; no step taken

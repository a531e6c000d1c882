"""Predict gradient flow before training: closed forms of the seeds and mean-field theory.

- :func:`chain` — the one-neuron-per-layer network (seeds 000/001/004) with its bounds.
- :func:`nielsen_interval_width`, :func:`nielsen_optimum` — seed 000's interval problem.
- :func:`variance_propagation` — seed 001's Xavier/He variance recursions with the activation's real statistics.
- :func:`mean_field`, :func:`critical_sigma_w2`, :func:`phase_diagram` — Poole et al. 2016, Schoenholz et al. 2017.
- :func:`rnn_bounds`, :func:`rnn_trajectory` — seed 002's Hochreiter bound and Pascanu's products.
- :func:`jacobian_spectrum` — dynamical isometry.
- :func:`compare_at_init` — the predictions beside what ``gradwatch.watch`` measures.
"""

from gradwatch.theory.chain import ChainResult, chain
from gradwatch.theory.compare import InitComparison, compare_at_init
from gradwatch.theory.init_variance import VariancePrediction, variance_propagation, weight_variance
from gradwatch.theory.jacobian import JacobianSpectrum, jacobian_spectrum
from gradwatch.theory.meanfield import MeanField, PhaseDiagram, critical_sigma_w2, mean_field, phase_diagram, q_star
from gradwatch.theory.nielsen import (
    NielsenOptimum,
    interval_width_numeric,
    min_weight_for_growth,
    nielsen_interval_width,
    nielsen_optimum,
)
from gradwatch.theory.rnn import RNNBounds, rnn_bounds, rnn_trajectory

__all__ = [
    "ChainResult",
    "chain",
    "InitComparison",
    "compare_at_init",
    "VariancePrediction",
    "variance_propagation",
    "weight_variance",
    "JacobianSpectrum",
    "jacobian_spectrum",
    "MeanField",
    "PhaseDiagram",
    "critical_sigma_w2",
    "mean_field",
    "phase_diagram",
    "q_star",
    "NielsenOptimum",
    "interval_width_numeric",
    "min_weight_for_growth",
    "nielsen_interval_width",
    "nielsen_optimum",
    "RNNBounds",
    "rnn_bounds",
    "rnn_trajectory",
]

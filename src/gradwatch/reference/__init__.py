"""The slides' algorithms, executable: NumPy, float64, written to be read beside the seeds.

- :mod:`~gradwatch.reference.mlp` — seed 003's forward pass storing z_j and v_j, its backward pass
  δ_j = W_jᵀ(δ_{j+1} ⊙ σ'_j(v_j)), the weight and bias Jacobians, residual connections and dropout.
- :mod:`~gradwatch.reference.batchnorm` — seed 001's batch normalisation: forward, the explicit backward
  formulas, running averages and inference as one linear map.
- :mod:`~gradwatch.reference.losses` — seed 003's two losses and their gradients δ_{n+1}.

Samples are the columns of every matrix (z_j has shape ``(n_j, m)`` for a batch of m), so the slides'
vector equations read unchanged; a gradient is summed over the batch.
The tests check every gradient against torch autograd (to 1e-10) and central finite differences (to 1e-6).
"""

from gradwatch.reference.batchnorm import (
    BatchNormCache,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference,
    fold_batchnorm,
    update_running,
)
from gradwatch.reference.losses import LOSSES, cross_entropy, squared_error
from gradwatch.reference.mlp import ForwardPass, Gradients, Network, backward, forward, loss_and_gradients

__all__ = [
    "BatchNormCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_inference",
    "fold_batchnorm",
    "update_running",
    "LOSSES",
    "cross_entropy",
    "squared_error",
    "Network",
    "ForwardPass",
    "Gradients",
    "forward",
    "backward",
    "loss_and_gradients",
]

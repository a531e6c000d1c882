"""The theory's prediction at initialisation for a playground config, drawn beside the measurement.

:func:`gradwatch.theory.variance_propagation` (seed 001's forward and backward variance recursions with the
activation's real Gaussian moments) gives the expected per-example ‖∂L/∂W^l‖ of a plain MLP at init. The
playground measures the gradient of the *batch-mean* loss, whose overall scale differs, so the page draws the
prediction's shape: ``ratio_to_output`` (each layer over the output layer), scaled to the measured output layer
at the first step. Other architectures (residual, normalised, recurrent, sparse or conv) have no closed form
here: the answer says so instead of drawing a wrong curve.
"""

from __future__ import annotations

from typing import Any

from gradwatch.errors import ConfigError
from gradwatch.stat_names import GRAD_NORM


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def prediction_at_init(cfg: Any, n_in: int, n_out: int, input_var: float) -> dict[str, Any]:
    """``{"available": True, "layers", "grad_norm", "ratio_to_output", ...}`` or ``{"available": False,
    "reason"}`` for a :class:`gradwatch.lab.Config` whose data has ``n_in`` inputs, ``n_out`` outputs and
    E[x²] = ``input_var``."""
    from gradwatch.theory.init_variance import WEIGHT_VARIANCE, variance_propagation

    if cfg.model != "mlp":
        return unavailable(f"no closed form for model={cfg.model} here (see `gradwatch theory rnn`)")
    for name, off in (("residual", cfg.residual), ("norm", cfg.norm != "none"), ("affine", cfg.affine != "dense")):
        if off:
            return unavailable(f"the variance recursion is for plain dense MLPs ({name}={getattr(cfg, name)})")
    if cfg.init not in WEIGHT_VARIANCE:
        return unavailable(f"no weight variance known for init={cfg.init}")
    sizes = [n_in, *cfg.hidden_sizes, n_out]
    try:
        p = variance_propagation(sizes, cfg.activation, cfg.init, input_var=input_var, init_std=cfg.init_std)
    except (ConfigError, KeyError) as exc:
        return unavailable(str(exc))
    return {
        "available": True,
        "layers": p.layers,
        GRAD_NORM: p.grad_norm,
        "ratio_to_output": p.ratio_to_output,
        "input_var": input_var,
        "method": "variance propagation at init (Glorot & Bengio 2010, He et al. 2015), per example; "
        "drawn as a shape scaled to the measured output layer at the first step",
    }

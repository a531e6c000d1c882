"""Mean-field predictions against measured gradients at initialisation (Poole et al. 2016; Schoenholz et al. 2017).

A wide deep net h^l = W^l φ(h^{l−1}) + b^l with W_ij ~ N(0, σ_w²/N), b_i ~ N(0, σ_b²). Mean-field theory
(:mod:`gradwatch.theory.meanfield`) predicts that, once the pre-activation length has reached its fixed point
q*, the mean squared gradient with respect to the pre-activations changes by a factor χ₁ per layer going
backwards: ‖∂L/∂h^l‖² ∝ χ₁^{L−l}. Here ``nets`` random nets of ``width`` units and ``depth`` layers are drawn for
every σ_w² of a grid (σ_b² fixed), one random Gaussian input each, the loss L = u·h^L with a fixed random unit
vector u, and ‖∂L/∂h^l‖² is measured by autograd (float64). The measured χ₁ is exp of the least-squares slope
of ln ‖∂L/∂h^l‖² against L − l, fitted over the layers after the first ``burn_in`` (where q has settled);
it is compared with the theory's χ₁.

The phase diagram is χ₁ and the trainable depth 6 ξ_c (Schoenholz et al.: nets train roughly when L ≲ 6 ξ_c)
on a (σ_w², σ_b²) grid, with the critical line χ₁ = 1 where ξ_c diverges. Training nets of many depths across
the diagram (Schoenholz et al.'s figure) is the ``trainability`` experiment.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field

from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.net_config import ActivationExperimentConfig
from gradwatch.nn.activations import get_activation
from gradwatch.theory.meanfield import critical_line, critical_sigma_w2, mean_field, phase_diagram

CLAIM = (
    "At initialisation the measured per-layer growth of the squared gradient in wide random nets matches the "
    "mean-field χ₁ across σ_w² — below 1 (vanishing) in the ordered phase, above 1 (exploding) in the chaotic "
    "one — and the trainable depth 6 ξ_c peaks at the critical line χ₁ = 1."
)
CHI_RTOL = 0.05  # measured χ₁ within this relative error of the prediction
SIGMA_W2_GRID = [0.5, 1.0, 1.5, 1.76, 2.0, 2.5, 3.0, 4.0]
QUICK_SIGMA_W2 = [0.5, 1.0, 1.76, 2.5, 4.0]


class MeanFieldConfig(ActivationExperimentConfig):
    activation: str = Field("tanh", description="activation φ (Schoenholz et al.: tanh)")
    sigma_b2: float = Field(0.05, ge=0, description="bias variance σ_b² of the measured nets")
    width: int = Field(500, ge=10, description="units per layer N (--quick: 200)")
    depth: int = Field(40, ge=5, description="layers L of the measured nets (--quick: 20)")
    # also in --quick: with 3 nets of width 200, finite-width noise put 2 seeds of 0–7 outside the 5 % tolerance
    nets: int = Field(8, ge=1, description="random nets averaged per σ_w²")
    burn_in: int = Field(5, ge=0, description="layers skipped before fitting, while q settles at q*")
    grid: int = Field(24, ge=4, description="σ_w² points of the phase diagram (--quick: 12)")


def gradient_profile(act: str, sigma_w2: float, sigma_b2: float, width: int, depth: int, seed: int) -> np.ndarray:
    """‖∂L/∂h^l‖² for l = 1 … L of one random net (float64), L = u·h^L with a random unit vector u."""
    g = torch.Generator().manual_seed(seed)
    phi = get_activation(act)
    h = torch.randn(width, generator=g, dtype=torch.float64, requires_grad=True)  # input with q⁰ = 1
    hs = []
    for layer in range(depth):
        w = torch.randn(width, width, generator=g, dtype=torch.float64) * math.sqrt(sigma_w2 / width)
        b = torch.randn(width, generator=g, dtype=torch.float64) * math.sqrt(sigma_b2)
        h = w @ (phi(h) if layer else h) + b  # [width]; the input itself is not squashed
        hs.append(h)
    u = torch.randn(width, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((hs[-1] * (u / u.norm())).sum(), hs)
    return torch.stack([v.pow(2).sum() for v in grads]).numpy()


def fitted_chi1(profile: np.ndarray, burn_in: int) -> float:
    """exp(slope) of ln ‖∂L/∂h^l‖² against L − l over layers l > burn_in (least squares)."""
    L = len(profile)
    steps = np.arange(L)[::-1][burn_in:]  # L − l for l = burn_in + 1 … L
    return float(np.exp(np.polyfit(steps, np.log(profile[burn_in:]), 1)[0]))


def _run(cfg: MeanFieldConfig, progress: Progress) -> ExperimentResult:
    width, depth = (min(cfg.width, 200), min(cfg.depth, 20)) if cfg.quick else (cfg.width, cfg.depth)
    nets, grid_n = cfg.nets, (min(cfg.grid, 12) if cfg.quick else cfg.grid)
    burn_in = min(cfg.burn_in, depth - 3)
    sweep = QUICK_SIGMA_W2 if cfg.quick else SIGMA_W2_GRID
    rows, profiles = [], {}
    for sw2 in progress.track(sweep, "σ_w² sweep", total=len(sweep)):
        mf = mean_field(cfg.activation, sw2, cfg.sigma_b2)
        prof = np.exp(
            np.mean(
                [
                    np.log(gradient_profile(cfg.activation, sw2, cfg.sigma_b2, width, depth, cfg.seed * 1000 + k))
                    for k in range(nets)
                ],
                axis=0,
            )
        )
        measured = fitted_chi1(prof, burn_in)
        rows.append(
            {
                "sigma_w2": sw2,
                "chi1": mf.chi1,
                "measured_chi1": measured,
                "q_star": mf.q_star,
                "xi_c": mf.xi_c,
                "trainable_depth": mf.trainable_depth,
                "phase": mf.phase,
                "grad_sq": prof.tolist(),
                "predicted_grad_sq": (prof[-1] * mf.chi1 ** np.arange(depth)[::-1]).tolist(),
            }
        )
        profiles[f"σ_w² = {sw2:g} (χ₁ = {mf.chi1:.3g})"] = prof.tolist()
    sw_grid = np.geomspace(0.25, 8.0, grid_n)
    sb_grid = np.linspace(0.0, 0.3, max(3, grid_n // 2))
    diagram_rows = [
        phase_diagram(cfg.activation, sw_grid, np.array([float(b)]))
        for b in progress.track(sb_grid, "phase diagram", total=len(sb_grid))
    ]
    diagram = {
        "activation": cfg.activation,
        "sigma_w2": sw_grid.tolist(),
        "sigma_b2": sb_grid.tolist(),
        "chi1": [r.chi1[0] for r in diagram_rows],
        "xi_c": [r.xi_c[0] for r in diagram_rows],
        "critical_sigma_w2": [r.critical_sigma_w2[0] for r in diagram_rows],
    }
    chi, xi = np.array(diagram["chi1"]), np.array(diagram["xi_c"])
    line_b = np.linspace(sb_grid[0], sb_grid[-1], 31)  # the exact line, denser than the grid's rows
    diagram["critical_line"] = {
        "sigma_b2": line_b.tolist(),
        "sigma_w2": critical_line(cfg.activation, line_b.tolist(), lo=float(sw_grid[0]), hi=float(sw_grid[-1])),
    }
    critical = critical_sigma_w2(cfg.activation, cfg.sigma_b2)
    errors = [abs(r["measured_chi1"] / r["chi1"] - 1) for r in rows]
    same_side = all((r["measured_chi1"] < 1) == (r["chi1"] < 1) for r in rows if abs(r["chi1"] - 1) > 0.05)
    depth6 = 6 * xi
    peak = [int(np.argmax(np.where(np.isfinite(d), d, np.inf))) for d in depth6]  # inf: exactly critical
    crossing = [int(np.argmin(np.abs(np.log(c)))) for c in chi]  # grid point nearest χ₁ = 1
    peak_at = [float(sw_grid[k]) for k in peak]
    holds = max(errors) <= CHI_RTOL and same_side and all(abs(p - c) <= 1 for p, c in zip(peak, crossing))

    def join(key: str, fmt: str) -> str:
        return ", ".join(format(r[key], fmt) for r in rows)

    evidence = (
        f"over σ_w² ∈ {{{join('sigma_w2', 'g')}}} (σ_b² = {cfg.sigma_b2:g}, "
        f"{nets} nets of {depth}×{width} {cfg.activation}) the measured χ₁ "
        f"{join('measured_chi1', '.3f')} vs mean field {join('chi1', '.3f')} "
        f"(largest relative error {max(errors):.3f}); the critical "
        f"line is at σ_w² = {critical:.4f}, where 6 ξ_c diverges (6 ξ_c = "
        f"{join('trainable_depth', '.3g')})"
    )
    table = Table(
        f"{cfg.activation}, σ_b² = {cfg.sigma_b2:g}: {nets} random nets of {depth} layers × {width} units "
        f"(float64 autograd); χ₁ fitted over layers {burn_in + 1}…{depth}",
        [
            "σ_w²",
            "q*",
            "χ₁ mean field",
            "χ₁ measured",
            "relative error",
            "phase",
            "ξ_c",
            "6 ξ_c",
            "‖∂L/∂h¹‖² / ‖∂L/∂h^L‖²",
        ],
        [
            [
                r["sigma_w2"],
                r["q_star"],
                r["chi1"],
                r["measured_chi1"],
                e,
                r["phase"],
                r["xi_c"],
                r["trainable_depth"],
                r["grad_sq"][0] / r["grad_sq"][-1],
            ]
            for r, e in zip(rows, errors)
        ],
    )
    from gradwatch.report.plots import LayerProfiles
    from gradwatch.report.theory_plots import PhaseDiagramPlot

    figures = {
        "main": PhaseDiagramPlot(
            diagram,
            depth=depth,
            measured=[(r["sigma_w2"], cfg.sigma_b2) for r in rows],
            title=f"Mean-field phase diagram ({cfg.activation}): trainable depth 6 ξ_c",
        ),
        "gradients": LayerProfiles(
            profiles,
            ylabel="‖∂L/∂h^l‖² (geometric mean over nets)",
            title=f"Measured gradients at initialisation, {depth}×{width} {cfg.activation}",
        ),
    }
    numbers = {
        "sweep": rows,
        "critical_sigma_w2": critical,
        "phase_diagram": {
            **diagram,
            "trainable_depth": depth6.tolist(),
            "peak_sigma_w2": peak_at,
            "nearest_critical_sigma_w2": [float(sw_grid[k]) for k in crossing],
        },
        "width": width,
        "depth": depth,
        "nets": nets,
    }
    return ExperimentResult(
        name="meanfield",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=[table],
        figures=figures,
    )


EXPERIMENT = Experiment(
    name="meanfield",
    seeds="beyond the seeds (Poole et al. 2016; Schoenholz et al. 2017)",
    summary="measured vs mean-field per-layer gradient growth χ₁ over σ_w², phase diagram with 6 ξ_c",
    claim=CLAIM,
    config=MeanFieldConfig,
    run=_run,
)

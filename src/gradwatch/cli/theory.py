"""``gradwatch theory``: the lectures' equations and mean-field theory on your own numbers, before training."""

from __future__ import annotations

import math
from typing import overload

import typer
from rich.table import Table

from gradwatch.cli.common import console, err_console, output_file, print_json
from gradwatch.errors import ConfigError
from gradwatch.report.safe_text import markup_safe
from gradwatch.report.terminal import fmt_sci

MAX_GRID = 1000  # points per axis of the phase diagram

theory_app = typer.Typer(
    help="Predict gradient flow before training: closed forms and mean-field theory.", no_args_is_help=True
)


@overload
def _floats(param: str, text: str) -> list[float]: ...
@overload
def _floats(param: str, text: None) -> None: ...
@overload
def _floats(param: str, text: str | None) -> list[float] | None: ...
def _floats(param: str, text: str | None) -> list[float] | None:
    if text is None:
        return None
    items = text.replace(" ", "").split(",")
    if not text.strip():
        raise ConfigError(param, text, "expected at least one number")
    empty = [i + 1 for i, v in enumerate(items) if v == ""]
    if empty:
        raise ConfigError(
            param, text, f"value {empty[0]} of {len(items)} is empty; expected comma-separated numbers, e.g. 1.5,-2,0.7"
        )
    try:
        values = [float(v) for v in items]
    except ValueError:
        raise ConfigError(param, text, "expected comma-separated numbers, e.g. 1.5,-2,0.7") from None
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(param, text, "expected finite numbers (no inf or nan)")
    return values


def _ints(param: str, text: str) -> list[int]:
    values = _floats(param, text)
    if any(v != int(v) for v in values):
        raise ConfigError(param, text, "expected comma-separated integers, e.g. 784,100,100,10")
    return [int(v) for v in values]


def _progress(description: str):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


@theory_app.command()
def chain(
    weights: str = typer.Option(..., help="w_1,…,w_L: one weight per layer of the one-neuron chain."),
    biases: str | None = typer.Option(None, help="b_1,…,b_L (default: zeros)."),
    x: float = typer.Option(1.0, help="The input a_0."),
    activation: str = typer.Option("sigmoid", help="sigmoid, tanh, relu, elu, selu, ..."),
    loss_grad: float = typer.Option(1.0, help="∂C/∂a_L (ignored with --target)."),
    target: float | None = typer.Option(
        None, help="Use C = ½(a_L − t)², so ∂C/∂a_L = a_L − t (as in Polykovskiy's Technosphere lecture 5)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Nielsen, ch. 5: ∂C/∂b_j of the one-neuron-per-layer chain as a product of w_j σ'(z_j), with its bounds."""
    from gradwatch.theory import chain as run

    grad = (lambda y: y - target) if target is not None else loss_grad
    res = run(_floats("weights", weights), _floats("biases", biases), x, activation, grad)
    if json_:
        print_json(res.to_dict())
        return
    table = Table(
        title=f"{res.depth}-layer {res.activation} chain, x = {res.x:g}, ∂C/∂a_L = {res.loss_grad:.4g}",
        title_justify="left",
    )
    for col in ("layer", "w_j", "z_j", "a_j", "w_j σ'(z_j)", "∂C/∂b_j", "bound", "∂C/∂w_j"):
        table.add_column(col, justify="right")
    for j in range(res.depth):
        table.add_row(
            str(j + 1),
            f"{res.weights[j]:.4g}",
            f"{res.z[j]:.4g}",
            f"{res.a[j]:.4g}",
            f"{res.factors[j]:.4g}",
            fmt_sci(res.grad_b[j]),
            fmt_sci(res.bound_b[j]),
            fmt_sci(res.grad_w[j]),
        )
    console.print(table)
    console.print(
        f"∂C/∂x = {res.grad_x:.4g} (bound |∂C/∂a_L|·(max σ')^L·Π|w| = {res.bound_x:.4g}, "
        f"max σ' = {res.max_derivative:g}); the first layer gets "
        f"{abs(res.grad_b[0] / res.grad_b[-1]) if res.grad_b[-1] else math.nan:.3g}× the last layer's "
        f"bias gradient.",
        highlight=False,
    )


@theory_app.command()
def nielsen(
    w: str | None = typer.Option(None, help="Weights |w| at which to print the interval width, e.g. 4.5,6.9,10."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Nielsen's problem (ch. 5): the inputs a where a sigmoid neuron makes a gradient grow, |wσ'(wa + b)| ≥ 1."""
    from gradwatch.theory import interval_width_numeric, min_weight_for_growth, nielsen_interval_width, nielsen_optimum

    best = nielsen_optimum()
    ws = _floats("w", w) or [4.0, 5.0, best.weight, 10.0, 20.0]
    rows = [{"w": v, "width": nielsen_interval_width(v), "width_numeric": interval_width_numeric(v)} for v in ws]
    out = {"min_weight": min_weight_for_growth("sigmoid"), "optimum": best.to_dict(), "widths": rows}
    if json_:
        print_json(out)
        return
    console.print(f"|wσ'(z)| ≤ |w|/4, so a gradient can grow only if |w| ≥ {out['min_weight']:g}.", highlight=False)
    table = Table(title="width of {a : |wσ'(wa + b)| ≥ 1} (independent of b)", title_justify="left")
    for col in ("|w|", "closed form", "root finding"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['w']:.6g}", f"{r['width']:.6f}", f"{r['width_numeric']:.6f}")
    console.print(table)
    console.print(
        f"The interval is widest at |w| = {best.weight:.6f} (Nielsen, ch. 5: ≈ 6.9), width {best.width:.6f}: "
        "growth is possible only on a narrow band of inputs.",
        highlight=False,
    )


@theory_app.command()
def meanfield(
    activation: str = typer.Option("tanh", help="Any elementwise activation: tanh, relu, sigmoid, elu, selu, ..."),
    sigma_w2: float = typer.Option(1.5, help="σ_w²: weights ~ N(0, σ_w²/fan_in)."),
    sigma_b2: float = typer.Option(0.05, help="σ_b²: biases ~ N(0, σ_b²)."),
    depth: int = typer.Option(50, help="Network depth L for the gradient growth χ₁^L and the trainability check."),
    q0: float = typer.Option(1.0, help="Length of the input pre-activations, where the length map starts."),
    plot: str | None = typer.Option(None, help="Draw the (σ_w², σ_b²) phase diagram to this PNG file."),
    grid: int = typer.Option(25, help="Grid points per axis of the phase diagram."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Poole et al. 2016 / Schoenholz et al. 2017: q*, χ₁, c*, ξ_q, ξ_c, the phase and the trainable depth."""
    import numpy as np

    from gradwatch.theory import critical_sigma_w2, mean_field, phase_diagram

    if depth < 1:
        raise ConfigError("depth", depth, "expected a positive integer")
    if not 3 <= grid <= MAX_GRID:
        raise ConfigError("grid", grid, f"expected 3 to {MAX_GRID} points per axis (each is a fixed-point solve)")
    plot_path = output_file(plot)
    mf = mean_field(activation, sigma_w2, sigma_b2, q0=q0)
    out = mf.to_dict(depth=depth)
    try:
        out["critical_sigma_w2"] = critical_sigma_w2(activation, sigma_b2)
    except ConfigError:
        out["critical_sigma_w2"] = None
    if plot_path is not None:
        from gradwatch.report.theory_plots import PhaseDiagramPlot

        sw = np.linspace(0.1, max(4.0, 1.5 * sigma_w2), grid)
        sb = np.linspace(0.0, max(1.0, 1.5 * sigma_b2), grid)
        with _progress("phase diagram") as bar:
            task = bar.add_task("", total=grid * (grid + 1))
            diagram = phase_diagram(activation, sw, sb, progress=lambda i, n: bar.update(task, completed=i))
        PhaseDiagramPlot(diagram.to_dict(), depth=depth, point=(sigma_w2, sigma_b2)).save(plot_path)
        out["plot"] = plot
    if json_:
        print_json(out)
        return
    table = Table(title=f"mean field: {mf.activation}, σ_w² = {sigma_w2:g}, σ_b² = {sigma_b2:g}", title_justify="left")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for name, value, meaning in [
        ("q*", mf.q_star, "fixed point of the pre-activation length"),
        ("χ₁", mf.chi1, "per-layer growth of the mean squared gradient"),
        ("phase", mf.phase, "ordered: vanishing; chaotic: exploding"),
        ("c*", mf.c_star, "fixed point of the correlation of two inputs"),
        ("ξ_q", mf.xi_q, "depth scale of lengths (layers)"),
        ("ξ_c", mf.xi_c, "depth scale of correlations (layers)"),
        ("6 ξ_c", mf.trainable_depth, "about the deepest trainable network"),
        ("critical σ_w²", out["critical_sigma_w2"], f"χ₁ = 1 at σ_b² = {sigma_b2:g}"),
        (f"χ₁^{depth}", mf.gradient_growth(depth), f"‖∂L/∂h_1‖² / ‖∂L/∂h_{depth}‖² over {depth} layers"),
    ]:
        shown = value if isinstance(value, str) else ("—" if value is None else f"{value:.4g}")
        table.add_row(name, shown, meaning)
    console.print(table)
    verdict = "should train" if depth <= mf.trainable_depth else "is predicted not to train"
    console.print(
        f"A {depth}-layer network {verdict} (L {'≤' if depth <= mf.trainable_depth else '>'} 6ξ_c = "
        f"{mf.trainable_depth:.3g}).",
        highlight=False,
    )
    if plot is not None:
        console.print(f"wrote {markup_safe(plot_path)}", highlight=False)


@theory_app.command()
def variance(
    sizes: str = typer.Option("784,100,100,100,100,100,10", help="Layer widths n_0,…,n_L."),
    activation: str = typer.Option("tanh", help="Activation of the hidden layers."),
    init: str = typer.Option("xavier_uniform", help="normal, xavier_uniform, xavier_normal, he_normal, ..."),
    init_std: float = typer.Option(0.01, help="σ of the normal init."),
    input_var: float = typer.Option(1.0, help="E\\[x²] of the inputs."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """The Xavier/He variance recursions (Glorot & Bengio 2010; He et al. 2015): forward and backward variance
    per layer at initialisation."""
    from gradwatch.theory import variance_propagation

    res = variance_propagation(_ints("sizes", sizes), activation, init, input_var=input_var, init_std=init_std)
    if json_:
        print_json(res.to_dict())
        return
    table = Table(title=f"{activation}, init {init}: predicted at initialisation", title_justify="left")
    for col in ("layer", "neurons", "Var s (forward)", "E[φ'²]", "Var ∂L/∂s", "‖∂L/∂W‖", "/ output"):
        table.add_column(col, justify="right")
    for i, name in enumerate(res.layers):
        table.add_row(
            name,
            str(res.neurons[i]),
            fmt_sci(res.preact_var[i]),
            f"{res.deriv_moment[i]:.3g}",
            fmt_sci(res.backward_var[i]),
            fmt_sci(res.grad_norm[i]),
            f"{res.ratio_to_output[i]:.3g}",
        )
    console.print(table)


@theory_app.command()
def compare(
    width: int = typer.Option(256, help="Units per hidden layer (and inputs, outputs)."),
    depth: int = typer.Option(8, help="Hidden layers."),
    activation: str = typer.Option("tanh", help="Activation of the hidden layers."),
    init: str = typer.Option("xavier_uniform", help="normal, xavier_uniform, xavier_normal, he_normal, ..."),
    nets: int = typer.Option(2, help="Independent random networks."),
    examples: int = typer.Option(4, help="Examples per network, one backward pass each."),
    seed: int = typer.Option(0, help="Seed of weights, inputs and output gradients."),
    plot: str | None = typer.Option(None, help="Draw predicted vs measured to this PNG file."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Random networks at initialisation: per-layer gradient norms measured by watch beside the prediction."""
    from gradwatch.theory import compare_at_init

    plot_path = output_file(plot)
    with _progress("networks") as bar:
        task = bar.add_task("", total=nets)
        res = compare_at_init(
            width,
            depth,
            activation,
            init,
            nets=nets,
            examples=examples,
            seed=seed,
            progress=lambda i, n: bar.update(task, completed=i),
        )
    if plot_path is not None:
        from gradwatch.report.theory_plots import PredictedVsMeasured

        PredictedVsMeasured(
            res.layers, res.predicted, res.measured, title=f"{depth}×{width} {activation}, init {init}"
        ).save(plot_path)
    if json_:
        print_json(res.to_dict() | ({"plot": plot} if plot else {}))
        return
    table = Table(
        title=f"{depth}×{width} {activation}, init {init}: ‖∂L/∂W‖ per example ({nets} nets × {examples} examples)",
        title_justify="left",
    )
    for col in ("layer", "predicted", "measured (watch)", "measured / predicted"):
        table.add_column(col, justify="right")
    for name, p, m, r in zip(res.layers, res.predicted, res.measured, res.measured_over_predicted):
        table.add_row(name, fmt_sci(p), fmt_sci(m), f"{r:.3f}")
    console.print(table)
    if plot is not None:
        console.print(f"wrote {markup_safe(plot_path)}", highlight=False)

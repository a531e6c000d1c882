"""``gradwatch lab``: run the seeds' experiments."""

from __future__ import annotations

from typing import Optional

import typer

from gradwatch.cli.common import console, out_dir, print_json, write_json

lab_app = typer.Typer(help="Reproduce the experiments of the lecture seeds.", no_args_is_help=True)

EXPERIMENTS = {
    "paralysis": "Seed 001: mean |∂C/∂W| per layer of a deep sigmoid net at initialisation (network paralysis).",
}


@lab_app.callback(invoke_without_command=True)
def _lab(ctx: typer.Context,
         list_: bool = typer.Option(False, "--list", help="List the experiments with one line each.")) -> None:
    """Reproduce the experiments of the lecture seeds."""
    if list_:
        for name, line in EXPERIMENTS.items():
            console.print(f"[bold]{name:<18}[/] {line}")
        raise typer.Exit()


@lab_app.command()
def paralysis(
    dataset: str = typer.Option("digits", help="digits (embedded), mnist or mnist1d."),
    data_dir: Optional[str] = typer.Option(None, help="Directory with the MNIST *-ubyte.gz files."),
    depth: int = typer.Option(5, help="Number of hidden layers."),
    width: int = typer.Option(100, help="Units per hidden layer."),
    activation: str = typer.Option("sigmoid", help="sigmoid, tanh, relu, leaky_relu, elu, selu, ..."),
    init: str = typer.Option("normal", help="normal, xavier_uniform, xavier_normal, he_normal, ..."),
    init_std: Optional[float] = typer.Option(None, help="σ of the normal init [default: 1/√300 ≈ 0.0577]."),
    batch_size: int = typer.Option(1000, help="Training examples the gradient is averaged over."),
    seed: int = typer.Option(0, help="Seed of the weights and of the batch."),
    out: Optional[str] = typer.Option(None, help="Write paralysis.png (log-scale bars) and paralysis.json here."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Network paralysis (seed 001): gradients shrink layer by layer toward the input."""
    from gradwatch.lab.experiments import paralysis as exp
    from gradwatch.report.terminal import layer_gradient_table

    opts = dict(dataset=dataset, data_dir=data_dir, depth=depth, width=width, activation=activation,
                init=init, batch_size=batch_size, seed=seed)
    if init_std is not None:
        opts["init_std"] = init_std
    cfg = exp.ParalysisConfig(**opts)
    target = out_dir(out)
    result = exp.run(cfg)
    if target is not None:
        from gradwatch.report.plots import LayerGradientBars

        write_json(target / "paralysis.json", result.to_dict())
        title = f"{cfg.depth}×{cfg.width} {cfg.activation}, init {cfg.init} — {cfg.dataset}"
        LayerGradientBars(result.layers, result.mean_abs_grad, title=title).save(target / "paralysis.png")
    if json_:
        print_json(result.to_dict())
        return
    console.print(f"[bold]{exp.CLAIM}[/]")
    console.print(f"data: {result.dataset_source}; net {result.inputs} → {cfg.depth}×{cfg.width} {cfg.activation}"
                  f" → {result.neurons[-1]}; init {cfg.init}"
                  + (f" (σ = {cfg.init_std:.4g})" if cfg.init == "normal" else "")
                  + f"; batch {cfg.batch_size}; seed {cfg.seed}", highlight=False)
    console.print(layer_gradient_table(result.layers, result.neurons, result.mean_abs_grad,
                                       result.ratio_to_next, inputs=result.inputs,
                                       reference=exp.SEED_TABLE["mean_abs_grad"],
                                       reference_header="seed 001 (841→5×100→26)"))
    console.print(f"The first hidden layer gets {result.span:.3g}× less gradient than the output layer "
                  f"(seed 001: {exp.SEED_SPAN:.3g}×).", highlight=False)
    if target is not None:
        console.print(f"wrote {target / 'paralysis.png'} and {target / 'paralysis.json'}", highlight=False)

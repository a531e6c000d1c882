"""What a request may ask of the server: the playground's size and compute caps, concurrency and body size.

A playground config is checked in three stages, cheapest first, each a :class:`~gradwatch.errors.ConfigError`
(answered 422) naming the parameter, the value and what is allowed:

1. :func:`precheck` on the raw JSON values, before anything is built: known keys only, scalars or flat lists of
   scalars only, integers of at most 19 digits, short strings, and every capped field (depth, width, steps,
   ``sizes``, batch size, …) against its cap. ``{"depth": 10**9}`` is refused here in microseconds.
2. :class:`gradwatch.lab.Config` validation (unknown keys, types, ranges, combinations).
3. :func:`check_compute`: the training's cost in closed form (multiply-adds of a step, of an evaluation pass
   and of the whole run, from the layer widths), so no single step outlasts a stop request by much and no run
   holds a core for hours.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from gradwatch.errors import ConfigError

PLAYGROUND_MODELS = ("mlp", "rnn", "lstm", "gru")  # esn: no gradient flows, nothing to watch
DEFAULT_STEPS = 300  # a playground config without ``steps`` trains this many optimizer steps
UNBOUNDED_EPOCHS = 10**6  # ... and, without ``epochs``, stops on ``steps`` only
FORBIDDEN = ("data_dir", "device")  # paths and devices are the server's choice, never a request's

# Other fields with an upper bound (memory and time), beside depth, width, sizes and steps.
FIELD_CAPS = {
    "batch_size": 4096,
    "n_train": 20_000,
    "n_test": 10_000,
    "seq_len": 200,
    "input_dim": 1024,
    "teacher_width": 1024,
    "degree": 20,
    "conv_channels": 64,
    "pretrain_epochs": 20,
    "epochs": UNBOUNDED_EPOCHS,
}
MAX_INT = 2**63 - 1  # no config field takes a larger integer (torch's seeds stop there)
MAX_TEXT = 64  # characters of a text field (names of activations, inits, datasets, …)
MAX_LIST = 64  # items of a list field before its own cap (sizes: max_depth; tbptt: 2)
FLOPS_PER_MAC_TRAIN = 6  # forward, backward to the inputs, backward to the weights: 3 × 2 flops per weight use
FLOPS_PER_MAC_EVAL = 2
INPUTS = {"digits": 64, "mnist": 784, "mnist1d": 40}  # inputs per example (per time step for sequence tasks)
OUTPUTS = 10  # the widest output of the lab's data


@dataclass(frozen=True)
class Limits:
    """The server's caps. Defaults suit a laptop; ``gradwatch serve`` uses them."""

    max_depth: int = 64
    max_width: int = 1024
    max_steps: int = 5000
    max_concurrent: int = 2  # trainings running at once; more wait in a queue
    max_queued: int = 8  # beyond this a new playground run is refused (429)
    max_kept: int = 32  # finished playground runs kept in memory (their events), oldest dropped
    max_body_bytes: int = 16_384
    max_per_client: int = 4  # queued + running runs one client address may hold at once (beyond: 429)
    abandon_after_s: float = 30.0  # a run with no client watching its stream for this long is stopped
    max_step_flops: float = 1e9  # one training step: well under a second of a core (a stop bites at the next step)
    max_eval_flops: float = 5e9  # one evaluation pass over the training and test splits (once per epoch)
    max_run_flops: float = 3e11  # the whole run: a minute or two of a core
    field_caps: dict[str, int] = field(default_factory=lambda: dict(FIELD_CAPS))


def _cap(param: str, value: Any, cap: int) -> None:
    if value is not None and value > cap:
        raise ConfigError(param, value, f"the playground allows at most {cap}")


def _caps(limits: Limits) -> dict[str, int]:
    return {"depth": limits.max_depth, "width": limits.max_width, "steps": limits.max_steps, **limits.field_caps}


def _scalar(param: str, value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        raise ConfigError(param, value, f"integers in a config are at most {MAX_INT} in size")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ConfigError(param, value, f"at most {MAX_TEXT} characters")
    if not isinstance(value, (int, float, str)):
        raise ConfigError(param, value, "expected a number, a text or true/false")


def precheck(body: Any, limits: Limits) -> None:
    """Refuse a request body by its raw JSON values alone, before any config or list is built (see the module
    docstring). Costs O(number of keys + list items), whatever the numbers say."""
    from gradwatch.lab.config import Config

    if not isinstance(body, dict):
        raise ConfigError("config", type(body).__name__, "expected a JSON object of lab.Config fields")
    caps = _caps(limits)
    for name, value in body.items():
        if name in FORBIDDEN:
            raise ConfigError(name, value, "set by the server, not by a request; leave it out")
        if name not in Config.model_fields:
            raise ConfigError(
                name,
                value,
                "unknown parameter; known ones are " + ", ".join(n for n in Config.model_fields if n not in FORBIDDEN),
            )
        if isinstance(value, list):
            cap = limits.max_depth if name == "sizes" else MAX_LIST
            if len(value) > cap:
                raise ConfigError(name, value, f"at most {cap} items")
            for item in value:
                if isinstance(item, (list, dict)):
                    raise ConfigError(name, value, "expected a flat list of numbers")
                _scalar(name, item)
                if name == "sizes" and isinstance(item, (int, float)) and item > limits.max_width:
                    raise ConfigError(
                        "sizes",
                        value,
                        f"the playground allows at most {limits.max_depth} hidden "
                        f"layers of at most {limits.max_width} units",
                    )
            continue
        _scalar(name, value)
        if name in caps and isinstance(value, (int, float)) and not isinstance(value, bool):
            _cap(name, value, caps[name])


def training_flops(cfg: Any) -> tuple[float, float, float]:
    """(one training step, one evaluation pass, the whole run) in flops, in closed form from the config:
    multiply-adds per example = Σ fan_in × fan_out over the layers (× gates, + the recurrent matrices, × T for
    sequences), 6 flops per multiply-add to train, 2 to evaluate."""
    hidden = list(cfg.sizes) if cfg.sizes is not None else [cfg.width] * cfg.depth  # depth ≤ max_depth by now
    n_in = INPUTS.get(cfg.dataset, cfg.input_dim if cfg.dataset == "teacher_student" else 16)
    gates = {"lstm": 4, "gru": 3}.get(cfg.model, 1)
    widths = [n_in, *hidden, OUTPUTS]
    hidden_layers = itertools.pairwise(widths[:-1])  # input → hidden1 → … → last hidden
    macs = sum(gates * (a + 1) * b for a, b in hidden_layers) + (widths[-2] + 1) * OUTPUTS
    if cfg.model != "mlp":
        macs += sum(gates * h * h for h in hidden)  # recurrent matrices
    if cfg.affine == "conv":
        macs += 9 * cfg.conv_channels * INPUTS.get(cfg.dataset, 784)
    seq = cfg.sequence_length or 1
    n_train = {"digits": 1797, "mnist": 70_000, "mnist1d": 5000}.get(cfg.dataset, cfg.n_train)  # all splits
    n_test = {"digits": 0, "mnist": 0, "mnist1d": 0}.get(cfg.dataset, cfg.n_test)
    step = FLOPS_PER_MAC_TRAIN * macs * cfg.batch_size * seq
    evaluation = FLOPS_PER_MAC_EVAL * macs * (n_train + n_test) * seq
    steps = cfg.steps or cfg.epochs * -(-n_train // cfg.batch_size)
    epochs = min(cfg.epochs, -(-steps * cfg.batch_size // n_train))
    return step, evaluation, step * steps + evaluation * epochs


def check_compute(cfg: Any, limits: Limits) -> None:
    """Refuse a config whose step, evaluation pass or whole run costs more than the limits allow."""
    step, evaluation, total = training_flops(cfg)
    size = f"{cfg.depth}×{cfg.width}" if cfg.sizes is None else f"sizes={cfg.sizes}"
    what = f"a {size} {cfg.model} with batch {cfg.batch_size}"
    culprit = (
        ("batch_size", cfg.batch_size)
        if cfg.batch_size > 256
        else ("sizes", cfg.sizes)
        if cfg.sizes is not None
        else ("width", cfg.width)
        if cfg.width >= 8 * cfg.depth
        else ("depth", cfg.depth)
    )
    if step > limits.max_step_flops:
        raise ConfigError(
            *culprit,
            f"{what} costs {step:.2g} flops per step; the playground allows "
            f"{limits.max_step_flops:.2g} (make the net or the batch smaller)",
        )
    if evaluation > limits.max_eval_flops:
        raise ConfigError(
            *culprit,
            f"{what} costs {evaluation:.2g} flops per evaluation of the data; the "
            f"playground allows {limits.max_eval_flops:.2g} (make the net smaller)",
        )
    if total > limits.max_run_flops:
        raise ConfigError(
            "steps",
            cfg.steps,
            f"{what} costs {total:.2g} flops over {cfg.steps} steps; the "
            f"playground allows {limits.max_run_flops:.2g} per run (fewer steps "
            f"or a smaller net)",
        )


def playground_config(body: Any, limits: Limits, datasets: tuple[str, ...]):
    """A :class:`gradwatch.lab.Config` from a request body, with the playground's defaults and caps."""
    from gradwatch.lab.config import Config

    precheck(body, limits)
    data = {"steps": DEFAULT_STEPS, **body}
    data.setdefault("epochs", UNBOUNDED_EPOCHS)
    cfg = Config(**data)
    if cfg.model not in PLAYGROUND_MODELS:
        raise ConfigError(
            "model",
            cfg.model,
            "the playground trains " + ", ".join(PLAYGROUND_MODELS) + " (an esn has no gradient to watch)",
        )
    if cfg.dataset not in datasets:
        raise ConfigError("dataset", cfg.dataset, "available here: " + ", ".join(datasets))
    _cap("depth", cfg.depth, limits.max_depth)
    _cap("width", cfg.width, limits.max_width)
    if cfg.sizes is not None and (len(cfg.sizes) > limits.max_depth or max(cfg.sizes, default=0) > limits.max_width):
        raise ConfigError(
            "sizes",
            cfg.sizes,
            f"the playground allows at most {limits.max_depth} hidden layers of at most {limits.max_width} units",
        )
    _cap("steps", cfg.steps, limits.max_steps)
    for name, cap in limits.field_caps.items():
        _cap(name, getattr(cfg, name), cap)
    check_compute(cfg, limits)
    return cfg

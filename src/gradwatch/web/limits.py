"""What a request may ask of the server: the playground's size caps, concurrency and body size.

A playground config is validated exactly as :class:`gradwatch.lab.Config`, then against these caps; a value
over a cap is a :class:`~gradwatch.errors.ConfigError` (answered 422) naming the parameter, the value and the cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradwatch.errors import ConfigError

PLAYGROUND_MODELS = ("mlp", "rnn", "lstm", "gru")  # esn: no gradient flows, nothing to watch
DEFAULT_STEPS = 300     # a playground config without ``steps`` trains this many optimizer steps
UNBOUNDED_EPOCHS = 10 ** 6  # ... and, without ``epochs``, stops on ``steps`` only
FORBIDDEN = ("data_dir", "device")  # paths and devices are the server's choice, never a request's

# Other fields with an upper bound (memory and time), beside depth, width, sizes and steps.
FIELD_CAPS = {"batch_size": 4096, "n_train": 20_000, "n_test": 10_000, "seq_len": 200, "input_dim": 1024,
              "teacher_width": 1024, "degree": 20, "conv_channels": 64, "pretrain_epochs": 20,
              "epochs": UNBOUNDED_EPOCHS}


@dataclass(frozen=True)
class Limits:
    """The server's caps. Defaults suit a laptop; ``gradwatch serve`` uses them."""

    max_depth: int = 64
    max_width: int = 1024
    max_steps: int = 5000
    max_concurrent: int = 2      # trainings running at once; more wait in a queue
    max_queued: int = 8          # beyond this a new playground run is refused (429)
    max_kept: int = 32           # finished playground runs kept in memory (their events), oldest dropped
    max_body_bytes: int = 16_384
    field_caps: dict[str, int] = field(default_factory=lambda: dict(FIELD_CAPS))


def _cap(param: str, value: Any, cap: int) -> None:
    if value is not None and value > cap:
        raise ConfigError(param, value, f"the playground allows at most {cap}")


def playground_config(body: Any, limits: Limits, datasets: tuple[str, ...]):
    """A :class:`gradwatch.lab.Config` from a request body, with the playground's defaults and caps."""
    from gradwatch.lab.config import Config

    if not isinstance(body, dict):
        raise ConfigError("config", type(body).__name__, "expected a JSON object of lab.Config fields")
    for name in FORBIDDEN:
        if name in body:
            raise ConfigError(name, body[name], "set by the server, not by a request; leave it out")
    data = {"steps": DEFAULT_STEPS, **body}
    data.setdefault("epochs", UNBOUNDED_EPOCHS)
    cfg = Config(**data)
    if cfg.model not in PLAYGROUND_MODELS:
        raise ConfigError("model", cfg.model, "the playground trains " + ", ".join(PLAYGROUND_MODELS)
                          + " (an esn has no gradient to watch)")
    if cfg.dataset not in datasets:
        raise ConfigError("dataset", cfg.dataset, "available here: " + ", ".join(datasets))
    _cap("depth", cfg.depth, limits.max_depth)
    _cap("width", cfg.width, limits.max_width)
    if cfg.sizes is not None and (len(cfg.sizes) > limits.max_depth or max(cfg.sizes, default=0) > limits.max_width):
        raise ConfigError("sizes", cfg.sizes, f"the playground allows at most {limits.max_depth} hidden layers of "
                                              f"at most {limits.max_width} units")
    _cap("steps", cfg.steps, limits.max_steps)
    for name, cap in limits.field_caps.items():
        _cap(name, getattr(cfg, name), cap)
    return cfg

"""Sizes of the lab's nets checked against the machine's memory before anything is allocated (see
:mod:`gradwatch.nn.memory` for the estimate)."""

from __future__ import annotations

from typing import Any

from gradwatch.errors import ConfigError
from gradwatch.nn.memory import IMAGE_INPUTS, GiB, available_bytes, check_fits, mlp_bytes

MAX_GRID = 1000  # points per axis of a phase-diagram grid (each one is a fixed-point solve)


HOPELESS = 10**8  # a depth, width or batch above this is refused before estimating its memory


def check_config_size(cfg: Any) -> None:
    """Refuse a :class:`gradwatch.lab.Config` whose network cannot fit in the available memory."""
    for name in ("depth", "width", "batch_size"):  # before [width] * depth is even listed
        value = getattr(cfg, name)
        if isinstance(value, int) and value > HOPELESS:
            raise ConfigError(
                name,
                value,
                f"needs far more than the {available_bytes() / GiB:.3g} GiB of memory available; choose a smaller size",
            )
    hidden = cfg.hidden_sizes
    seq = cfg.sequence_length or 1
    gates = {"lstm": 4, "gru": 3}.get(cfg.model, 1)
    need = mlp_bytes(max(IMAGE_INPUTS, cfg.input_dim), hidden, 10, cfg.batch_size * seq, gates=gates)
    if cfg.sizes is not None:
        check_fits("sizes", cfg.sizes, f"a net with hidden widths {cfg.sizes}", need)
    culprit = (
        ("batch_size", cfg.batch_size)
        if cfg.batch_size * seq > 100 * max(hidden, default=1)
        else ("width", cfg.width)
        if cfg.width / 100 >= cfg.depth / 3
        else ("depth", cfg.depth)
    )
    check_fits(*culprit, f"a {cfg.depth}×{cfg.width} {cfg.model} with batch {cfg.batch_size}", need)


def check_experiment_size(cfg: Any) -> None:
    """Refuse an experiment config whose nets cannot fit: read its ``width``, ``*depth``, batch-like and
    ``grid`` fields (the experiments' own names), whichever it has."""
    fields = type(cfg).model_fields
    grid = getattr(cfg, "grid", None)
    if isinstance(grid, int) and grid > MAX_GRID:
        raise ConfigError("grid", grid, f"at most {MAX_GRID} points per axis (each is a fixed-point solve)")
    depths = {n: getattr(cfg, n) for n in fields if n.endswith("depth") and isinstance(getattr(cfg, n), int)}
    width = getattr(cfg, "width", None)
    if not depths and width is None:
        return
    width = width if isinstance(width, int) else IMAGE_INPUTS
    depth_name, depth = max(depths.items(), key=lambda kv: kv[1], default=("depth", 1))
    batches = [
        getattr(cfg, n)
        for n in fields
        if n in ("batch_size", "train_batch", "mini_batch", "examples", "probe_examples")
        and isinstance(getattr(cfg, n), int)
    ]
    batch = max(batches, default=1000)
    param, value = ("width", width) if "width" in fields and width / 100 >= depth / 3 else (depth_name, depth)
    what = f"a {depth}×{width} net with batch {batch}"
    if max(depth, width, batch) > HOPELESS:  # not even the estimate fits: [width] * depth would not allocate
        raise ConfigError(
            param,
            value,
            f"{what} needs far more than the {available_bytes() / GiB:.3g} GiB of "
            f"memory available; choose a smaller size",
        )
    check_fits(param, value, what, mlp_bytes(IMAGE_INPUTS, [width] * depth, 10, batch))

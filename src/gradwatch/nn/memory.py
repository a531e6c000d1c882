"""Will a network of this size fit in memory? An estimate made before anything is allocated.

Used by the lab's configs (:mod:`gradwatch.lab.memory`) and the theory's random nets.

A size that cannot fit (``--width 10**9``) would otherwise end in an allocation failure deep inside torch, or
in the machine swapping. The estimate is deliberately rough and generous: float32 weights, their gradients,
two optimizer moments and the watch's copies (6 × the parameters), plus the activations of one batch kept for
backward (6 × batch × units). A size is refused only when that exceeds the memory the machine has available.
"""

from __future__ import annotations

import os
from typing import Any

from gradwatch.errors import ConfigError

BYTES_PER_FLOAT = 4
COPIES_PER_PARAMETER = 6  # weight, gradient, two Adam moments, the watch's and the optimizer's scratch
COPIES_PER_ACTIVATION = 6  # pre-activation, activation, their gradients, norm / dropout buffers
IMAGE_INPUTS = 784  # the widest input of the lab's data (MNIST); the others are smaller
GiB = 2**30


def available_bytes() -> int:
    """Memory available to a new allocation: ``MemAvailable`` of /proc/meminfo, else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 16 * GiB


def mlp_bytes(n_in: int, hidden: list[int], n_out: int, batch: int, *, gates: int = 1) -> int:
    """Estimated bytes to train an MLP (``gates`` = 4 for an LSTM's stacked matrices) on ``batch`` examples."""
    widths = [n_in, *hidden, n_out]
    params = sum(gates * (a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
    params += sum(gates * b * b for b in hidden) if gates > 1 else 0  # recurrent matrices
    units = sum(hidden) + n_out
    return BYTES_PER_FLOAT * (COPIES_PER_PARAMETER * params + COPIES_PER_ACTIVATION * batch * units * gates)


def check_fits(param: str, value: Any, what: str, need: int) -> None:
    """Raise a ConfigError naming ``param`` when ``need`` bytes exceed the memory available."""
    have = available_bytes()
    if need <= have:
        return
    raise ConfigError(
        param,
        value,
        f"{what} needs about {need / GiB:.3g} GiB to train, more than the "
        f"{have / GiB:.3g} GiB of memory available; choose a smaller size",
    )

"""Is this torch device usable here? Checked before a model is moved, so ``--device cuda`` on a CPU-only build
is a one-line error instead of a failure inside torch."""

from __future__ import annotations

from gradwatch.errors import ConfigError


def available_devices() -> list[str]:
    """The devices this torch build and machine offer: cpu, cuda:0…, mps."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(param: str, value: str) -> str:
    """Return ``value`` if torch has that device here; otherwise raise a ConfigError listing the ones it has."""
    import torch

    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(param, value, "expected a torch device: " + ", ".join(available_devices())) from None
    usable = available_devices()
    name = dev.type if dev.index is None else f"{dev.type}:{dev.index}"
    if name not in usable:
        raise ConfigError(param, value, "this machine's torch has only " + ", ".join(usable))
    return value

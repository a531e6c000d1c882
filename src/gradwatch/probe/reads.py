"""Where the watch may read a value on the host in a training step: only where that costs no device sync."""

from __future__ import annotations

import torch

FREE_READ_DEVICES = {"cpu"}  # where reading a flag on the host costs no device sync (tests empty it)


def free_reads(device: torch.device) -> bool:
    """Whether the watch may read a value on the host in a step on ``device`` (only where it costs no sync)."""
    return device.type in FREE_READ_DEVICES

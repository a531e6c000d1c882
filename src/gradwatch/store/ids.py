"""Run ids: sortable and unique, shared by the lab's runs and watched runs of any model."""

from __future__ import annotations

import secrets
import time


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second and 4 random hex digits, e.g. ``20250101-120000-a1b2``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)

"""Run ids: sortable and unique, shared by the lab's runs and watched runs of any model.

An id reads as the UTC time it was made and sorts in that order: ``YYYYMMDD-HHMMSS-`` then the millisecond
(3 digits) and 8 hex digits, e.g. ``20250101-120000-042a1b2c3d4``. The hex digits are random for the first id of
a millisecond; the next ids this process makes in the same millisecond (or when the clock steps back) add 1 to
them, as ULIDs do, so one process never repeats an id and its ids sort in the order they were made. Two processes
collide only if they draw the same 32 random bits in the same millisecond (about 1 in 4·10⁹ per pair). Standard
library only.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

RANDOM_BITS = 32  # the hex digits after the millisecond: 8
_lock = threading.Lock()
_last: tuple[int, int] = (-1, 0)  # (ms since the epoch, random part) of the last id made by this process


def _next(ms: int) -> tuple[int, int]:
    global _last
    with _lock:
        last_ms, last_rand = _last
        if ms > last_ms:
            cur = (ms, secrets.randbits(RANDOM_BITS - 1))  # top bit clear: room to count up without overflow
        elif last_rand + 1 < 1 << RANDOM_BITS:
            cur = (last_ms, last_rand + 1)  # same millisecond, or the clock stepped back: count on
        else:  # pragma: no cover - 2**31 ids in one millisecond
            cur = (last_ms + 1, 0)
        _last = cur
        return cur


def _forget_in_child() -> None:
    """A forked process draws its own random part (it must not count on from its parent's last id)."""
    global _last, _lock
    _last, _lock = (-1, 0), threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_in_child)


def format_run_id(ms: int, rand: int) -> str:
    """The id of millisecond ``ms`` (since the Unix epoch, UTC) and random part ``rand``."""
    seconds, milli = divmod(ms, 1000)
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(seconds))}-{milli:03d}{rand:0{RANDOM_BITS // 4}x}"


def new_run_id() -> str:
    """A new run id, e.g. ``20250101-120000-042a1b2c3d4``: later than every id this process made before."""
    return format_run_id(*_next(time.time_ns() // 1_000_000))

"""Sweep workers end with the sweep: a process pool's workers must not train on for nobody once the process
that drives the sweep is gone (killed by SIGKILL or SIGTERM, or crashed).

A worker is a child of the pool's fork server, not of the driver, and the fork server stays alive as long as any
worker holds its pipe — so neither waits for the other. Each worker therefore watches the driver itself: a daemon
thread checks every :data:`POLL_S` seconds whether the driver's process still exists and ends the worker at once
when it does not (all platforms). On Linux the worker also asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``). With every worker gone, the fork server and the resource tracker see their pipes close
and end too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

POLL_S = 0.5  # how often a worker checks that the driver is alive
PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies (Linux)
EXIT_ORPHANED = 70  # a worker's exit status when it ends because the driver is gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, owned by someone else
        return True
    return True


def _kill_on_parent_death() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover - unusual libc
            pass


def watch_driver(driver_pid: int, poll_s: float = POLL_S) -> threading.Thread:
    """Start the daemon thread that ends this process (``os._exit``) once ``driver_pid`` is gone."""

    def watch() -> None:
        while _alive(driver_pid):
            time.sleep(poll_s)
        os._exit(EXIT_ORPHANED)

    thread = threading.Thread(target=watch, name="gradwatch-driver-watch", daemon=True)
    thread.start()
    return thread


def die_with_driver(driver_pid: int) -> None:
    """A pool worker's initializer: one thread for torch (the pool runs one run per core), and end with the
    driver."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _kill_on_parent_death()
    if not _alive(driver_pid):  # the driver died before this worker started
        os._exit(EXIT_ORPHANED)
    watch_driver(driver_pid)

"""Where a sweep's jobs run: in this process, in a local process pool (the default), or on Ray.

Each executor is a context manager with ``submit_all(fn, jobs)`` yielding ``(index, result)`` as jobs finish.
Ray is optional (``pip install "gradwatch[ray]"``) and imported only when chosen; with ``address`` it joins an
existing cluster (``ray.init(address=...)``), otherwise it starts a local one of ``workers`` CPUs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gradwatch.errors import ConfigError

BACKENDS = ("process", "ray")
PR_SET_PDEATHSIG = 1  # prctl option: the signal a child gets when its parent dies (Linux)


def _die_with_parent() -> None:
    """Pool workers end when the sweep process is killed (Linux), instead of training on for nobody."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:  # pragma: no cover - unusual libc
            pass


class InlineExecutor:
    """Runs the jobs one after another in this process (``--workers 1``)."""

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def submit_all(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, job in enumerate(jobs):
            yield i, fn(job)


class ProcessExecutor:
    """A pool of ``workers`` processes forked from a fork server that has imported what runs need
    (:mod:`gradwatch.sweep.preload`): safe with torch's threads, and the imports are paid once."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None

    def __enter__(self) -> ProcessExecutor:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["gradwatch.sweep.preload"])
        else:  # Windows: every worker imports for itself
            ctx = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx,
                                        initializer=_die_with_parent)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    def submit_all(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from concurrent.futures import as_completed

        futures = {self.pool.submit(fn, job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()


def import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError('--backend ray needs Ray: pip install "gradwatch[ray]"') from None
    return ray


class RayExecutor:
    """Ray tasks, one per job: a local Ray of ``workers`` CPUs, or the cluster at ``address``."""

    def __init__(self, workers: int, address: str | None = None):
        self.workers, self.address, self.started = workers, address, False

    def __enter__(self) -> RayExecutor:
        ray = import_ray()
        if not ray.is_initialized():
            env = {"env_vars": {"OMP_NUM_THREADS": "1"}}
            if self.address:
                ray.init(address=self.address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, runtime_env=env, log_to_driver=False)
            self.started = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import_ray().shutdown()

    def submit_all(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ray = import_ray()
        remote = ray.remote(num_cpus=1)(fn)
        refs = {remote.remote(job): i for i, job in enumerate(jobs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield refs[ref], ray.get(ref)


def make_executor(backend: str, workers: int, address: str | None = None):
    """The executor for ``--backend`` and ``--workers`` (``--ray-address`` only with Ray)."""
    if backend not in BACKENDS:
        raise ConfigError("backend", backend, "expected one of " + ", ".join(BACKENDS))
    if workers < 1:
        raise ConfigError("workers", workers, "must be ≥ 1")
    if address and backend != "ray":
        raise ConfigError("ray_address", address, "needs --backend ray")
    if backend == "ray":
        import_ray()  # fail before any work when Ray is missing
        return RayExecutor(workers, address)
    return InlineExecutor() if workers == 1 else ProcessExecutor(workers)

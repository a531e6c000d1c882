"""Where a sweep's jobs run: in this process, in a local process pool (the default), or on Ray.

Each executor is a context manager with ``submit_all(fn, jobs)`` yielding ``(index, result)`` as jobs finish.
Ray is optional (``pip install "gradwatch[ray]"``) and imported only when chosen; with ``address`` it joins an
existing cluster (``ray.init(address=...)``), otherwise it starts a local one of ``workers`` CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gradwatch.errors import ConfigError

BACKENDS = ("process", "ray")
RETRIES = 1  # a job whose worker process died is run again this many times before it is recorded as lost
Lost = Callable[[Any, str], Any]  # lost(job, reason): the result to report for a job whose worker died


class WorkerLost(RuntimeError):
    """A worker process died (killed, out of memory, crashed) while running a job, on every try."""


_started: Any = None  # in a pool worker: the queue on which it announces each job it starts


def _init_worker(driver_pid: int, started: Any) -> None:
    global _started
    from gradwatch.sweep.lifeline import die_with_driver

    _started = started
    die_with_driver(driver_pid)


def _announced(fn: Callable[[Any], Any], index: int, job: Any) -> Any:
    """Run ``fn(job)`` in a pool worker after telling the driver that job ``index`` has started (so that when
    the worker dies, the driver knows which job it was running)."""
    _started.put(index)
    return fn(job)


def _lost_message(tries: int) -> str:
    return (
        f"the worker process running it died (killed, out of memory or crashed) on each of {tries} tries; "
        "run it alone with `gradwatch train` to see why"
    )


class InlineExecutor:
    """Runs the jobs one after another in this process (``--workers 1``)."""

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def submit_all(
        self, fn: Callable[[Any], Any], jobs: Sequence[Any], lost: Lost | None = None
    ) -> Iterator[tuple[int, Any]]:
        for i, job in enumerate(jobs):
            yield i, fn(job)


class ProcessExecutor:
    """A pool of ``workers`` processes forked from a fork server that has imported what runs need
    (:mod:`gradwatch.sweep.preload`): safe with torch's threads, and the imports are paid once. Workers end with
    the driver (:mod:`gradwatch.sweep.lifeline`). When a worker dies, the pool is replaced and the sweep goes on:
    the jobs that were running in it are tried again, one at a time, and a job that kills its worker again is
    reported through ``lost`` (or raises :class:`WorkerLost` without it)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: Any = None
        self.ctx: Any = None
        self.started: Any = None

    def __enter__(self) -> ProcessExecutor:
        import multiprocessing

        if "forkserver" in multiprocessing.get_all_start_methods():
            self.ctx = multiprocessing.get_context("forkserver")
            self.ctx.set_forkserver_preload(["gradwatch.sweep.preload"])
        else:  # Windows: every worker imports for itself
            self.ctx = multiprocessing.get_context("spawn")
        return self

    def _new_pool(self, workers: int):
        from concurrent.futures import ProcessPoolExecutor

        self.started = self.ctx.SimpleQueue()
        self.pool = ProcessPoolExecutor(
            workers, mp_context=self.ctx, initializer=_init_worker, initargs=(os.getpid(), self.started)
        )
        return self.pool

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)
            self.pool = None

    def _started_jobs(self) -> set[int]:
        out = set()
        while not self.started.empty():
            out.add(self.started.get())
        return out

    def submit_all(
        self, fn: Callable[[Any], Any], jobs: Sequence[Any], lost: Lost | None = None
    ) -> Iterator[tuple[int, Any]]:
        from collections import Counter
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pending = dict(enumerate(jobs))
        tries: Counter[int] = Counter()
        while pending:
            suspects = [i for i in pending if tries[i]]  # in flight when a worker died: tried again alone
            batch = suspects[:1] or list(pending)
            pool = self._new_pool(1 if suspects else min(self.workers, len(batch)))
            futures = {pool.submit(_announced, fn, i, pending[i]): i for i in batch}
            broken = False
            for fut in as_completed(futures):
                i = futures[fut]
                if isinstance(fut.exception(), BrokenProcessPool):
                    broken = True
                    break
                del pending[i]
                yield i, fut.result()
            if not broken:
                continue
            for fut, i in futures.items():  # finished before the pool broke: kept
                if i in pending and fut.done() and fut.exception() is None:
                    del pending[i]
                    yield i, fut.result()
            pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            in_flight = (self._started_jobs() & set(pending)) or set(batch) & set(pending)
            for i in sorted(in_flight):
                tries[i] += 1
                if tries[i] > RETRIES:
                    job = pending.pop(i)
                    if lost is None:
                        raise WorkerLost(f"job {i}: " + _lost_message(tries[i]))
                    yield i, lost(job, _lost_message(tries[i]))


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

    def submit_all(
        self, fn: Callable[[Any], Any], jobs: Sequence[Any], lost: Lost | None = None
    ) -> Iterator[tuple[int, Any]]:
        ray = import_ray()
        remote = ray.remote(num_cpus=1, max_retries=RETRIES)(fn)  # Ray runs a job again when its worker dies
        refs = {remote.remote(job): i for i, job in enumerate(jobs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    result = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError):
                    if lost is None:
                        raise
                    result = lost(jobs[refs[ref]], _lost_message(1 + RETRIES))
                yield refs[ref], result


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

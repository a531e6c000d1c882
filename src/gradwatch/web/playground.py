"""The playground's trainings: real :func:`gradwatch.lab.train` runs, streamed step by step.

Each training runs in a process of its own (``isolate=True``, the default; forked from a process server that
has imported torch and gradwatch once, see :mod:`gradwatch.web.training`), managed by a worker thread, so that
its Python work never holds the server's interpreter lock; ``isolate=False`` trains in the worker thread itself.
At most ``limits.max_concurrent`` run at once; more wait in a queue (up to ``limits.max_queued``). Every run is
stored in the server's run store like any lab run. A run's events (``prediction``, then ``step`` — per-layer
gradient norms, relative norms, update ratios, saturation, the batch loss and, on sampled steps, the log10|g|
histograms —, ``epoch`` and a final ``end``) are kept in memory for its stream. ``stop(id)`` makes the next
step raise :class:`~gradwatch.lab.StopTraining`, so the run ends as ``interrupted`` with its watch closed; an
exception in training, or a training process that dies, ends it as ``failed`` with the message;
:meth:`Playground.shutdown` stops everything and joins the threads and processes.

Runs do not outlive their clients: a run is *watched* while a client reads its event stream
(:meth:`Playground.watching`); one that nobody has watched for ``limits.abandon_after_s`` seconds (counted from
its submission or from its last stream's end) is stopped, unless it was submitted ``detached``. One client
address holds at most ``limits.max_per_client`` queued or running runs.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

from gradwatch.web.limits import Limits

QUEUED, RUNNING, COMPLETED, STOPPED, FAILED, DIVERGED = (
    "queued",
    "running",
    "completed",
    "stopped",
    "failed",
    "diverged",
)
FINISHED = (COMPLETED, STOPPED, FAILED, DIVERGED)
ACTIVE = (QUEUED, RUNNING)
REAP_EVERY_S = 0.25  # how often abandoned runs are looked for (at most this late past the grace period)
PIPE_POLL_S = 0.05  # how often the server looks at a training process's pipe (and passes on a stop)
JOIN_S = 30.0  # a training process that does not end this long after its last message is killed
_CONTEXT: Any = None


def _context() -> Any:
    """The process server that starts training processes (``forkserver``: a clean process that has imported
    torch and gradwatch once, forked per training; ``spawn`` where it does not exist)."""
    global _CONTEXT
    if _CONTEXT is None:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        _CONTEXT = multiprocessing.get_context(method)
        if method == "forkserver":
            _CONTEXT.set_forkserver_preload(["gradwatch.web.training_preload"])
    return _CONTEXT


def start_process_server() -> None:
    """Start the process server now (a few seconds of imports), in the background, so that the first Start
    does not wait for it."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        threading.Thread(target=forkserver.ensure_running, name="gradwatch-process-server", daemon=True).start()


class TrainingFailed(RuntimeError):
    """A training raised or its process died; the message says how."""


class PlaygroundFull(RuntimeError):
    """The queue is full: the request is refused (HTTP 429)."""


class Job:
    """One playground training: its config, state and events (append-only, read by the streams)."""

    def __init__(self, job_id: str, config: Any, client: str | None = None, detached: bool = False):
        self.id, self.config, self.client, self.detached = job_id, config, client, detached
        self.state = QUEUED
        self.error: str | None = None
        self.run_id: str | None = None
        self.diagnosis: str | None = None
        self.created = time.time()
        self.watchers = 0  # event streams open on it now
        self.last_seen = time.monotonic()  # when its last stream ended (or its submission)
        self.events: list[dict[str, Any]] = []
        self.encoded: list[str] = []  # each event as a server-sent event, encoded once for every stream
        self.stop_requested = threading.Event()
        self.done = threading.Event()

    def add(self, kind: str, **data: Any) -> None:
        self.append({"type": kind, **data})

    def append(self, event: dict[str, Any]) -> None:
        """Keep an event and its encoding (by the thread that produced it, off the event loop). Streams read
        ``encoded``; list.append is atomic, so they see whole events."""
        from gradwatch.web.encode import clean

        i = len(self.encoded)
        self.events.append(event)
        self.encoded.append(f"id: {i}\nevent: {event['type']}\ndata: {json.dumps(clean(event), allow_nan=False)}\n\n")

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "run_id": self.run_id,
            "error": self.error,
            "events": len(self.events),
            "created": self.created,
            "detached": self.detached,
            "watchers": self.watchers,
            "config": self.config.to_dict(),
        }


class Playground:
    """The queue and the worker threads of one server."""

    def __init__(self, store_path: str | Path, limits: Limits, *, isolate: bool = True):
        self.store_path, self.limits, self.isolate = Path(store_path), limits, isolate
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: deque[Job] = deque()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._wake = threading.Event()
        self._reaper: threading.Thread | None = None
        if isolate:
            start_process_server()

    # --- public -------------------------------------------------------------------------------------------
    def submit(self, config: Any, client: str | None = None, detached: bool = False) -> Job:
        with self._lock:
            if self._closed:
                raise PlaygroundFull("the server is shutting down")
            mine = [j for j in self._jobs.values() if j.client == client and j.state in ACTIVE]
            if client is not None and len(mine) >= self.limits.max_per_client:
                raise PlaygroundFull(
                    f"this client ({client}) already has {len(mine)} playground runs queued or "
                    f"running (at most {self.limits.max_per_client}); stop one or wait for it"
                )
            if len(self._queue) >= self.limits.max_queued:
                raise PlaygroundFull(
                    f"{len(self._queue)} playground runs are already waiting (at most "
                    f"{self.limits.max_queued}); stop one or try again later"
                )
            job = Job(time.strftime("%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3), config, client, detached)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._forget_old()
            self._start_waiting()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="gradwatch-playground-reaper", daemon=True)
                self._reaper.start()
        return job

    @contextlib.contextmanager
    def watching(self, job: Job):
        """Count a client reading the job's stream while the ``with`` block runs."""
        with self._lock:
            job.watchers += 1
        try:
            yield job
        finally:
            with self._lock:
                job.watchers -= 1
                job.last_seen = time.monotonic()

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def stop(self, job_id: str, reason: str | None = None) -> Job | None:
        """Stop a run: a queued one at once, a running one at its next step. ``reason`` becomes its ``error``."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state in ACTIVE and reason is not None and job.error is None:
                job.error = reason
            job.stop_requested.set()
            if job.state == QUEUED:
                self._queue.remove(job)
                self._end(job, STOPPED, job.error)
        return job

    def running(self) -> list[threading.Thread]:
        """The worker threads still alive."""
        return [t for t in list(self._threads.values()) if t.is_alive()]

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every run, queued or running, and wait for the workers to end."""
        self._wake.set()
        with self._lock:
            self._closed = True
            for job in list(self._queue):
                job.stop_requested.set()
                self._end(job, STOPPED)
            self._queue.clear()
            for job in self._jobs.values():
                job.stop_requested.set()
        deadline = time.monotonic() + timeout
        for t in [*self._threads.values(), *([self._reaper] if self._reaper else [])]:
            t.join(max(0.0, deadline - time.monotonic()))

    def _reap(self) -> None:
        """Stop the runs nobody has watched for ``limits.abandon_after_s`` (not the detached ones)."""
        grace = self.limits.abandon_after_s
        while not self._wake.wait(min(REAP_EVERY_S, max(grace / 4, 0.01))):
            now = time.monotonic()
            with self._lock:
                abandoned = [
                    j
                    for j in self._jobs.values()
                    if j.state in ACTIVE
                    and not j.detached
                    and j.watchers == 0
                    and now - j.last_seen > grace
                    and not j.stop_requested.is_set()
                ]
            for job in abandoned:
                self.stop(
                    job.id,
                    f"stopped: no client watched it for {grace:g} s (start it detached to keep it "
                    f"running without a client)",
                )

    # --- scheduling (under the lock) -----------------------------------------------------------------------
    def _start_waiting(self) -> None:
        while self._queue and len(self.running()) < self.limits.max_concurrent:
            job = self._queue.popleft()
            job.state = RUNNING
            t = threading.Thread(target=self._work, args=(job,), name=f"gradwatch-playground-{job.id}", daemon=True)
            self._threads[job.id] = t
            t.start()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(finished) - self.limits.max_kept)]:
            del self._jobs[job.id]
            self._threads.pop(job.id, None)

    def _end(self, job: Job, state: str, error: str | None = None) -> None:
        job.add("end", state=state, run_id=job.run_id, error=error, diagnosis=job.diagnosis)
        job.state, job.error = state, error  # after the event: a stream that sees the state has seen the event
        job.done.set()

    # --- one worker ----------------------------------------------------------------------------------------
    def _work(self, job: Job) -> None:
        from gradwatch.lab.train import StopTraining
        from gradwatch.web.outcome import outcome
        from gradwatch.web.training import StreamedTraining

        state, error = COMPLETED, None
        try:
            if self.isolate:
                status, summary = self._train_in_process(job)
            else:
                status, summary = StreamedTraining(job, self.store_path).run()
            state = DIVERGED if outcome(status, summary) == "diverged" else COMPLETED
            error = (summary.get("error") or f"the loss reached {summary.get('loss')}") if state == DIVERGED else None
        except StopTraining:
            state, error = STOPPED, job.error
        except TrainingFailed as exc:
            state, error = FAILED, str(exc)
        except Exception as exc:  # a crash ends the run cleanly, with its message
            state, error = FAILED, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._end(job, state, error)
            self._threads.pop(job.id, None)
            if not self._closed:
                self._start_waiting()

    def _train_in_process(self, job: Job) -> tuple[str, dict[str, Any]]:
        """Train in a process of its own (see :mod:`gradwatch.web.training`); its events are appended to the
        job as they arrive, a stop request is passed on. Returns (status, summary) as the lab stored them."""
        from gradwatch.lab.train import StopTraining
        from gradwatch.web.training import child_main

        ctx = _context()
        receive, send = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        threads = max(1, (os.cpu_count() or 1) // max(1, self.limits.max_concurrent))
        proc = ctx.Process(
            target=child_main,
            args=(job.config.to_dict(), str(self.store_path), send, stop, threads),
            name=f"gradwatch-training-{job.id}",
            daemon=True,
        )
        proc.start()
        send.close()
        result = None
        try:
            while result is None:
                if job.stop_requested.is_set():
                    stop.set()
                if not receive.poll(PIPE_POLL_S):
                    if not proc.is_alive() and not receive.poll(0):
                        break
                    continue
                try:
                    message = receive.recv()
                except EOFError:
                    break
                if message[0] == "event":
                    event = message[1]
                    job.run_id = event.get("run_id") or job.run_id
                    job.append(event)
                else:
                    result = message
        finally:
            receive.close()
            proc.join(JOIN_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        if result is None:
            raise TrainingFailed(f"the training process ended without a result (exit code {proc.exitcode})")
        kind, *rest = result
        if kind == "done":
            status, summary, job.run_id, job.diagnosis = rest
            return status, summary
        job.run_id = rest[-1] or job.run_id
        if kind == "stopped":
            raise StopTraining
        raise TrainingFailed(rest[0])

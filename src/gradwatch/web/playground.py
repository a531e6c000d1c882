"""The playground's trainings: real :func:`gradwatch.lab.train` runs in worker threads, streamed step by step.

At most ``limits.max_concurrent`` run at once; more wait in a queue (up to ``limits.max_queued``). Every run is
stored in the server's run store like any lab run. A run's events (``prediction``, then ``step`` — per-layer
gradient norms, relative norms, update ratios, saturation, the batch loss and, on sampled steps, the log10|g|
histograms —, ``epoch`` and a final ``end``)
are kept in memory for its stream. ``stop(id)`` makes the next step raise :class:`~gradwatch.lab.StopTraining`,
so the run ends as ``interrupted`` with its watch closed; an exception in training ends it as ``failed`` with
the message; :meth:`Playground.shutdown` stops everything and joins the threads.

Runs do not outlive their clients: a run is *watched* while a client reads its event stream
(:meth:`Playground.watching`); one that nobody has watched for ``limits.abandon_after_s`` seconds (counted from
its submission or from its last stream's end) is stopped, unless it was submitted ``detached``. One client
address holds at most ``limits.max_per_client`` queued or running runs.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import numpy as np

from gradwatch.probe.history import HIST_SPECIAL
from gradwatch.web.limits import Limits

MAX_EVENTS = 500  # step events per run at most: a longer run is streamed every k-th step
SAMPLE_EVERY = 5  # saturation and histograms (module hooks, extra cost) on every 5th streamed step
SATURATION = "act_saturation"
HISTOGRAM = "grad_hist"  # log10|g| histograms per layer, taken on the sampled steps
QUEUED, RUNNING, COMPLETED, STOPPED, FAILED, DIVERGED = "queued", "running", "completed", "stopped", "failed", \
    "diverged"
FINISHED = (COMPLETED, STOPPED, FAILED, DIVERGED)
ACTIVE = (QUEUED, RUNNING)
REAP_EVERY_S = 0.25  # how often abandoned runs are looked for (at most this late past the grace period)


class PlaygroundFull(RuntimeError):
    """The queue is full: the request is refused (HTTP 429)."""


def _floats(values: np.ndarray) -> list[float | None]:
    """A JSON-ready list: NaN and ±inf become None."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


class Job:
    """One playground training: its config, state and events (append-only, read by the streams)."""

    def __init__(self, job_id: str, config: Any, client: str | None = None, detached: bool = False):
        self.id, self.config, self.client, self.detached = job_id, config, client, detached
        self.state = QUEUED
        self.error: str | None = None
        self.run_id: str | None = None
        self.diagnosis: str | None = None
        self.created = time.time()
        self.watchers = 0                   # event streams open on it now
        self.last_seen = time.monotonic()   # when its last stream ended (or its submission)
        self.events: list[dict[str, Any]] = []
        self.stop_requested = threading.Event()
        self.done = threading.Event()

    def add(self, kind: str, **data: Any) -> None:
        self.events.append({"type": kind, **data})  # list.append is atomic: readers see whole events

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "run_id": self.run_id, "error": self.error,
                "events": len(self.events), "created": self.created, "detached": self.detached,
                "watchers": self.watchers, "config": self.config.to_dict()}


class Playground:
    """The queue and the worker threads of one server."""

    def __init__(self, store_path: str | Path, limits: Limits):
        self.store_path, self.limits = Path(store_path), limits
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: deque[Job] = deque()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._wake = threading.Event()
        self._reaper: threading.Thread | None = None

    # --- public -------------------------------------------------------------------------------------------
    def submit(self, config: Any, client: str | None = None, detached: bool = False) -> Job:
        with self._lock:
            if self._closed:
                raise PlaygroundFull("the server is shutting down")
            mine = [j for j in self._jobs.values() if j.client == client and j.state in ACTIVE]
            if client is not None and len(mine) >= self.limits.max_per_client:
                raise PlaygroundFull(f"this client ({client}) already has {len(mine)} playground runs queued or "
                                     f"running (at most {self.limits.max_per_client}); stop one or wait for it")
            if len(self._queue) >= self.limits.max_queued:
                raise PlaygroundFull(f"{len(self._queue)} playground runs are already waiting (at most "
                                     f"{self.limits.max_queued}); stop one or try again later")
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
                abandoned = [j for j in self._jobs.values() if j.state in ACTIVE and not j.detached
                             and j.watchers == 0 and now - j.last_seen > grace and not j.stop_requested.is_set()]
            for job in abandoned:
                self.stop(job.id, f"stopped: no client watched it for {grace:g} s (start it detached to keep it "
                                  f"running without a client)")

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
        for job in finished[:max(0, len(finished) - self.limits.max_kept)]:
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

        state, error = COMPLETED, None
        try:
            status, summary = _Training(job, self.store_path).run()
            state = DIVERGED if outcome(status, summary) == "diverged" else COMPLETED
            error = (summary.get("error") or f"the loss reached {summary.get('loss')}") if state == DIVERGED else None
        except StopTraining:
            state, error = STOPPED, job.error
        except Exception as exc:  # a crash ends the run cleanly, with its message
            state, error = FAILED, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._end(job, state, error)
            self._threads.pop(job.id, None)
            if not self._closed:
                self._start_waiting()


class _Training:
    """The callbacks of one ``lab.train`` call, turning the live watch into events."""

    def __init__(self, job: Job, store_path: Path):
        self.job, self.store_path = job, store_path
        steps = job.config.steps
        self.every = max(1, math.ceil(steps / MAX_EVENTS)) if steps else 1
        self.last_sent = -1
        self.hists_sent = 0

    def run(self) -> tuple[str, dict[str, Any]]:
        from gradwatch import lab
        from gradwatch.lab.prepare import prepare
        from gradwatch.probe.stats import DEFAULT_STATS
        from gradwatch.store import RunStore
        from gradwatch.web.prediction import prediction_at_init

        cfg, job = self.job.config, self.job
        data = prepare(cfg)
        if job.stop_requested.is_set():
            raise lab.StopTraining
        x = data.x_train
        job.add("prediction", **prediction_at_init(cfg, data.n_in, data.n_out, float((x.float() ** 2).mean())))
        options = {"stats": [*DEFAULT_STATS, SATURATION, HISTOGRAM], "sample_every": SAMPLE_EVERY * self.every}
        with RunStore(self.store_path) as store:
            run = lab.train(cfg, store=store, on_progress=self.on_progress, on_epoch=self.on_epoch,
                            watch_options=options)
        job.run_id = run.id
        job.diagnosis = None if run.diagnosis is None else str(run.diagnosis)
        return run.status, run.summary()

    def on_progress(self, p: Any) -> None:
        from gradwatch.lab.train import StopTraining

        self.job.run_id = p.run_id
        if self.job.stop_requested.is_set():
            raise StopTraining
        if p.step % self.every and p.step != 1:
            return
        h = p.watcher.history  # copies the queued rows to the host
        if len(h) == 0 or int(h.steps[-1]) == self.last_sent:
            return
        self.last_sent = int(h.steps[-1])
        grad = h.last("grad_norm")
        event: dict[str, Any] = {"run_id": p.run_id, "step": p.step, "epoch": p.epoch,
                                 "loss": p.loss if math.isfinite(p.loss) else None, "layers": list(h.layers),
                                 "grad_norm": _floats(grad)}
        if "weight_norm" in h.stats:
            with np.errstate(divide="ignore", invalid="ignore"):
                event["relative_grad"] = _floats(grad / h.last("weight_norm"))
        if "update_ratio" in h.stats:
            event["update_ratio"] = _floats(h.last("update_ratio"))
        event["saturation"] = _floats(h.last(SATURATION)) if SATURATION in h.stats else None
        n_hists = len(h.hist_steps)
        if n_hists > self.hists_sent:
            self.hists_sent = n_hists
            outside = h.hist_outside()[-1]  # [layers, zero / underflow / overflow / nan]
            event["histogram"] = {"watch_step": int(h.hist_steps[-1]), "edges": _floats(h.hist_edges),
                                  "counts": [_floats(c) for c in h.histograms()[-1]],
                                  "outside": {name: _floats(outside[:, i]) for i, name in enumerate(HIST_SPECIAL)}}
        self.job.add("step", **event)

    def on_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
        from gradwatch.lab.train import StopTraining

        self.job.add("epoch", **{k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                                 for k, v in metrics.items()})
        if self.job.stop_requested.is_set():
            raise StopTraining

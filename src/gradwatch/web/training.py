"""One playground training, streamed step by step: :class:`StreamedTraining` turns the callbacks of a
:func:`gradwatch.lab.train` call into events; :func:`child_main` runs it in a training process of its own.

A training runs in a separate process by default (see :class:`~gradwatch.web.playground.Playground`), so that its
Python work does not hold the server's interpreter lock while pages and streams are answered. The process
sends its events through a pipe and watches a stop event; everything it stores goes to the run store, as any
lab run. This module is imported by the process server before any training starts (its imports are the slow
part of a start).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradwatch import lab
from gradwatch.lab.config import Config
from gradwatch.lab.prepare import prepare
from gradwatch.lab.train import StopTraining
from gradwatch.probe.history import HIST_SPECIAL
from gradwatch.probe.stats import DEFAULT_STATS
from gradwatch.stat_names import ACT_SATURATION, GRAD_HIST, GRAD_NORM, UPDATE_RATIO, WEIGHT_NORM
from gradwatch.store import RunStore
from gradwatch.web.prediction import prediction_at_init

MAX_EVENTS = 500  # step events per run at most: a longer run is streamed every k-th step
SAMPLE_EVERY = 5  # saturation and histograms (module hooks, extra cost) on every 5th streamed step
SATURATION = ACT_SATURATION
HISTOGRAM = GRAD_HIST  # log10|g| histograms per layer, taken on the sampled steps


def _floats(values: np.ndarray) -> list[float | None]:
    """A JSON-ready list: NaN and ±inf become None."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


class ChildJob:
    """What :class:`StreamedTraining` needs of a job, inside a training process: the config, a stop event, and
    ``add`` sending each event through the pipe."""

    def __init__(self, config: Config, conn: Any, stop: Any):
        self.config, self.conn, self.stop_requested = config, conn, stop
        self.run_id: str | None = None
        self.diagnosis: str | None = None

    def add(self, kind: str, **data: Any) -> None:
        self.conn.send(("event", {"type": kind, **data}))


def child_main(config: dict[str, Any], store_path: str, conn: Any, stop: Any, threads: int) -> None:
    """The training process: train, streaming events; end with one message (done, stopped or failed)."""
    torch.set_num_threads(threads)
    job = ChildJob(Config(**config), conn, stop)
    try:
        status, summary = StreamedTraining(job, Path(store_path)).run()
        conn.send(("done", status, summary, job.run_id, job.diagnosis))
    except StopTraining:
        conn.send(("stopped", job.run_id))
    except BaseException as exc:  # noqa: BLE001 - any crash is reported to the server, which keeps serving
        conn.send(("failed", f"{type(exc).__name__}: {exc}", job.run_id))
    finally:
        conn.close()


class StreamedTraining:
    """The callbacks of one ``lab.train`` call, turning the live watch into events."""

    def __init__(self, job: Any, store_path: Path):
        self.job, self.store_path = job, store_path
        steps = job.config.steps
        self.every = max(1, math.ceil(steps / MAX_EVENTS)) if steps else 1
        self.last_sent = -1
        self.hists_sent = 0

    def run(self) -> tuple[str, dict[str, Any]]:

        cfg, job = self.job.config, self.job
        data = prepare(cfg)
        if job.stop_requested.is_set():
            raise StopTraining
        x = data.x_train
        job.add("prediction", **prediction_at_init(cfg, data.n_in, data.n_out, float((x.float() ** 2).mean())))
        options = {"stats": [*DEFAULT_STATS, SATURATION, HISTOGRAM], "sample_every": SAMPLE_EVERY * self.every}
        with RunStore(self.store_path) as store:
            run = lab.train(
                cfg, store=store, on_progress=self.on_progress, on_epoch=self.on_epoch, watch_options=options
            )
        job.run_id = run.id
        job.diagnosis = None if run.diagnosis is None else str(run.diagnosis)
        return run.status, run.summary()

    def on_progress(self, p: Any) -> None:
        self.job.run_id = p.run_id
        if self.job.stop_requested.is_set():
            raise StopTraining
        if p.step % self.every and p.step != 1:
            return
        h = p.watcher.history  # copies the queued rows to the host
        if len(h) == 0 or int(h.steps[-1]) == self.last_sent:
            return
        self.last_sent = int(h.steps[-1])
        grad = h.last(GRAD_NORM)
        event: dict[str, Any] = {
            "run_id": p.run_id,
            "step": p.step,
            "epoch": p.epoch,
            "loss": p.loss if math.isfinite(p.loss) else None,
            "layers": list(h.layers),
            GRAD_NORM: _floats(grad),
        }
        if WEIGHT_NORM in h.stats:
            with np.errstate(divide="ignore", invalid="ignore"):
                event["relative_grad"] = _floats(grad / h.last(WEIGHT_NORM))
        if UPDATE_RATIO in h.stats:
            event[UPDATE_RATIO] = _floats(h.last(UPDATE_RATIO))
        event["saturation"] = _floats(h.last(SATURATION)) if SATURATION in h.stats else None
        n_hists = len(h.hist_steps)
        if n_hists > self.hists_sent:
            self.hists_sent = n_hists
            outside = h.hist_outside()[-1]  # [layers, zero / underflow / overflow / nan]
            event["histogram"] = {
                "watch_step": int(h.hist_steps[-1]),
                "edges": _floats(h.hist_edges),
                "counts": [_floats(c) for c in h.histograms()[-1]],
                "outside": {name: _floats(outside[:, i]) for i, name in enumerate(HIST_SPECIAL)},
            }
        self.job.add("step", **event)

    def on_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.job.add(
            "epoch", **{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in metrics.items()}
        )
        if self.job.stop_requested.is_set():
            raise StopTraining

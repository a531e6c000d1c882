"""Watched runs of the user's own model in the run store: ``gw.watch(model, opt, store="runs.sqlite",
name="my-run", config={...})``.

The run is a row of ``runs`` whose config says ``"kind": "watch"`` and holds the config the user passed
(``"user"``), the model and optimizer class names, the watch's settings and the layers' layout (kinds, sizes,
activations — what a report needs besides the numbers). Each flush adds the new history rows and histograms
in one transaction; closing the watch writes the diagnosis into the run's summary and marks it ``completed``
(``failed`` or ``interrupted`` when the watch is closed because training raised). A process killed mid-run
leaves a run that the next open marks ``interrupted``, as for lab runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.probe.history import History
from gradwatch.store.sqlite import RunStore

WATCH_KIND = "watch"


def is_watched(run: dict[str, Any]) -> bool:
    """Whether a stored run (a row of :meth:`RunStore.runs`) is a watched run of a user's model."""
    return run["config"].get("kind") == WATCH_KIND


def config_dict(config: Any) -> dict[str, Any]:
    """The user's config as JSON-ready data: a dict, a pydantic model, a dataclass, an ``argparse.Namespace``
    or anything with ``to_dict()``; values JSON cannot hold are stored as their ``str``."""
    if config is None:
        return {}
    if hasattr(config, "model_dump"):
        config = config.model_dump()
    elif hasattr(config, "to_dict"):
        config = config.to_dict()
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    elif hasattr(config, "__dict__") and not isinstance(config, dict):
        config = vars(config)
    if not isinstance(config, dict):
        raise ConfigError(
            "config", config, "expected a dict (or a pydantic model, dataclass or Namespace) of the run's settings"
        )
    return json.loads(json.dumps(config, default=str))


def _run_id(name: str | None) -> str:
    from gradwatch.store.ids import new_run_id

    if name is None:
        return new_run_id()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    if not slug:
        raise ConfigError("name", name, "expected a name with at least one letter or digit")
    return f"{slug}-{new_run_id()}"


class WatchedRun:
    """The sink that writes a watch into the run store (made by the watch itself when it has ``store``)."""

    name = "run store"  # how a warning names it if writing fails

    def __init__(self, store: RunStore | str | os.PathLike, watcher: Any):
        if not isinstance(store, (RunStore, str, os.PathLike)):
            raise ConfigError(
                "store",
                store,
                "expected a path to a SQLite run store (e.g. 'runs.sqlite') or a gradwatch.store.RunStore",
            )
        self._own = not isinstance(store, RunStore)
        self.db: RunStore = store if isinstance(store, RunStore) else RunStore(store)
        h = watcher._history
        user = config_dict(watcher.config)
        optimizers = [type(o).__name__ for o in getattr(watcher, "optimizers", ())]
        self.run_id = _run_id(watcher.name)
        self.db.start_run(
            self.run_id,
            {
                "kind": WATCH_KIND,
                "name": watcher.name,
                "seed": user.get("seed"),
                "user": user,
                "model": type(getattr(watcher.model, "module", watcher.model)).__name__,
                "optimizer": ", ".join(optimizers) or None,
                "watch": {
                    "every": watcher.every,
                    "sample_every": watcher.sample_every,
                    "flush_every": watcher.flush_every,
                    "stats": list(h.stats),
                },
                "layout": {
                    "kinds": h.kinds,
                    "numel": [int(n) for n in h.numel],
                    "activations": h.activations,
                    "hist_edges": h.hist_edges.tolist(),
                    "meta": json.loads(json.dumps(h.meta, default=str)),
                },
            },
        )
        self._layers_written = False

    def _layers(self, history: History) -> list[str]:
        if self._layers_written:
            return []
        self._layers_written = True
        return list(history.layers)

    def write(self, history: History, steps: np.ndarray, values: np.ndarray) -> None:
        rows = [
            (step, j, stat, v)
            for step, per_stat in zip(np.asarray(steps).tolist(), values.tolist())
            for stat, per_layer in zip(history.stats, per_stat)
            for j, v in enumerate(per_layer)
        ]
        self.db.add_history(self.run_id, rows, layers=self._layers(history))

    def write_histograms(self, history: History, steps: np.ndarray, counts: np.ndarray) -> None:
        rows = [
            (step, j, c)
            for step, per_layer in zip(np.asarray(steps).tolist(), counts.tolist())
            for j, c in enumerate(per_layer)
            if sum(c) > 0
        ]
        self.db.add_history(self.run_id, [], layers=self._layers(history), histograms=rows)

    def close(self, diagnosis: Any) -> None:
        error = sys.exc_info()[1]  # the watch is being closed because training raised
        status = "completed" if error is None else "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        summary: dict[str, Any] = {"kind": WATCH_KIND}
        if diagnosis is not None:
            summary.update(
                diagnosis=str(diagnosis), healthy=diagnosis.healthy, findings=[f.to_dict() for f in diagnosis.findings]
            )
        self.db.finish_run(
            self.run_id, status, summary=summary, error=None if error is None else f"{type(error).__name__}: {error}"
        )
        if self._own:
            self.db.close()


def load_history(db: RunStore, run_id: str, stored: dict[str, Any] | None = None) -> History:
    """The stored history of a run as a :class:`History` — for a watched run with its layers' layout and
    histograms, for a lab run with the statistics its watch stored. ``stored``: what :meth:`RunStore.history`
    returned for this run, when the caller has read it already."""
    run = db.get(run_id)
    stored = db.history(run["id"]) if stored is None else stored
    layout = run["config"].get("layout", {}) if is_watched(run) else {}
    names = list(stored["stats"]) or list(run["config"].get("watch", {}).get("stats", []))
    h = History(
        stored["layers"],
        names,
        kinds=layout.get("kinds", ()),
        numel=layout.get("numel", ()),
        activations=layout.get("activations", ()),
        hist_edges=layout.get("hist_edges", ()),
        meta=layout.get("meta"),
    )
    if stored["stats"]:
        h.append(stored["steps"], np.stack([stored["stats"][n] for n in names], axis=1))  # [steps, stats, layers]
    hsteps, counts = db.histograms(run["id"])
    for step, c in zip(hsteps.tolist(), counts):
        h.append_histogram(step, c)
    return h

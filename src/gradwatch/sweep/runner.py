"""Run a sweep against a run store: plan (key every run, skip the completed keys), execute, store each record.

The driver alone writes to the store, one run at a time as its record arrives: ``start_run`` (which replaces an
earlier interrupted or failed run of the same key), its epochs, ``finish_run``. A sweep killed at any moment
therefore loses only the runs in flight; re-running it skips the completed keys and retries the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gradwatch.lab.keys import run_key
from gradwatch.store.records import store_record
from gradwatch.sweep.spec import SweepSpec

Event = Callable[[str, dict[str, Any]], None]  # on_event(kind, record): kind is "done" or "failed"


@dataclass
class Planned:
    key: str
    config: dict[str, Any]  # the full Config.to_dict()
    combo: dict[str, Any]  # the swept values (seed excluded)


@dataclass
class SweepOutcome:
    spec: SweepSpec
    planned: list[Planned]
    skipped: int = 0  # completed before this call
    done: int = 0  # completed by this call
    failed: int = 0
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → stored run (config, summary, …)
    seconds: float = 0.0


def plan(spec: SweepSpec) -> list[Planned]:
    """Every run of the spec with its key, duplicates (the same config twice) removed."""
    out, seen = [], set()
    names = [n for n in spec.params if n != "seed"]
    for cfg in spec.configs():
        d = cfg.to_dict()
        key = run_key(cfg)
        if key not in seen:
            seen.add(key)
            out.append(Planned(key, d, {n: d[n] for n in names}))
    return out


def make_jobs(todo: list[Planned], vmap: bool) -> list[dict[str, Any]]:
    """One job per run, or with ``vmap`` one job per group of runs the batched trainer can train together."""
    if not vmap:
        return [{"configs": [p.config], "batched": False} for p in todo]
    from gradwatch.lab.batched import group_configs

    return [{"configs": group, "batched": len(group) > 1} for group in group_configs([p.config for p in todo])]


def run_sweep(
    spec: SweepSpec,
    store_path: str,
    *,
    workers: int = 1,
    backend: str = "process",
    ray_address: str | None = None,
    vmap: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_event: Event | None = None,
) -> SweepOutcome:
    """Run every not yet completed run of ``spec`` and return the outcome (all runs of the spec, read back).

    ``on_start(total, skipped)`` is called once the plan is known; ``on_event(kind, record)`` after each run.
    """
    from gradwatch.store import RunStore
    from gradwatch.sweep.executors import make_executor
    from gradwatch.sweep.worker import lost_records, run_job

    t0 = time.perf_counter()
    planned = plan(spec)
    executor = make_executor(backend, workers, ray_address)
    outcome = SweepOutcome(spec, planned)
    with RunStore(store_path) as store:
        done_before = store.completed(p.key for p in planned)
        todo = [p for p in planned if p.key not in done_before]
        outcome.skipped = len(planned) - len(todo)
        if on_start is not None:
            on_start(len(planned), outcome.skipped)
        by_config = {run_key(p.config): p for p in todo}
        jobs = make_jobs(todo, vmap)
        if jobs:
            with executor:
                for _, records in executor.submit_all(run_job, jobs, lost=lost_records):
                    for record in records:
                        key = by_config[run_key(record["config"])].key
                        store_record(store, key, record)
                        ok = record["status"] == "completed"
                        outcome.done += ok
                        outcome.failed += not ok
                        if on_event is not None:
                            on_event("done" if ok else "failed", record)
        outcome.runs = store.completed(p.key for p in planned)
    outcome.seconds = time.perf_counter() - t0
    return outcome

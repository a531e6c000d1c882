"""A finished run's record (:mod:`gradwatch.lab.records`: config, status, metrics, watch history, summary) written
into the run store in one transaction, under its run key."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from gradwatch.store.ids import new_run_id

if TYPE_CHECKING:
    from gradwatch.store.sqlite import RunStore


def store_record(store: RunStore, key: str, record: dict[str, Any]) -> str:
    """Write one worker record into the store as a finished run, in one transaction; returns its id."""
    run_id = new_run_id()
    rows = sorted(record.get("history", []))
    steps = [r[0] for r in rows]
    with store.batch():
        store.start_run(run_id, record["config"], key=key)
        start = 0
        for m in record["metrics"]:  # each epoch's rows: the steps up to its last one
            end = max(start, bisect.bisect_right(steps, m.get("step", 0)))
            store.add_epoch(run_id, m["epoch"], m, layers=record.get("layers", ()), history=rows[start:end])
            start = end
        store.finish_run(run_id, record["status"], summary=record["summary"], error=record.get("error"))
    return run_id

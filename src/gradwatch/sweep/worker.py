"""What a sweep worker does with one job: train its configs and return plain, picklable records.

Workers never touch the run store: the driver writes each returned record (so a store on one machine serves a
Ray cluster, and a killed sweep loses only the runs in flight). A run that raises comes back as a ``failed``
record with the error, so one bad config does not stop the sweep.
"""

from __future__ import annotations

from typing import Any

from gradwatch.lab.records import failed_record


def lost_records(job: dict[str, Any], reason: str) -> list[dict[str, Any]]:
    """The records of a job whose worker process died on every try: each of its runs failed, with the reason."""
    return [failed_record(c, reason) for c in job["configs"]]


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    """A job is ``{"configs": [...], "batched": bool}``; returns one record per config, in order."""
    from gradwatch.lab.experiments.base import single_threaded

    with single_threaded():
        if job.get("batched"):
            from gradwatch.lab.batched import train_batched_records

            return train_batched_records(job["configs"], dtype=job.get("dtype"))
        from gradwatch.lab.records import train_record

        return [train_record(c) for c in job["configs"]]

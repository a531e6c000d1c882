"""The final diagnosis written where each logger keeps text: a TensorBoard text summary, the W&B run summary, an
MLflow text artifact. Shared by the Lightning and the Hugging Face callbacks; called through the watch's guarded
outlet (a failure is reported once and training goes on)."""

from __future__ import annotations

from typing import Any

from gradwatch.sinks.base import PREFIX

KEY = f"{PREFIX}/diagnosis"


def write_diagnosis(experiment: Any, text: str, step: int, run_id: str | None = None) -> bool:
    """Write ``text`` into ``experiment``, whichever of these it is: a ``SummaryWriter`` (``add_text``, shown as
    Markdown), a W&B run (``summary``), an ``MlflowClient`` with ``run_id`` or the ``mlflow`` module inside an
    active run (``log_text``, artifact ``gradwatch/diagnosis.txt``). Returns False for anything else."""
    if experiment is None:
        return False
    if callable(getattr(experiment, "add_text", None)):
        experiment.add_text(KEY, "```\n" + text + "\n```", global_step=step)
        flush = getattr(experiment, "flush", None)
        if callable(flush):
            flush()
        return True
    if callable(getattr(experiment, "log", None)) and getattr(experiment, "summary", None) is not None:
        experiment.summary[KEY] = text
        return True
    if callable(getattr(experiment, "log_text", None)):
        if run_id is not None:
            experiment.log_text(run_id, text, f"{KEY}.txt")
        else:
            experiment.log_text(text, f"{KEY}.txt")
        return True
    return False

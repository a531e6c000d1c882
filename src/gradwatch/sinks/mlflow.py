"""``MLflow(...)``: a watch's per-layer metrics and diagnosis in an MLflow run.

Written at flush time from the host rows with ``MlflowClient.log_batch`` (at most ``BATCH`` metrics a call, MLflow's
own limit), keys ``gradwatch/<stat>/<layer>``, the recorded step as MLflow's step, NaN and ±inf as they are.
MLflow has no histogram type: the log10|g| histograms are not written (use the TensorBoard sink or the report
page). The diagnosis is logged as the text artifact ``gradwatch/diagnosis.txt`` at close.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.sinks.base import PREFIX, check_stats, diagnosis_text, step_metrics

BATCH = 1000  # metrics per log_batch call (MLflow's limit)


def _mlflow():
    try:
        import mlflow
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ImportError('the MLflow sink needs mlflow: pip install "gradwatch[mlflow]"') from exc
    return mlflow, MlflowClient, Metric


def _uri(uri: str) -> str:
    """A tracking URI compared as MLflow resolves it: a local path and its ``file://`` URI are the same store."""
    if "://" in uri or ":" in uri.split("/", 1)[0]:
        return uri.rstrip("/")
    return Path(uri).resolve().as_uri()


class MLflow:
    """Log a watch to MLflow. ``run_id``: an existing run to log into; without it, the active run
    (``mlflow.start_run()``) if there is one, else a new run in ``experiment`` (named ``run_name``) that the
    sink ends at close. ``tracking_uri``: where (default: MLflow's own default / ``MLFLOW_TRACKING_URI``); inside
    an active run it must be that run's (or left out): the watch never logs to another run than the active one.
    ``stats``: the statistics to log (default: every recorded one)."""

    def __init__(
        self,
        run_id: str | None = None,
        *,
        tracking_uri: str | None = None,
        experiment: str = "gradwatch",
        run_name: str | None = None,
        stats: Sequence[str] | None = None,
        prefix: str = PREFIX,
    ):
        mlflow, client_cls, self._metric = _mlflow()
        self.stats, self.prefix = check_stats(stats), prefix
        active = mlflow.active_run() if run_id is None else None
        if active is not None and tracking_uri is not None and _uri(tracking_uri) != _uri(mlflow.get_tracking_uri()):
            raise ConfigError(
                "tracking_uri",
                tracking_uri,
                f"differs from the tracking URI of the active MLflow run {active.info.run_id} "
                f"({mlflow.get_tracking_uri()}); leave tracking_uri out to log into the active run, or "
                "pass run_id= of a run in that store",
            )
        self.client = client_cls(tracking_uri=tracking_uri)
        self._own = False
        if active is not None:
            run_id = active.info.run_id
        if run_id is None:
            exp = self.client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)
            run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
            self._own = True
        self.run_id = run_id

    def write(self, history: Any, steps: np.ndarray, values: np.ndarray) -> None:
        now = int(time.time() * 1000)
        batch: list[Any] = []
        for step, row in step_metrics(history, steps, values, self.stats, self.prefix):
            batch.extend(self._metric(k, v, now, step) for k, v in row.items())
        for i in range(0, len(batch), BATCH):
            self.client.log_batch(self.run_id, metrics=batch[i : i + BATCH])

    def write_histograms(self, history: Any, steps: np.ndarray, counts: np.ndarray) -> None:
        """MLflow has no histogram type; nothing is written."""

    def close(self, diagnosis: Any) -> None:
        self.client.log_text(self.run_id, diagnosis_text(diagnosis), f"{self.prefix}/diagnosis.txt")
        if self._own:
            self.client.set_terminated(self.run_id)

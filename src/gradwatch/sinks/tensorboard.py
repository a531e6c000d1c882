"""``TensorBoard(log_dir)``: a watch's per-layer scalars, log10|g| histograms and diagnosis in TensorBoard.

Written at flush time from the host rows: one event per recorded step holding every (statistic, layer) scalar
(``gradwatch/<stat>/<layer>``), NaN and ±inf as they are; the histograms as pre-binned TensorBoard histograms
(``gradwatch/log10_abs_grad/<layer>``: the counts the watch binned, so a NaN gradient cannot break them — it
sits in the top bin, and in ``gradwatch/nonfinite/<layer>``); the diagnosis as a text summary at close.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwatch.sinks.base import PREFIX, check_stats, diagnosis_markdown, step_metrics


def _summary_writer(log_dir: str | os.PathLike):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ImportError(
            'the TensorBoard sink needs the tensorboard package: pip install "gradwatch[tensorboard]"'
        ) from exc
    return SummaryWriter(log_dir=str(log_dir))


class TensorBoard:
    """Write a watch to TensorBoard event files in ``log_dir``, or through an open ``writer`` (a
    ``torch.utils.tensorboard.SummaryWriter``, e.g. Lightning's ``TensorBoardLogger.experiment``; it is flushed,
    not closed, at the end). ``stats``: the statistics to write (default: every recorded one)."""

    def __init__(
        self,
        log_dir: str | os.PathLike | None = None,
        *,
        writer: Any = None,
        stats: Sequence[str] | None = None,
        prefix: str = PREFIX,
    ):
        from gradwatch.errors import ConfigError

        if (log_dir is None) == (writer is None):
            raise ConfigError(
                "log_dir", log_dir, "give exactly one of log_dir (a directory) or writer (an open SummaryWriter)"
            )
        self.stats, self.prefix = check_stats(stats), prefix
        self._own = writer is None
        self._last_step = 0
        self.writer = writer if writer is not None else _summary_writer(str(log_dir))

    def write(self, history: Any, steps: np.ndarray, values: np.ndarray) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        file_writer = self.writer._get_file_writer()  # what add_scalar writes through, one event per step here
        for step, row in step_metrics(history, steps, values, self.stats, self.prefix):
            summary = Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in row.items()])
            file_writer.add_summary(summary, step)
            self._last_step = step

    def write_histograms(self, history: Any, steps: np.ndarray, counts: np.ndarray) -> None:
        edges = np.asarray(history.hist_edges, dtype=float)
        centres = (edges[:-1] + edges[1:]) / 2
        for step, per_layer in zip(np.asarray(steps).tolist(), counts):
            for layer, c in zip(history.layers, per_layer):
                c = c[: len(centres)]  # the regular bins (zeros, underflow, overflow and NaN follow them)
                num = float(c.sum())
                if num == 0:  # no gradient in this layer at this step
                    continue
                used = np.flatnonzero(c)
                self.writer.add_histogram_raw(
                    f"{self.prefix}/log10_abs_grad/{layer}",
                    min=float(edges[used[0]]),
                    max=float(edges[used[-1] + 1]),
                    num=num,
                    sum=float(c @ centres),
                    sum_squares=float(c @ centres**2),
                    bucket_limits=edges[1:].tolist(),
                    bucket_counts=c.tolist(),
                    global_step=int(step),
                )

    def close(self, diagnosis: Any) -> None:
        self.writer.add_text(f"{self.prefix}/diagnosis", diagnosis_markdown(diagnosis), global_step=self._last_step)
        self.writer.flush()
        if self._own:
            self.writer.close()

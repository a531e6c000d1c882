"""Sinks: where a watch's flushed per-layer statistics go besides its history — TensorBoard, MLflow, W&B
(``Wandb``), or any ``log(metrics, step)`` function. Pass them as ``gw.watch(model, optimizer, sinks=[...])``.

Each heavy library is imported only when its sink is created, with a message naming the extra to install.
"""

from gradwatch.sinks.base import Sink, metric_key
from gradwatch.sinks.metrics import Metrics
from gradwatch.sinks.mlflow import MLflow
from gradwatch.sinks.tensorboard import TensorBoard
from gradwatch.sinks.wandb import WandB, Wandb

__all__ = ["Metrics", "MLflow", "Sink", "TensorBoard", "Wandb", "WandB", "metric_key"]

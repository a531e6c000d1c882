"""gradwatch: why deep networks are hard to train — watch, diagnose, reproduce and predict gradient flow."""

from gradwatch._version import __version__
from gradwatch.errors import ConfigError, DataError

__all__ = ["__version__", "ConfigError", "DataError", "sinks", "watch"]


def __getattr__(name: str):
    """``gradwatch.watch`` is imported on first use, so ``import gradwatch`` stays light (no torch)."""
    if name == "watch":
        from gradwatch.watching import watch

        return watch
    if name == "sinks":  # gw.sinks.TensorBoard(...), gw.sinks.MLflow(...), gw.sinks.Wandb(...)
        import gradwatch.sinks as sinks

        return sinks
    raise AttributeError(f"module 'gradwatch' has no attribute {name!r}")

"""Run stores: where the lab records runs (config, per-epoch metrics, watch history)."""

from gradwatch.store.sqlite import DEFAULT_STORE, RunStore

__all__ = ["DEFAULT_STORE", "RunStore"]

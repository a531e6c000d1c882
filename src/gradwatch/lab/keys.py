"""The run key of a lab run: :func:`gradwatch.store.keys.config_key` of its complete config."""

from __future__ import annotations

from typing import Any

from gradwatch.store.keys import config_key


def run_key(config: dict[str, Any] | Any) -> str:
    """The key of a lab run: the config is completed with ``lab.Config``'s defaults first, so that a partial
    dict and the full config of the same run agree."""
    from gradwatch.lab.config import Config

    cfg = config if hasattr(config, "to_dict") else Config(**config)
    return config_key(cfg.to_dict())

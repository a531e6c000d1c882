"""Run keys: what makes two runs "the same run" — their canonical config, seed included.

A key is the first 16 hex digits of the SHA-256 of the config as JSON with sorted keys and no whitespace. The
config is the complete one (every field, defaults written out), so ``Config(depth=3)`` and ``Config()`` have the
same key, and a stored config (``RunStore`` keeps ``to_dict()``) hashes to the key it was stored under. The
key of a lab run, its config completed with the lab's defaults first, is :func:`gradwatch.lab.keys.run_key`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_LENGTH = 16  # hex digits kept: 64 bits, collisions negligible for any store a person keeps


def config_key(config: Any) -> str:
    """The key of a config: a ``lab.Config`` (or anything with ``to_dict``) or a JSON-ready dict."""
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    text = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]

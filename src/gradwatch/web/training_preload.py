"""Imported once by the process server that forks the playground's training processes: it imports what a
training needs and trains one tiny step (no store), so that the lazy imports of the lab, the watch and the
data (scikit-learn's digits) are paid once, not at every Start."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from gradwatch.stat_names import GRAD_NORM
from gradwatch.web import training  # noqa: F401 - the module every training process runs


def warm_up() -> None:
    import torch

    from gradwatch import lab

    # no thread pool in the process server: a pool's threads do not survive a fork (a child using one hangs);
    # each training process sets its own thread count
    torch.set_num_threads(1)
    from gradwatch.web.training import HISTOGRAM, SATURATION

    tiny: dict[str, Any] = {"depth": 1, "width": 4, "steps": 1, "epochs": 1, "batch_size": 8}
    cfg = lab.Config(**tiny)
    with contextlib.suppress(Exception):  # a failure here only costs the first real training its imports
        lab.train(cfg, watch_options={"stats": [GRAD_NORM, SATURATION, HISTOGRAM]})


def _in_process_server() -> bool:
    """Whether this is multiprocessing's process server (started as ``python -c 'from multiprocessing.forkserver
    import main; …'``): importing this module anywhere else (a tool importing every module) changes nothing."""
    return sys.argv[:1] == ["-c"] and "multiprocessing.forkserver" in sys.modules


if _in_process_server():
    warm_up()

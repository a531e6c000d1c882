"""Sweeps: many lab runs from one spec, keyed so that a re-run skips what is done (see ``gradwatch sweep``).

``spec`` parses ``--param`` values and sweep files into configs, ``executors`` run them (process pool, or Ray),
``worker`` is what one job does (one run at a time, or a group at once with the lab's vmapped trainer,
:mod:`gradwatch.lab.batched`), ``runner`` ties it to the run store, ``summary`` aggregates seeds. Each run is
named by its run key (:func:`gradwatch.lab.keys.run_key`, re-exported here).
"""

from gradwatch.lab.keys import run_key
from gradwatch.store.keys import config_key

__all__ = ["config_key", "run_key"]

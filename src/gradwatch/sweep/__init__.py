"""Sweeps: many lab runs from one spec, keyed so that a re-run skips what is done (see ``gradwatch sweep``).

``spec`` parses ``--param`` values and sweep files into configs, ``keys`` names each run, ``executors`` run
them (process pool, or Ray), ``batched`` trains small feed-forward nets that differ only in seed, init scale
or learning rate as one vmapped model, ``runner`` ties it to the run store, ``summary`` aggregates seeds.
"""

from gradwatch.sweep.keys import config_key, run_key

__all__ = ["config_key", "run_key"]

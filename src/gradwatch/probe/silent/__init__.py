"""What a watch notes, cheaply, about training bugs that let a run go on and quietly ruin it (docs/silent-bugs.md).

Each part is plain Python bookkeeping done at the optimizer's step hooks (or, on a few check steps, one tensor hook
per layer), with no host read per step; :class:`SilentProbe` writes what they saw into ``history.meta["silent"]``
at each flush, where the rules of :mod:`gradwatch.diagnose.rules` read it.
"""

from gradwatch.probe.silent.tracker import CHECK_EVERY, SilentProbe

__all__ = ["CHECK_EVERY", "SilentProbe"]

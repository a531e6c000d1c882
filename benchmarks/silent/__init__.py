"""Reproduced silent training bugs, each from a public report, for judging gradwatch's silent-bug findings.

* :mod:`.registry` — :class:`Truth` (kind, layers, first observable step), the ``@bug`` decorator, :data:`BUGS`;
* :mod:`.loop`     — a watched run of a few steps and the plain training steps the bugs alter;
* :mod:`.bugs_zero_grad`, :mod:`.bugs_graph`, :mod:`.bugs_loop`, :mod:`.bugs_ddp` — one function per bug, its
  report cited in the docstring;
* :mod:`.judge`    — whether a run's findings name the bug: the kind, the layers, within ``WITHIN`` optimizer steps;
* ``__main__``     — ``python benchmarks/silent``: every bug, then the silent kinds on every healthy zoo run.
"""

from . import bugs_ddp, bugs_graph, bugs_loop, bugs_zero_grad  # noqa: F401  (registers the bugs)
from .registry import BUGS, Bug, Case, Truth

__all__ = ["BUGS", "Bug", "Case", "Truth"]

"""Silent training bugs, each found from what the watch noted at the optimizer hooks (docs/silent-bugs.md): one
module per kind, each with a ``find(history, notes)`` that returns a :class:`~gradwatch.diagnose.Finding` or
None."""

from gradwatch.diagnose.silent.kinds import SILENT_KINDS

__all__ = ["SILENT_KINDS"]

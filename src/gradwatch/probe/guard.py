"""Never break the training loop: run a statistic, and if it raises, report it once and switch it off.

A monitoring hook that raises inside ``forward``, ``backward`` or ``optimizer.step()`` aborts the user's training
run. Every piece of gradwatch code that runs inside such a hook goes through :meth:`Guard.run`::

    guard = Guard()
    value = guard.run("act_saturation", "encoder.0", stat.compute, a, z, layer)  # None if it failed or is off

The first exception of a (statistic, layer) pair is caught, the pair is disabled for the rest of the watch (later
calls return None at once), and one :class:`HookFailureWarning` per statistic names the statistic, the layer and
the exception. ``layer=None`` stands for the statistic as a whole (all layers): a failure there disables the
statistic everywhere. :attr:`Guard.failures` lists every failure (for ``history.meta``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class HookFailureWarning(RuntimeWarning):
    """A gradwatch statistic raised inside a hook; it was disabled and training went on."""


class Guard:
    """Catches the exceptions of the code gradwatch runs inside hooks: report once, disable, go on."""

    def __init__(self, passthrough: tuple[type[BaseException], ...] = ()):
        self.passthrough = passthrough  # exceptions the user asked for (on_nonfinite="raise") go through
        self.failures: dict[tuple[str, str | None], str] = {}  # (statistic, layer or None) -> "Type: message"
        self._warned: set[str] = set()

    def active(self, name: str, layer: str | None = None) -> bool:
        """Whether ``name`` (on ``layer``) is still measured."""
        return (name, None) not in self.failures and (layer is None or (name, layer) not in self.failures)

    def run(self, name: str, layer: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn(*args, **kwargs)``, or None when it raises (then ``name`` is disabled on ``layer``) or is disabled.
        Exceptions that are not ``Exception`` (KeyboardInterrupt, SystemExit) pass through."""
        if not self.active(name, layer):
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the point: nothing a statistic does may stop training
            self.fail(name, layer, exc)
            return None

    def __call__(self, name: str, where: str = "", *, outlet: bool = False, step: int | None = None) -> _Trap:
        """``with guard("gradient statistics", "step 5"): ...``: the block's exception (unless in ``passthrough``)
        disables ``name`` for all layers; ``where`` says when it happened (``step=5`` puts "step 5" before it, formatted
        only if it fails). ``outlet=True``: ``name`` is where the watch's values go (a sink, the run store, the
        diagnosis), not a statistic. A plain object, not a generator-based context manager: it runs in every
        training step, several times."""
        return _Trap(self, name, where, outlet, step)

    def fail(self, name: str, layer: str | None, exc: BaseException, when: str = "", *, outlet: bool = False) -> None:
        """Disable ``name`` on ``layer`` (all layers when None) because of ``exc``; warn the first time per name."""
        why = f"{type(exc).__name__}: {exc}" + (f" (at {when})" if when else "")
        self.failures[(name, layer)] = why
        if name in self._warned:
            return
        self._warned.add(name)
        if outlet:
            message = (
                f"gradwatch: {name} failed ({why}); nothing more is sent there for the rest of this watch "
                "and training goes on (the history keeps every value). See history.meta['disabled']."
            )
        else:
            where = f"on layer {layer!r}" if layer is not None else "(all layers)"
            message = (
                f"gradwatch: {name!r} failed {where} ({why}); it is switched off there for the rest of this "
                "watch (NaN) and training goes on. Further failures of it are not reported one by one; see "
                "history.meta['disabled']."
            )
        warnings.warn(message, HookFailureWarning, stacklevel=4 if outlet else 3)

    def summary(self) -> dict[str, str]:
        """``{"statistic @ layer": "Type: message"}`` of every failure (JSON-ready, for ``history.meta``)."""
        return {f"{name} @ {layer if layer is not None else '*'}": why for (name, layer), why in self.failures.items()}


class _Trap:
    """The context of one guarded block (see :meth:`Guard.__call__`)."""

    __slots__ = ("guard", "name", "outlet", "step", "where")

    def __init__(self, guard: Guard, name: str, where: str, outlet: bool, step: int | None = None):
        self.guard, self.name, self.where, self.outlet, self.step = guard, name, where, outlet, step

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if kind is None or exc is None or issubclass(kind, self.guard.passthrough) or not issubclass(kind, Exception):
            return False  # no exception, or one that goes through (the user's own, KeyboardInterrupt, SystemExit)
        where = self.where
        if self.step is not None:
            where = f"step {self.step}" + (f" ({where})" if where else "")
        self.guard.fail(self.name, None, exc, where, outlet=self.outlet)
        return True

"""``gradwatch.watch``: the watch with its outlet — the facade between the probe, which only records into a
:class:`~gradwatch.probe.history.History`, and everything the rows go to besides it (the sinks, the run store,
the diagnosis sent to them at the end), every call guarded (:mod:`gradwatch.sinks.outputs`) — and the diagnosis
and report of a watch (``Watcher.diagnose()`` and ``Watcher.report()`` call :func:`diagnosis_of` and
:func:`report_of`)."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from gradwatch.probe.layers import unwrap
from gradwatch.probe.watcher import Watcher
from gradwatch.sinks.outputs import Outputs


def watch(model: nn.Module, optimizer: Any = None, every: int = 1, **options: Any) -> Watcher:
    """Watch ``model``'s per-layer gradient flow while it trains.

    Use as a context manager, ``with gw.watch(model, optimizer=opt) as w: ...``, or ``w = gw.watch(...)`` and
    ``w.close()`` when done. With an optimizer (or a list of them) the statistics are taken at each
    ``optimizer.step()``; without one, call ``w.step()`` after each backward.

    Options: ``every`` (record every n-th step, default 1); ``stats`` (``"default"``: grad_norm and nonfinite on
    every recorded step, grad_norm_preclip when the loop clips, and on sampled steps grad_abs_mean, grad_abs_max,
    weight_norm and, with an optimizer, update_ratio; ``"full"``: also act_mean, act_std, act_saturation,
    act_dead, act_nonfinite, backward_gain, gain_activation and log10|g| histograms on sampled steps; or a list of
    names); ``sample_every`` (the sampled statistics on every k-th recorded step, default 10; step 0 is always
    sampled); ``flush_every`` (host copy every n recorded steps, default 100); ``on_nonfinite`` (``"record"``
    (default), ``"warn"``, ``"raise"`` or ``"locate"``: a finite check on every layer's output and gradients every
    step, so the diagnosis names the module where an inf/NaN started); ``param_names`` (only parameters with these
    local names, e.g. ``("weight",)``); ``start_step`` (number of the first step, default 0); ``sinks`` (e.g.
    ``[gradwatch.sinks.TensorBoard(dir)]``, written at every flush with the values measured there; a sink that
    raises is reported once and switched off, and training goes on); ``store`` (a run-store path: the run,
    ``name`` and the ``config`` you pass are stored, for ``gradwatch runs / show / report / compare``).
    """
    return Watcher(model, optimizer, every, outlet=Outputs, **options)


def diagnosis_of(watcher: Watcher, **thresholds: Any):
    """Findings from ``watcher``'s history: see :func:`gradwatch.diagnose.diagnose` for the thresholds."""
    from gradwatch.diagnose import diagnose

    return diagnose(watcher.history, **thresholds)


def report_of(watcher: Watcher, console: Any = None, *, html: Any = None, **thresholds: Any) -> Any:
    """Print ``watcher``'s per-layer table and diagnosis (rich) to ``console`` (stdout by default); with
    ``html=PATH``, write the self-contained report page there instead and return its path."""
    if html is not None:
        from gradwatch.report.watch_page import write_watch_page

        if not isinstance(html, (str, os.PathLike)):
            raise TypeError(f"html={html!r} is not allowed: expected the path of the .html file to write")
        return write_watch_page(
            html,
            watcher.history,
            diagnosis_of(watcher, **thresholds),
            title=watcher.name or type(unwrap(watcher.model)).__name__,
        )
    from gradwatch.report.watch_table import print_watch_report

    print_watch_report(watcher.history, diagnosis_of(watcher, **thresholds), console=console)
    return None

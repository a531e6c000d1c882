"""Run one scenario and judge it: skipped when an optional package is missing, an error verdict when the scenario
raises (a watch option not supported yet, a failed premise), else :func:`~.score.verdict`."""

from __future__ import annotations

import time

import torch

from .label import Run
from .registry import Scenario
from .score import Verdict, verdict
from .truth import PremiseError


def judge(scenario: Scenario) -> tuple[Verdict, Run | None]:
    """``(verdict, run)``; ``run`` is None when the scenario was skipped or raised. The verdict's facts carry the
    run's wall time in seconds (``seconds``)."""
    missing = scenario.missing()
    if missing:
        return Verdict(
            scenario.name, skipped=f'needs {", ".join(missing)}: pip install "gradwatch[zoo]"', split=scenario.split
        ), None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        run = scenario()
    except NotImplementedError as exc:
        return Verdict(scenario.name, skipped=str(exc), split=scenario.split), None
    except PremiseError as exc:
        return _crashed(scenario, f"premise failed: {exc}", start), None
    except Exception as exc:  # noqa: BLE001 - a scenario that crashes is reported, the zoo goes on
        return _crashed(scenario, f"{type(exc).__name__}: {exc}", start), None
    finally:
        torch.set_num_threads(threads)
    v = verdict(scenario.name, run)
    v.split = scenario.split
    v.facts["seconds"] = _since(start)
    return v, run


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 2)


def _crashed(scenario: Scenario, error: str, start: float) -> Verdict:
    return Verdict(
        scenario.name, error=error, expects=scenario.expects, facts={"seconds": _since(start)}, split=scenario.split
    )

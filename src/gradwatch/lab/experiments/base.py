"""What every experiment of the catalogue is: a claim, a validated config, and a ``run`` that returns numbers.

An :class:`Experiment` is registered by its module (``EXPERIMENT = Experiment(...)``). Its ``run(config,
progress)`` returns an :class:`ExperimentResult`: the claim, whether the measured numbers support it (and the
evidence, in one sentence), plain tables, plot objects and every number as JSON-ready data. Presentation
(terminal, PNG, JSON, HTML) lives in :mod:`gradwatch.report` and the CLI; experiments never print.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import torch
from pydantic import Field, model_validator

from gradwatch.config import FINITE, StrictModel

T = TypeVar("T")


class ExperimentConfig(StrictModel):
    """Options every experiment accepts; experiments subclass it and add their knobs. Floats must be finite, and
    the sizes of the nets an experiment builds must fit in memory (see :mod:`gradwatch.lab.memory`)."""

    model_config = FINITE

    quick: bool = Field(False, description="CI-sized run: fewer steps and smaller nets, same claim")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="seed of weights, data order and splits")

    @model_validator(mode="after")
    def _fits_in_memory(self):
        from gradwatch.lab.memory import check_experiment_size

        check_experiment_size(self)
        return self


@dataclass
class Table:
    """A plain table: a title, column headers and rows of str / int / float / None."""

    title: str
    columns: list[str]
    rows: list[list[Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows}


class Figure(Protocol):
    """A plot object (see :mod:`gradwatch.report.plots`): ``save(path)`` writes a PNG."""

    def save(self, path: Any, dpi: int = ...) -> Any: ...


@dataclass
class ExperimentResult:
    name: str
    claim: str
    holds: bool
    evidence: str
    numbers: dict[str, Any]
    config: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    figures: Mapping[str, Figure] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    seconds: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "claim": self.claim,
            "holds": self.holds,
            "evidence": self.evidence,
            "config": self.config,
            "numbers": self.numbers,
            "tables": [t.to_dict() for t in self.tables],
            "figures": sorted(self.figures),
            "run_ids": self.run_ids,
            "seconds": self.seconds,
        }


class Progress(Protocol):
    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]: ...


class SilentProgress:
    """No progress display (tests, ``--json``)."""

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        yield from items


@contextmanager
def single_threaded():
    """Run torch on one intra-op thread inside the block (restored afterwards). The catalogue's nets are small:
    on a busy 2-core machine two threads made one epoch of a 30-unit net 40× slower (25 s against 0.6 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Experiment:
    name: str
    seeds: str  # which lecture decks it reproduces, e.g. "001" or "000, 002"
    summary: str  # one line for `gradwatch lab --list`
    claim: str  # one sentence the numbers must support
    config: type[ExperimentConfig]
    run: Callable[[Any, Progress], ExperimentResult]

    def __call__(self, progress: Progress | None = None, **options: Any) -> ExperimentResult:
        """Run with keyword options (validated by the experiment's config)."""
        import time

        cfg = self.config(**options)
        t0 = time.perf_counter()
        with single_threaded():  # small nets: one thread is faster and leaves the other core free
            result = self.run(cfg, progress or SilentProgress())
        result.seconds = time.perf_counter() - t0
        return result

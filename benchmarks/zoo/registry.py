"""The scenario registry: :data:`SCENARIOS` by name, filled by the ``@scenario`` decorator of each scenario module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .label import Run


@dataclass(frozen=True)
class Scenario:
    """A registered scenario. ``expects``: the kinds its label requires (none for a healthy run), declared up front
    so that a scenario that crashes still counts as missing them."""

    name: str
    fn: Callable[[], Run]
    expects: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # optional packages (import names)
    split: str = "train"  # "train": the rules were tuned on it; "held-out": never tuned on, judged apart
    silent: tuple[str, ...] = ()  # silent-bug kinds the run carries by construction (benchmarks/silent judges them)

    @property
    def doc(self) -> str:
        """The first paragraph of the scenario function's docstring, on one line."""
        return " ".join((self.fn.__doc__ or "").strip().split("\n\n")[0].split())

    def missing(self) -> list[str]:
        """The optional packages this scenario needs that do not import here."""
        out = []
        for name in self.needs:
            try:
                __import__(name)
            except ImportError:
                out.append(name)
        return out

    def __call__(self) -> Run:
        torch.manual_seed(0)
        run = self.fn()
        got = tuple(e.kind for e in run.label.expect)
        if sorted(got) != sorted(self.expects):
            raise RuntimeError(f"scenario {self.name} declares {self.expects} but its label expects {got}")
        return run


SCENARIOS: dict[str, Scenario] = {}


SPLITS = ("train", "held-out")


def scenario(
    name: str,
    expects: tuple[str, ...] = (),
    needs: tuple[str, ...] = (),
    split: str = "train",
    silent: tuple[str, ...] = (),
):
    if split not in SPLITS:
        raise ValueError(f"scenario {name!r}: split={split!r}; expected one of {', '.join(SPLITS)}")

    def register(fn: Callable[[], Run]) -> Callable[[], Run]:
        SCENARIOS[name] = Scenario(name, fn, expects, needs, split, silent)
        return fn

    return register

"""What a reproduced bug is: its truth (the finding it must get) and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class Truth:
    """The finding a bug must get: its ``kind``, the first optimizer step at which the bug is observable (the
    watch's step numbering: 0 = the first optimizer step) and, where the bug sits in named layers, exactly those
    layers (module paths of the modules that own the parameters; ``("(model)",)`` for the model as a whole)."""

    kind: str
    step: int
    layers: tuple[str, ...] = ()


@dataclass
class Case:
    """What a bug's run hands back: the findings (``Finding.to_dict()``) and the layers the truth names, computed
    by the bug itself from the model (never by gradwatch)."""

    findings: list[dict]
    layers: tuple[str, ...] = ()
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Bug:
    name: str
    kind: str
    step: int
    fn: Callable[[int], Case]
    needs: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """The first paragraph of the docstring: what the bug is and where it was reported."""
        return " ".join((self.fn.__doc__ or "").strip().split("\n\n")[0].split())

    def missing(self) -> list[str]:
        out = []
        for name in self.needs:
            try:
                __import__(name)
            except ImportError:
                out.append(name)
        return out

    def run(self, steps: int) -> tuple[Truth, Case]:
        torch.manual_seed(0)
        case = self.fn(steps)
        return Truth(self.kind, self.step, tuple(case.layers)), case


BUGS: dict[str, Bug] = {}


def bug(name: str, kind: str, step: int, needs: tuple[str, ...] = ()):
    """Register ``fn(steps) -> Case`` as a bug of ``kind`` first observable at optimizer step ``step``."""
    def register(fn: Callable[[int], Case]) -> Callable[[int], Case]:
        BUGS[name] = Bug(name, kind, step, fn, needs)
        return fn
    return register


def modules_of(model: nn.Module, params) -> list[str]:
    """The paths of the modules owning ``params`` (a tied parameter: the module ``named_parameters`` names first)."""
    ids = {id(p) for p in params}
    return list(dict.fromkeys(n.rsplit(".", 1)[0] if "." in n else "" for n, p in model.named_parameters()
                              if id(p) in ids))


def param_modules(model: nn.Module, under: str = "") -> list[str]:
    """Paths of the modules of ``model`` that own parameters, under the path ``under`` (all: "")."""
    return [n for n in modules_of(model, model.parameters())
            if not under or n == under or n.startswith(under + ".")]

"""The scenarios, one function each, grouped by what they show; importing this package registers them all in
:data:`~..registry.SCENARIOS` (healthy runs first).

Each is a short CPU run of a real architecture under ``gw.watch`` returning a :class:`~..label.Run` whose label is
computed from the run itself (autograd, the zoo's hooks, the injected fault). Healthy runs assert that the model
learns (the loss falls); broken runs assert that the fault happened. Either failure raises
:class:`~..truth.PremiseError`: the scenario is wrong, not the diagnosis.
"""

from ..registry import SCENARIOS, Scenario
from . import healthy, gradients, updates, units, nonfinite, integrations  # noqa: F401  (registers the scenarios)
from . import wild_healthy, wild_broken  # noqa: F401,E402  (architectures the rules were not written for)

__all__ = ["SCENARIOS", "Scenario"]

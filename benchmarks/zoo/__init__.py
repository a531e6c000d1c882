"""A labelled zoo of training runs for judging ``diagnose()``: real architectures, healthy and broken, each a short
CPU run under ``gw.watch`` with its expected verdict computed independently of gradwatch.

* :mod:`.label`     — what a scenario expects (:class:`Expect`, :class:`Label`) and what it returns (:class:`Run`);
* :mod:`.data`      — sklearn digits, byte text, the adding problem, a token-presence task (no network);
* :mod:`.models`    — the small architectures (hand-built and Hugging Face ``transformers`` tiny configs);
* :mod:`.truth`     — ground truth measured by the zoo's own hooks and autograd, never by gradwatch;
* :mod:`.loop`      — the pieces of the scenarios' training loops;
* :mod:`.registry`  — :data:`SCENARIOS` by name;
* :mod:`.scenarios` — one function per scenario, by theme (healthy, gradients, updates, units, nonfinite);
* :mod:`.score`     — a scenario's verdict and precision / recall / layer and step accuracy over the zoo;
* :mod:`.runner`    — run and judge one scenario (skips, errors and failed premises included).

``benchmarks/diagnosis.py`` runs it all; ``tests/test_diagnosis_zoo.py`` asserts each verdict.
"""

from .label import Expect, Label, Run
from .registry import SCENARIOS, Scenario
from . import scenarios  # noqa: F401  (registers the scenarios)
from .score import Verdict, summarise, summarise_parts, verdict

__all__ = ["Expect", "Label", "Run", "SCENARIOS", "Scenario", "Verdict", "summarise", "summarise_parts", "verdict"]

"""Lower layers never import upper ones: the data flows model → probe → history → (diagnose, store, report),
the theory and the lab build on nn/, and only the CLI sits on top of everything."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gradwatch"

# package → the gradwatch packages it must not import (at module level or inside functions)
FORBIDDEN = {
    "nn": {"lab", "cli", "theory", "report", "store", "probe", "diagnose"},
    "theory": {"lab", "cli"},
    "report": {"cli", "lab"},
    "store": {"cli", "lab", "report"},
    "probe": {"cli", "lab", "store", "sinks", "watching"},  # records only (Watcher.report() prints via report/)
    "reference": {"cli", "lab"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        found |= {n.split(".")[1] for n in names if n.startswith("gradwatch.") and n.count(".") >= 1}
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_ones(package):
    bad = {f"{p.relative_to(SRC)} imports gradwatch.{m}" for p in (SRC / package).rglob("*.py")
           for m in _imports(p) & FORBIDDEN[package]}
    assert not bad, sorted(bad)

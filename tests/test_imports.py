"""The import contracts (.importlinter, checked by import-linter): every package imports only the layers below
it, the one named exception aside, and the core needs none of the optional integrations. A copy of the package
with an injected violation shows the contracts catch it, in the forms a hand-written check tends to miss."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess:
    """lint-imports on the package under ``src`` in a fresh interpreter (no cache written)."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(CONFIG)!r}, no_cache=True, no_logo=True))")
    env = {"PYTHONPATH": str(src), "PATH": "", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept(tmp_path):
    result = _lint(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, expected", [
    # the store reaching up into the sweep, in the `from gradwatch import X` form, inside a function
    ("store/keys.py", "def _up():\n    from gradwatch import sweep\n", "gradwatch.store.keys -> gradwatch.sweep"),
    # the probe reaching up into the sinks at module level
    ("probe/history.py", "import gradwatch.sinks.base\n", "gradwatch.probe.history -> gradwatch.sinks.base"),
    # the core importing an optional integration
    ("diagnose/facts.py", "def _up():\n    import wandb\n", "gradwatch.diagnose.facts -> wandb"),
    # a new package that no layer names (the layers contract is exhaustive)
    ("unplaced.py", "import gradwatch.errors\n", "gradwatch.unplaced"),
])
def test_an_injected_violation_breaks_a_contract(tmp_path, module, line, expected):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "gradwatch", src / "gradwatch", ignore=shutil.ignore_patterns("__pycache__"))
    path = src / "gradwatch" / module
    path.write_text((path.read_text(encoding="utf-8") if path.exists() else "") + "\n" + line, encoding="utf-8")
    result = _lint(src, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout and expected in result.stdout, result.stdout

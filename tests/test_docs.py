"""The docs cannot drift from the code: the site builds with ``mkdocs build --strict``, and every ```python
block of the hand-written pages runs, in order, in one namespace per page; a ```text block right after a
```python block is that block's output and must be what it prints. ```bash blocks are shown, not run, and so
is a ```python block whose first line is "# not run: REASON".

The README's "watch your own model" block runs too, and the output the README shows is what it prints.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NOT_RUN = "# not run:"  # first line of a block that cannot run in the tests (a GPU, a server); says why
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def run_blocks(text: str, where: str) -> list[tuple[str, str]]:
    """Execute the page's python blocks in one namespace; returns (expected, printed) for each block shown with
    its output. An optional library a page needs that is not installed skips the page."""
    namespace: dict = {"__name__": "__docs__"}
    found, pairs = blocks(text), []
    for i, (lang, code) in enumerate(found):
        if lang != "python" or code.lstrip().startswith(NOT_RUN):
            continue
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{where} block {i}", "exec"), namespace)
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("gradwatch"):
                pytest.skip(f"{where} needs {exc.name}, which is not installed")
            raise
        if i + 1 < len(found) and found[i + 1][0] == "text":
            pairs.append((found[i + 1][1], out.getvalue()))
    return pairs


def hand_written_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)


@pytest.mark.parametrize("page", hand_written_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_python_block_of_the_docs_runs_and_prints_what_is_shown(page, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    text = page.read_text(encoding="utf-8")
    if not any(lang == "python" for lang, _ in blocks(text)):
        pytest.skip("no python block on this page")
    for expected, printed in run_blocks(text, page.name):
        assert _lines(printed) == _lines(expected)


def test_readme_watch_example_prints_what_the_readme_shows(monkeypatch):
    """The README shows the beginning of the output (up to a line "…"): those lines must be printed, in order."""
    monkeypatch.setenv("COLUMNS", "120")
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Watch your own model", 1)[1].split("\n## ", 1)[0]
    pairs = run_blocks(section, "README.md")
    assert len(pairs) == 1
    expected, printed = pairs[0]
    shown = [line for line in _lines(expected) if line.strip() != "…"]
    assert _lines(printed)[:len(shown)] == shown


def test_readme_links_stay_inside_the_repo():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    assert targets, "the README links to its docs"
    for target in targets:
        assert "://" not in target and not target.startswith("/"), target
        assert (REPO / target.split("#")[0]).exists(), f"README links to {target}, which is not in the repo"
    assert "/work/" not in text and "/tmp/" not in text and "../shared" not in text


def test_readme_quick_start_is_one_bash_block_of_two_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"##\s*Quick start.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) == 2 and "pytest" in lines[1]


def test_site_builds_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"the docs build needs {module}: pip install 'gradwatch[docs]'")
    site = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                        str(REPO / "mkdocs.yml"), "--site-dir", str(site)], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    for page in ["index.html", "guide/index.html", "cli/index.html", "api/index.html", "lab/paralysis/index.html"]:
        assert (site / page).is_file(), page
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "gradwatch train" in cli and "--store" in cli  # generated from the typer app

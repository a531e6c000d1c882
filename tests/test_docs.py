"""The docs cannot drift from the code: the site builds with ``mkdocs build --strict``, and every ```python
block of the hand-written pages runs, in order, in one namespace per page; a ```text block right after a
```python block is that block's output and must be what it prints. ```bash blocks are shown, not run, and so
is a ```python block whose first line is "# not run: REASON".

Output whose digits depend on the machine (the thread count, the CPU's kernels: a training run of many steps)
is marked by a comment between the two blocks, ``<!-- numbers vary by machine: within 4x -->``: its text must
still be what is shown, and each number within that factor of the one shown. What such a page claims is then
checked as a claim (see ``test_guide_remedies_learn_where_the_sigmoid_net_does_not``).

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
VARY = re.compile(r"<!--\s*numbers vary by machine: within (\d+(?:\.\d+)?)x\s*-->")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def tolerances(text: str) -> list[float]:
    """For every fenced block, the factor its numbers may differ by (1: exactly as shown), from a
    ``numbers vary by machine`` comment between it and the block before."""
    factors, end = [], 0
    for m in FENCE.finditer(text):
        vary = VARY.search(text, end, m.start())
        factors.append(float(vary.group(1)) if vary else 1.0)
        end = m.end()
    return factors


def same_output(printed: list[str], expected: list[str], factor: float) -> bool:
    """Whether the lines are the same, the numbers in them within ``factor`` of each other (same sign)."""
    if factor == 1.0 or len(printed) != len(expected):
        return printed == expected
    for got, want in zip(printed, expected):
        if NUMBER.split(got) != NUMBER.split(want):
            return False
        for a, b in zip(map(float, NUMBER.findall(got)), map(float, NUMBER.findall(want))):
            if (a > 0) != (b > 0) or (a < 0) != (b < 0) or (a and b and max(a / b, b / a) > factor):
                return False
    return True


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def run_blocks(text: str, where: str) -> list[tuple[str, str, float]]:
    """Execute the page's python blocks in one namespace; returns (expected, printed, factor) for each block
    shown with its output. An optional library a page needs that is not installed skips the page."""
    namespace: dict = {"__name__": "__docs__"}
    found, pairs, factors = blocks(text), [], tolerances(text)
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
            pairs.append((found[i + 1][1], out.getvalue(), factors[i + 1]))
    return pairs


def hand_written_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)


@pytest.mark.parametrize("page", hand_written_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_python_block_of_the_docs_runs_and_prints_what_is_shown(page, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    text = page.read_text(encoding="utf-8")
    if not any(lang == "python" for lang, _ in blocks(text)):
        pytest.skip("no python block on this page")
    for expected, printed, factor in run_blocks(text, page.name):
        if factor == 1.0:
            assert _lines(printed) == _lines(expected)
        else:
            assert same_output(_lines(printed), _lines(expected), factor), (_lines(printed), _lines(expected))


def test_guide_remedies_learn_where_the_sigmoid_net_does_not(monkeypatch):
    """The guide's claim, whatever digits this machine prints: each remedy ends at a lower loss than the plain
    sigmoid net (at least 3× lower), which stays near chance (ln 10 ≈ 2.30), and only the sigmoid net has findings."""
    monkeypatch.setenv("COLUMNS", "120")
    text = (DOCS / "guide.md").read_text(encoding="utf-8")
    printed = next(p for e, p, _ in run_blocks(text, "guide.md") if e.startswith("sigmoid: loss"))
    runs = {line.split(":")[0]: line for line in _lines(printed)}
    loss = {title: float(re.search(r"loss ([\d.]+)", line).group(1)) for title, line in runs.items()}
    assert abs(loss["sigmoid"] - 2.3026) < 0.05 and "vanishing" in runs["sigmoid"]
    for remedy in ("ReLU + He init", "sigmoid + batch norm"):
        assert loss[remedy] < loss["sigmoid"] / 3 and "healthy" in runs[remedy]


def test_output_comparison_with_a_tolerance_checks_text_and_numbers():
    shown = ["loss 0.345, ratio 2.6e-05; healthy"]
    assert same_output(["loss 0.114, ratio 2.1e-05; healthy"], shown, 4)
    assert not same_output(["loss 0.114, ratio 2.1e-05; 1 finding(s)"], shown, 4)  # the text is exact
    assert not same_output(["loss 0.0345, ratio 2.1e-05; healthy"], shown, 4)  # 10× off
    assert not same_output(["loss -0.345, ratio 2.1e-05; healthy"], shown, 4)  # the sign
    assert not same_output(["loss 0.114, ratio 2.1e-05; healthy"], shown, 1)


def test_readme_watch_example_prints_what_the_readme_shows(monkeypatch):
    """The README shows the beginning of the output (up to a line "…"): those lines must be printed, in order."""
    monkeypatch.setenv("COLUMNS", "120")
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Watch your own model", 1)[1].split("\n## ", 1)[0]
    pairs = run_blocks(section, "README.md")
    assert len(pairs) == 1
    expected, printed, _ = pairs[0]
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


def test_the_tested_versions_in_the_docs_are_the_constraints():
    """docs/getting-started.md names the versions the suite is tested with: the ones constraints.txt pins."""
    pins = dict(line.split("==", 1) for line in (REPO / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    pins = {name.lower(): version.strip() for name, version in pins.items()}
    table = re.findall(r"^\| ([\w-]+) \| ([\w.]+) \|$", (DOCS / "getting-started.md").read_text(), re.M)
    assert len(table) >= 9
    for name, version in table:
        assert pins.get(name) == version, f"{name}: the docs say {version}, constraints.txt {pins.get(name)}"

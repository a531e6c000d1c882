"""Self-contained HTML pages (images embedded as base64): one per experiment, and an index (the gallery)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradwatch.report.terminal import fmt_sci

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .claim{font-size:1.15em;margin:.4em 0 1em} .ok{color:#17803d} .no{color:#b3261e}
table{border-collapse:collapse;margin:.6em 0 1.4em} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left} img{max-width:100%;border:1px solid #eee}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1.2em}
.card{border:1px solid #ddd;border-radius:6px;padding:.8em} .card img{width:100%} small{color:#666}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}
"""


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return fmt_sci(v)
    return html.escape("" if v is None else str(v))


def table_html(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<h3>{html.escape(title)}</h3><table><tr>{head}</tr>{body}</table>"


def img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def experiment_page(result: dict[str, Any], images: dict[str, Path], index_href: str | None = None) -> str:
    """The page of one experiment from its JSON-ready dict (``ExperimentResult.to_dict()``) and PNG paths."""
    verdict = (
        "<span class='ok'>✓ the measured numbers support the claim</span>"
        if result["holds"]
        else "<span class='no'>✗ the measured numbers do not support the claim in this run</span>"
    )
    parts = [
        f"<p><a href='{html.escape(index_href)}'>← all experiments</a></p>" if index_href else "",
        f"<h1>{html.escape(result['name'])}</h1>",
        f"<p class='claim'><b>Claim.</b> {html.escape(result['claim'])}</p>",
        f"<p>{verdict}: {html.escape(result['evidence'])}</p>",
    ]
    parts += [img_tag(p, name) for name, p in images.items()]
    parts += [table_html(t["title"], t["columns"], t["rows"]) for t in result.get("tables", [])]
    parts.append("<h3>Configuration</h3><pre>" + html.escape(json.dumps(result["config"], indent=2)) + "</pre>")
    if result.get("run_ids"):
        parts.append("<p><small>stored runs: " + html.escape(", ".join(result["run_ids"])) + "</small></p>")
    parts.append(f"<p><small>computed in {result.get('seconds', float('nan')):.1f} s by gradwatch</small></p>")
    return _page(f"gradwatch — {result['name']}", "\n".join(parts))


def index_page(entries: Sequence[dict[str, Any]], title: str = "gradwatch — experiment gallery") -> str:
    """A gallery linking every experiment page; each entry: name, claim, holds, href, thumb (PNG path or None)."""
    cards = []
    for e in entries:
        mark = "<span class='ok'>✓</span>" if e["holds"] else "<span class='no'>✗</span>"
        thumb = img_tag(e["thumb"], e["name"]) if e.get("thumb") else ""
        cards.append(
            f"<div class='card'><h3><a href='{html.escape(e['href'])}'>{html.escape(e['name'])}</a> "
            f"{mark}</h3><a href='{html.escape(e['href'])}'>{thumb}</a><p>{html.escape(e['claim'])}</p></div>"
        )
    return _page(title, f"<h1>{html.escape(title)}</h1><div class='grid'>{''.join(cards)}</div>")

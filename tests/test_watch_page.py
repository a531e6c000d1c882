"""The watch report page: one self-contained file, opened in a real headless browser (the system's Chromium
driven by Playwright) with every request intercepted — nothing leaves file:// — naming every layer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import gradwatch as gw

CHROMIUM = os.environ.get("GRADWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DEPTH = 12


def _watched(tmp_path):
    torch.manual_seed(0)
    layers = []
    for _ in range(DEPTH):
        layers += [nn.Linear(10, 10), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(10, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    with gw.watch(model, opt, stats="full", sample_every=3) as w:
        for _ in range(9):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return w


def test_report_page_is_self_contained_and_names_every_layer_in_a_browser(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (gradwatch[test])")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (install the system package, e.g. apt-get install chromium)")
    w = _watched(tmp_path)
    page_path = w.report(html=tmp_path / "report.html")
    html = page_path.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html and "<script" not in html

    requests = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})

            def intercept(route):
                requests.append(route.request.url)
                if route.request.url.startswith(("file://", "data:")):
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", intercept)
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            text = page.inner_text("body")
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        finally:
            browser.close()
    assert requests and all(u.startswith(("file://", "data:")) for u in requests), requests
    assert images and all(done and width > 0 for done, width in images)  # every chart decoded
    for layer in w.history.layers:
        assert layer in text
    assert "Diagnosis" in text and "vanishing" in text  # the deep sigmoid chain's finding, with its remedies
    assert "Remedies" in text and str(w.diagnose()["vanishing"].remedies[0].title) in text
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

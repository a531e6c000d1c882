"""Take the screenshots of ``gradwatch serve`` in docs/images/ (needs the extra web, playwright and a Chromium).

    python docs/serve_screenshots.py [--chromium /usr/bin/chromium]

Trains a few of the seeds' nets into a temporary run store, serves it on a free port and photographs the runs
list, a run's page (30 ReLU layers, Xavier init) and the playground after its "Network paralysis" preset has run.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from gradwatch import lab
from gradwatch.web import create_app
from gradwatch.web.presets import PRESETS

OUT = Path(__file__).parent / "images"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def fill(store: Path) -> str:
    """Train the presets' runs into ``store``; return the id of the 30-layer ReLU net with Xavier init."""
    ids = {}
    for preset in PRESETS:
        if preset["name"] in ("paralysis", "xavier-vs-he", "sigmoid-vs-relu", "rnn-vs-lstm"):
            for side in ("a", "b"):
                ids[preset["name"], side] = lab.train(lab.Config(**{"epochs": 10 ** 6, **preset[side]}), store=store).id
    return ids["xavier-vs-he", "a"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "runs.sqlite"
        run_id = fill(store)
        server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            thread.join(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
                page.set_viewport_size({"width": 1360, "height": 300})
                page.goto(url + "/")
                page.wait_for_selector("#rows tr")
                page.screenshot(path=OUT / "serve-runs-list.png", full_page=True)
                page.set_viewport_size({"width": 1360, "height": 900})
                page.goto(f"{url}/runs/{run_id}")
                page.wait_for_function("() => Number(document.getElementById('heatmap').dataset.drawn) > 0")
                page.screenshot(path=OUT / "serve-run.png", full_page=True)
                page.goto(url + "/playground")
                page.click("button[data-name=paralysis]")
                page.wait_for_function("() => (document.getElementById('status').textContent.match(/completed/g) || [])"
                                       ".length === 2", timeout=300_000)
                page.wait_for_timeout(500)
                page.screenshot(path=OUT / "serve-playground.png", full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join()
    print("wrote", *sorted(p.name for p in OUT.glob("serve-*.png")))


if __name__ == "__main__":
    main()

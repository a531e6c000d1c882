"""``gradwatch serve``: the server on a free port, driven over HTTP, and its pages in headless Chromium.

Every number checked is computed a second way: a run's served history against the in-memory history that
``lab.train`` returned, the playground's streamed per-layer gradient norms against a direct autograd
computation of the same net on the same first batch.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

fastapi = pytest.importorskip("fastapi", reason="gradwatch serve needs the extra web (fastapi)")
uvicorn = pytest.importorskip("uvicorn", reason="gradwatch serve needs the extra web (uvicorn)")
httpx = pytest.importorskip("httpx", reason="the HTTP tests need httpx")

from gradwatch import lab  # noqa: E402
from gradwatch.errors import ConfigError  # noqa: E402
from gradwatch.store import RunStore  # noqa: E402
from gradwatch.web import create_app  # noqa: E402
from gradwatch.web.limits import Limits, playground_config  # noqa: E402
from gradwatch.web.playground import Playground, PlaygroundFull  # noqa: E402
from gradwatch.web.presets import PRESETS  # noqa: E402

CHROMIUM = os.environ.get("GRADWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# seed 001's paralysis net, scaled down: 5 × 100 sigmoid, weights N(0, 1/300), SGD, batches in order
PARALYSIS = dict(depth=5, width=100, activation="sigmoid", init="normal", init_std=300 ** -0.5, optimizer="sgd",
                 lr=0.1, batch_size=64, shuffle=False, steps=12)
TINY = dict(depth=2, width=8, steps=6, epochs=2, batch_size=256)


class Server:
    """uvicorn in a thread on a free port (port 0: the OS picks one)."""

    def __init__(self, store: Path, limits: Limits | None = None):
        self.app = create_app(store, limits=limits or Limits())
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            self.thread.join(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def events(self, job_id: str, stop_after_steps: int | None = None) -> list[tuple[str, dict]]:
        """Read the job's event stream to its end (or, after ``stop_after_steps`` step events, stop the job and
        read on to the end)."""
        out, kind, steps = [], None, 0
        with self.http.stream("GET", f"/api/playground/{job_id}/events") as res:
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
            for line in res.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    out.append((kind, json.loads(line[6:])))
                    steps += kind == "step"
                    if stop_after_steps is not None and steps == stop_after_steps:
                        assert self.http.delete(f"/api/playground/{job_id}").status_code == 200
        return out

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(60)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A run store holding one finished lab run (and that run, as lab.train returned it)."""
    path = tmp_path_factory.mktemp("serve") / "runs.sqlite"
    run = lab.train(lab.Config(**TINY), store=path)
    return path, run


@pytest.fixture(scope="module")
def server(stored):
    s = Server(stored[0], Limits(max_steps=400))
    yield s
    s.close()


# ---- runs ----------------------------------------------------------------------------------------------------------

def test_runs_are_listed_and_filtered(server, stored):
    run = stored[1]
    listed = server.http.get("/api/runs").json()
    assert run.id in [r["id"] for r in listed]
    mine = next(r for r in listed if r["id"] == run.id)
    assert mine["status"] == "completed" and mine["config"]["depth"] == TINY["depth"]
    assert [r["id"] for r in server.http.get("/api/runs", params={"q": f"width={TINY['width']}"}).json()] == [run.id]
    assert server.http.get("/api/runs", params={"q": "width=999"}).json() == []
    assert server.http.get("/api/runs", params={"q": "width=32"}).json() == []  # not teacher_width=32
    assert server.http.get("/api/runs", params={"status": "failed"}).json() == []


def test_run_history_matches_the_training(server, stored):
    run = stored[1]
    served = server.http.get(f"/api/runs/{run.id}").json()
    h = served["history"]
    assert h["layers"] == run.history.layers == ["hidden1", "hidden2", "output"]
    assert h["steps"] == run.history.steps.tolist()
    expected = run.history.stat("grad_norm")  # the in-memory history, not read from the store
    assert torch.allclose(torch.tensor(h["stats"]["grad_norm"], dtype=torch.float64),
                          torch.from_numpy(expected), rtol=1e-6)
    assert [m["epoch"] for m in served["metrics"]] == [m["epoch"] for m in run.metrics]
    assert served["metrics"][-1]["test_loss"] == pytest.approx(run.metrics[-1]["test_loss"])
    assert served["diagnosis"] == str(run.diagnosis)
    thinned = server.http.get(f"/api/runs/{run.id}", params={"max_points": 2}).json()["history"]["steps"]
    assert thinned == [run.history.steps[0], run.history.steps[-1]]


def test_unknown_run_is_404_naming_the_id(server):
    res = server.http.get("/api/runs/no-such-run")
    assert res.status_code == 404 and res.json()["detail"]["value"] == "no-such-run"


def test_pages_and_the_charting_library_are_served(server):
    for path in ("/", "/playground", "/runs/x", "/static/vendor/uPlot.iife.min.js", "/static/vendor/uPlot.LICENSE"):
        assert server.http.get(path).status_code == 200, path


# ---- playground ----------------------------------------------------------------------------------------------------

def _autograd_layer_norms(cfg: lab.Config) -> list[float]:
    """‖∂L/∂(W, b)‖ per Linear layer at the first step, by autograd on the net lab.train builds (same seed), on
    the first batch of an unshuffled epoch."""
    from gradwatch.lab.models import build_model
    from gradwatch.lab.prepare import prepare, task_loss

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        d = prepare(cfg)
        model = build_model(cfg, d.n_in, d.n_out, image_shape=d.image_shape, per_step=d.per_step,
                            generator=torch.Generator().manual_seed(cfg.seed))
    x, y = d.x_train[:cfg.batch_size], d.y_train[:cfg.batch_size]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    grads = torch.autograd.grad(task_loss(model(x), y, cfg.loss_name).mean(),
                                [p for m in linears for p in (m.weight, m.bias)])
    return [float(torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum())) for gw, gb in zip(grads[::2], grads[1::2])]


def test_playground_streams_the_sigmoid_paralysis(server):
    res = server.http.post("/api/playground", json=PARALYSIS)
    assert res.status_code == 201, res.text
    events = server.events(res.json()["id"])
    steps = [e for kind, e in events if kind == "step"]
    assert len(steps) >= 10 and [e["step"] for e in steps] == list(range(1, PARALYSIS["steps"] + 1))
    assert events[-1][0] == "end" and events[-1][1]["state"] == "completed"
    first = steps[0]
    assert first["layers"] == [f"hidden{i}" for i in range(1, 6)] + ["output"]
    expected = _autograd_layer_norms(playground_config(PARALYSIS, Limits(), ("digits",)))
    assert first["grad_norm"] == pytest.approx(expected, rel=1e-4)
    for e in steps:  # paralysis all along: the first layer gets orders of magnitude less than the output
        assert e["grad_norm"][-1] > 100 * e["grad_norm"][0]
        assert e["grad_norm"] == sorted(e["grad_norm"])
    hist = next(e["histogram"] for e in steps if "histogram" in e)
    sizes = [64] + [PARALYSIS["width"]] * PARALYSIS["depth"] + [10]  # digits: 64 inputs, 10 classes
    outside = np.sum([hist["outside"][k] for k in hist["outside"]], axis=0)  # exact zeros (blank pixels) etc.
    assert [sum(c) + o for c, o in zip(hist["counts"], outside)] == pytest.approx(
        [(n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:])], rel=1e-6)
    assert len(hist["edges"]) == len(hist["counts"][0]) + 1
    prediction = next(e for kind, e in events if kind == "prediction")
    assert prediction["available"] and prediction["ratio_to_output"][0] < 1e-2  # the theory agrees in kind
    stored = server.http.get(f"/api/runs/{events[-1][1]['run_id']}").json()
    assert stored["status"] == "completed" and len(stored["history"]["steps"]) == PARALYSIS["steps"]


@pytest.mark.parametrize("body, param", [
    ({"depth": 0}, "depth"),
    ({"activation": "sigmoidd"}, "activation"),
    ({"depth": 10_000}, "depth"),
    ({"steps": 100_000}, "steps"),
    ({"colour": "red"}, "colour"),
    ({"data_dir": "/"}, "data_dir"),
    ({"model": "esn"}, "model"),
    ({"dataset": "adding", "model": "mlp", "residual": True, "layer_drop": 0.5, "norm": "none", "depth": 2,
      "width": 4, "seq_len": 1}, "seq_len"),
], ids=["depth-zero", "activation-typo", "depth-cap", "steps-cap", "unknown-key", "data-dir", "esn", "seq-len"])
def test_bad_config_is_422_naming_parameter_value_and_allowed(server, body, param):
    res = server.http.post("/api/playground", json=body)
    assert res.status_code == 422, res.text
    detail = res.json()["detail"]
    assert detail["parameter"] == param and detail["value"] == body[param] and detail["allowed"]


def test_playground_rejects_foreign_origins_hosts_and_large_bodies(server):
    res = server.http.post("/api/playground", json=TINY, headers={"Origin": "http://evil.example"})
    assert res.status_code == 403 and res.json()["detail"]["parameter"] == "Origin"
    assert server.http.get("/api/runs", headers={"Host": "evil.example"}).status_code == 400
    big = {"sizes": [1] * 20_000}
    assert server.http.post("/api/playground", json=big).status_code == 413


def test_stop_ends_the_run_as_interrupted(server):
    job = server.http.post("/api/playground", json={**PARALYSIS, "steps": 400}).json()["id"]
    events = server.events(job, stop_after_steps=3)
    assert events[-1][0] == "end" and events[-1][1]["state"] == "stopped"
    assert len([e for kind, e in events if kind == "step"]) < 400
    assert server.http.get(f"/api/playground/{job}").json()["state"] == "stopped"
    stored = server.http.get(f"/api/runs/{events[-1][1]['run_id']}").json()
    assert stored["status"] == "interrupted" and stored["error"] == "StopTraining"


def test_presets_are_valid_playground_configs():
    datasets = ("digits", "mnist1d", "adding")
    for p in PRESETS:
        for side in ("a", "b"):
            if p.get(side):
                assert playground_config(p[side], Limits(), datasets).steps <= Limits().max_steps


def test_lab_train_reports_progress_and_stops_on_request(tmp_path):
    seen = []

    def follow(p):
        seen.append((p.step, p.watcher.history.steps[-1], p.loss))
        if p.step == 3:
            raise lab.StopTraining

    with pytest.raises(lab.StopTraining):
        lab.train(lab.Config(**TINY), store=tmp_path / "runs.sqlite", on_progress=follow)
    assert [s for s, _, _ in seen] == [1, 2, 3] and [w for _, w, _ in seen] == [0, 1, 2]  # the watch counts from 0
    with RunStore(tmp_path / "runs.sqlite") as db:
        run = db.runs()[0]
    assert run["status"] == "interrupted" and run["error"] == "StopTraining"


def test_cli_serve_names_bad_ports_and_the_missing_extra(monkeypatch, capsys):
    from gradwatch.cli import main
    from gradwatch.web import app as web_app

    assert main(["serve", "--port", "99999", "--no-browser"]) == 2
    assert "--port 99999 is not allowed" in capsys.readouterr().err
    assert main(["serve", "--abandon-after", "0", "--no-browser"]) == 2
    assert "--abandon-after 0" in capsys.readouterr().err

    def missing():
        raise ImportError('gradwatch serve needs FastAPI and uvicorn: pip install "gradwatch[web]"')

    monkeypatch.setattr(web_app, "require_web", missing)
    assert main(["serve", "--no-browser"]) == 1
    assert 'pip install "gradwatch[web]"' in capsys.readouterr().err


# ---- the worker pool, without HTTP -----------------------------------------------------------------------------------

def test_queue_beyond_the_concurrency_limit_and_refusal_when_full(tmp_path):
    pg = Playground(tmp_path / "runs.sqlite", Limits(max_concurrent=1, max_queued=1))
    cfg = playground_config({**PARALYSIS, "steps": 5000}, Limits(), ("digits",))
    first, second = pg.submit(cfg), pg.submit(cfg)
    assert (first.state, second.state) == ("running", "queued")
    with pytest.raises(PlaygroundFull):
        pg.submit(cfg)
    pg.stop(second.id)
    assert second.state == "stopped" and second.events[-1]["type"] == "end"
    pg.shutdown()
    assert first.state == "stopped" and pg.running() == []


def test_a_crash_ends_the_run_cleanly(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(lab, "train", broken)
    pg = Playground(tmp_path / "runs.sqlite", Limits(), isolate=False)  # in a thread: the patch applies
    job = pg.submit(playground_config(TINY, Limits(), ("digits",)))
    assert job.done.wait(60)
    assert job.state == "failed" and job.error == "RuntimeError: injected fault"
    assert job.events[-1] == {"type": "end", "state": "failed", "run_id": None, "error": "RuntimeError: injected fault",
                              "diagnosis": None}
    pg.shutdown()
    assert pg.running() == []


def test_a_killed_training_process_ends_the_run_as_failed(tmp_path):
    """Injected fault: the training process is killed mid-run; the run ends as failed, the server goes on."""
    import multiprocessing
    import signal

    pg = Playground(tmp_path / "runs.sqlite", Limits())
    job = pg.submit(playground_config(LONG, Limits(), ("digits",)))
    while not any(e["type"] == "step" for e in job.events):
        assert not job.done.wait(0.05), job.error
    child = next(p for p in multiprocessing.active_children() if p.name == f"gradwatch-training-{job.id}")
    os.kill(child.pid, signal.SIGKILL)
    assert job.done.wait(60)
    assert job.state == "failed" and str(-signal.SIGKILL) in job.error
    assert pg.submit(playground_config(TINY, Limits(), ("digits",))).done.wait(60)  # the next run trains
    pg.shutdown()


def test_shutdown_stops_trainings_and_leaves_nothing_running(tmp_path):
    store = tmp_path / "runs.sqlite"
    s = Server(store)
    try:
        job = s.http.post("/api/playground", json={**PARALYSIS, "steps": 5000}).json()["id"]
        with s.http.stream("GET", f"/api/playground/{job}/events") as res:
            next(line for line in res.iter_lines() if line == "event: step")
    finally:
        s.close()
    assert not s.thread.is_alive()
    assert s.app.state.playground.running() == []
    assert f"gradwatch-playground-{job}" not in [t.name for t in threading.enumerate()]
    assert s.app.state.playground.get(job).state == "stopped"
    with RunStore(store) as db:
        assert [r["status"] for r in db.runs()] == ["interrupted"]


# ---- the pages in a real browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set GRADWATCH_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_browser_playground_starts_a_run_and_its_chart_updates(server, browser):
    _end_new_jobs(server, set())  # the server's training slots free for this run, whatever ran before
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/playground?depth=4&width=32&activation=sigmoid&steps=200")
    assert page.input_value("#f-activation") == "sigmoid"  # the setup came from the URL
    page.click("#start")
    page.wait_for_function("() => Number(document.getElementById('profile')?.dataset.steps) >= 2", timeout=60_000)
    seen = int(page.get_attribute("#profile", "data-steps"))
    page.wait_for_function(f"() => Number(document.getElementById('profile')?.dataset.steps) > {seen}",
                           timeout=60_000)
    assert page.locator("#profile canvas").count() >= 1
    page.click("#stop")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('stopped') || "
                           "document.getElementById('status').textContent.includes('completed')", timeout=60_000)
    assert errors == []
    page.close()


def test_browser_run_page_renders_its_heatmap(server, stored, browser):
    run = stored[1]
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.url}/runs/{run.id}")
    page.wait_for_function("() => Number(document.getElementById('heatmap')?.dataset.drawn) > 0", timeout=30_000)
    assert int(page.get_attribute("#heatmap", "data-drawn")) == len(run.history.steps)
    assert page.locator("#curves canvas").count() >= 1
    assert errors == []
    page.close()


# ---- hostile and careless requests -----------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


HOSTILE = [
    (b'{"depth": 1000000000}', "depth"),
    (b'{"depth": 100000000}', "depth"),
    (b'{"width": 1000000000, "depth": 2}', "width"),
    (b'{"sizes": [1000000000, 1000000000]}', "sizes"),
    (b'{"depth": ' + b"9" * 400 + b"}", "depth"),
    (b'{"seed": ' + b"9" * 400 + b"}", "seed"),
    (b"[" * 8000 + b"]" * 8000, "body"),
    (b'{"depth": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body"),
    (b'{"sizes": [[[1]]]}', "sizes"),
    (b'{"lr": NaN}', "lr"),
    (b'{"depth": 1e308}', "depth"),
    (b'{"activation": "' + b"x" * 4000 + b'"}', "activation"),
    (b'{"batch_size": 4096, "depth": 64, "width": 1024}', "batch_size"),
    (b"[1, 2]", "config"),
    (b"\xff\xfe", "body"),
]


@pytest.mark.parametrize("body, param", HOSTILE, ids=["depth-1e9", "depth-1e8", "width-1e9", "sizes-1e9",
                                                      "400-digit-depth", "400-digit-seed", "8000-deep-list",
                                                      "5000-deep-value", "nested-sizes", "nan", "depth-1e308",
                                                      "long-text", "compute", "not-an-object", "not-utf8"])
def test_hostile_body_is_a_json_422_naming_the_field(server, body, param):
    before = _peak_rss_mb()
    res = server.http.post("/api/playground", content=body, headers={"Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    assert res.headers["content-type"] == "application/json"
    detail = res.json()["detail"]
    assert detail["parameter"] == param and detail["allowed"] and len(res.content) < 2000
    assert _peak_rss_mb() - before < 200  # the peak memory of the whole process (server and test) grew < 200 MB


def test_other_requests_keep_answering_while_hostile_ones_arrive(server):
    """Hostile bodies from 4 threads at once; meanwhile the options page answers every time (a liveness check
    with a generous timeout: the server is never frozen by validation)."""
    from concurrent.futures import ThreadPoolExecutor

    def hostile(i):
        body, _ = HOSTILE[i % len(HOSTILE)]
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return c.post("/api/playground", content=body, headers={"Content-Type": "application/json"}).status_code

    with ThreadPoolExecutor(4) as pool:
        refused = pool.map(hostile, range(24))
        with httpx.Client(base_url=server.url, timeout=10) as c:
            answers = [c.get("/api/playground/options").status_code for _ in range(10)]
        assert set(refused) == {422}
    assert answers == [200] * 10


def test_chunked_body_is_refused_while_read(server):
    """A chunked body without a length: the server answers 413 after the cap, long before 200 MB are sent."""
    import select
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    chunk = b"x" * 65536
    sent, answer = 0, b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /api/playground HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 200 * 2**20 and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(30)
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(payload)["detail"]["parameter"] == "body"
    assert sent < 200 * 2**20


def test_declared_length_over_the_cap_is_refused_before_reading(server):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /api/playground HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999999\r\n\r\n{}")
        answer = b""
        while not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and json.loads(payload)["detail"]["parameter"] == "body"


def test_compute_estimate_counts_the_weights_of_the_built_net():
    """Closed-form cost against the net lab.train builds: multiply-adds per example = its parameter count."""
    from gradwatch.lab.models import build_model
    from gradwatch.lab.prepare import prepare
    from gradwatch.web.limits import training_flops

    for body in ({"depth": 3, "width": 40}, {"sizes": [30, 20], "batch_size": 16}):
        cfg = playground_config({**body, "steps": 5}, Limits(), ("digits",))
        d = prepare(cfg)
        model = build_model(cfg, d.n_in, d.n_out, image_shape=d.image_shape, per_step=d.per_step,
                            generator=torch.Generator().manual_seed(0))
        n = sum(p.numel() for p in model.parameters())
        step, evaluation, _ = training_flops(cfg)
        assert step == 6 * n * cfg.batch_size
        assert evaluation == 2 * n * 1797  # every digit, training and test split
    with pytest.raises(ConfigError, match="flops per step"):
        playground_config({"depth": 64, "width": 1024}, Limits(), ("digits",))


# ---- headers, hosts, docs ------------------------------------------------------------------------------------------

def test_every_answer_forbids_foreign_framing_and_sniffing(server):
    for path in ("/", "/playground", "/api/docs", "/api/runs", "/static/common.js", "/api/runs/none"):
        h = server.http.get(path).headers
        assert h["x-frame-options"] == "SAMEORIGIN", path
        assert "frame-ancestors 'self'" in h["content-security-policy"], path
        assert h["x-content-type-options"] == "nosniff", path


def test_api_docs_come_from_the_package(server):
    import re

    page = server.http.get("/api/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith(("/", "data:")) for s in sources), sources  # nothing from another host
    assert server.http.get("/api/openapi.json").json()["paths"]["/api/runs/{run_id}"]["delete"]


@pytest.mark.parametrize("host, status", [("127.0.0.1:1", 200), ("localhost", 200), ("[::1]:8765", 200),
                                          ("[::2]", 400), ("evil.example", 400), ("127.0.0.1.evil.example", 400),
                                          ("", 400)])
def test_host_check_covers_every_loopback_name(server, host, status):
    res = server.http.get("/api/runs", headers={"Host": host})
    assert res.status_code == status
    if status == 400:
        assert res.json()["detail"]["parameter"] == "Host"


def test_cli_serve_on_ipv6_loopback_keeps_the_host_check(monkeypatch):
    from gradwatch import web
    from gradwatch.cli import main
    from gradwatch.web import create_app as real

    seen = {}

    def capture(store, **options):
        seen.update(options)
        return real(store, **options)

    monkeypatch.setattr(web, "create_app", capture)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    assert main(["serve", "--host", "::1", "--no-browser", "--abandon-after", "2"]) == 0
    assert "*" not in seen["hosts"] and "[::1]" in seen["hosts"]
    assert seen["limits"].abandon_after_s == 2


# ---- runs that outlive their client ---------------------------------------------------------------------------------

@pytest.fixture()
def short_grace(tmp_path):
    s = Server(tmp_path / "runs.sqlite", Limits(abandon_after_s=1.5))
    yield s
    s.close()


LONG = {**PARALYSIS, "steps": 5000, "depth": 2, "width": 16}


def _wait_state(server, job, states, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout  # a liveness bound, not a measurement
    while time.monotonic() < deadline:
        summary = server.http.get(f"/api/playground/{job}").json()
        if summary["state"] in states:
            return summary
        time.sleep(0.05)
    raise AssertionError(f"job {job} never reached {states}")


def test_a_run_whose_client_dropped_its_stream_is_stopped(short_grace):
    job = short_grace.http.post("/api/playground", json=LONG).json()["id"]
    with short_grace.http.stream("GET", f"/api/playground/{job}/events") as res:
        lines = res.iter_lines()  # kept: a dropped iterator would close the stream
        next(line for line in lines if line == "event: step")
        assert short_grace.http.get(f"/api/playground/{job}").json()["watchers"] == 1
    summary = _wait_state(short_grace, job, ("stopped", "completed"))
    assert summary["state"] == "stopped" and "no client watched it" in summary["error"]
    with RunStore(short_grace.app.state.store_path) as db:
        assert db.get(summary["run_id"])["status"] == "interrupted"


def test_a_detached_run_outlives_its_client_until_stopped(short_grace):
    job = short_grace.http.post("/api/playground", params={"detached": True}, json=LONG).json()["id"]
    first = _wait_state(short_grace, job, ("running",))
    assert first["detached"] and first["watchers"] == 0
    # the reaper has had many grace periods: wait until the run has trained well past one
    import time

    time.sleep(2 * short_grace.app.state.limits.abandon_after_s)
    assert short_grace.http.get(f"/api/playground/{job}").json()["state"] == "running"
    assert short_grace.http.delete(f"/api/playground/{job}").json()["stopping"] is True
    assert _wait_state(short_grace, job, ("stopped",))["error"] == "stopped on request"


def test_runs_per_client_are_limited(tmp_path):
    pg = Playground(tmp_path / "runs.sqlite", Limits(max_concurrent=0, max_per_client=2, max_queued=8))
    cfg = playground_config(TINY, Limits(), ("digits",))
    pg.submit(cfg, client="10.0.0.1"), pg.submit(cfg, client="10.0.0.1")
    with pytest.raises(PlaygroundFull, match="at most 2"):
        pg.submit(cfg, client="10.0.0.1")
    assert pg.submit(cfg, client="10.0.0.2").state == "queued"  # another client is not affected
    pg.shutdown()


# ---- diverged runs, delete ------------------------------------------------------------------------------------------

EXPLODING = dict(depth=4, width=64, activation="relu", init="normal", init_std=1.0, optimizer="sgd", lr=10.0,
                 batch_size=64, steps=20, epochs=2)


@pytest.fixture(scope="module")
def diverged(server):
    job = server.http.post("/api/playground", json=EXPLODING).json()["id"]
    return next(e for kind, e in server.events(job) if kind == "end")


def test_a_diverged_run_is_shown_as_diverged(server, diverged):
    assert diverged["state"] == "diverged" and diverged["error"]
    listed = {r["id"]: r for r in server.http.get("/api/runs", params={"status": "diverged"}).json()}
    assert diverged["run_id"] in listed and listed[diverged["run_id"]]["outcome"] == "diverged"
    stored = server.http.get(f"/api/runs/{diverged['run_id']}").json()
    assert stored["outcome"] == "diverged"
    assert stored["status"] == "diverged" or stored["summary"]["loss"] is None or stored["summary"]["loss"] >= 1e6


@pytest.mark.parametrize("status, summary, shown", [
    ("completed", {"loss": 8.8e31}, "diverged"), ("completed", {"loss": None}, "diverged"),
    ("completed", {"loss": 0.3}, "completed"), ("completed", {}, "completed"), ("diverged", {"loss": 1.0}, "diverged"),
    ("interrupted", {"loss": 1e40}, "interrupted")], ids=["huge", "nan", "fine", "watched", "lab", "interrupted"])
def test_outcome_of_a_stored_run(status, summary, shown):
    from gradwatch.web.outcome import outcome

    assert outcome(status, summary) == shown


def test_delete_a_stored_run_checks_origin_and_ids(tmp_path):
    store = tmp_path / "runs.sqlite"
    run = lab.train(lab.Config(**TINY), store=store)
    s = Server(store)
    try:
        foreign = s.http.delete(f"/api/runs/{run.id}", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and s.http.get(f"/api/runs/{run.id}").status_code == 200
        assert s.http.delete(f"/api/runs/{run.id[:6]}").status_code == 404  # a prefix deletes nothing
        own = s.http.delete(f"/api/runs/{run.id}", headers={"Origin": s.url})
        assert own.status_code == 200 and own.json() == {"id": run.id, "deleted": True}
        assert s.http.get(f"/api/runs/{run.id}").status_code == 404
        with RunStore(store) as db:
            assert db.runs() == []  # read back from the file
    finally:
        s.close()


# ---- the whole API, fuzzed from its schema -----------------------------------------------------------------------

def test_schemathesis_finds_no_server_error_and_every_answer_matches_the_schema(stored):
    schemathesis = pytest.importorskip("schemathesis", reason="the schema fuzzing needs schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    # no training ever starts (concurrency 0), a few queue and the rest are refused with 429
    app = create_app(stored[0], limits=Limits(max_concurrent=0, max_queued=2, max_per_client=2),
                     hosts=("testserver",))  # the in-process client's host name
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures = []
    from schemathesis.generation import GenerationMode

    answered = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):  # valid requests, then invalid ones

            @settings(max_examples=20, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                try:
                    answered.append(case.call_and_validate(checks=checks).status_code)
                except Exception as exc:  # noqa: BLE001 - collect every failure, then report all at once
                    failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:300]}")

            try:
                run()
            except Unsatisfiable:  # an operation without parameters has no invalid request
                assert mode == GenerationMode.NEGATIVE
    app.state.playground.shutdown()
    assert failures == []
    assert len(answered) > 100 and {200, 201, 404, 422, 429} <= set(answered)  # it did reach every kind of answer


# ---- the teaching path in a real browser ----------------------------------------------------------------------------

def _new_jobs(server, before: set[str], n: int, timeout: float = 120.0) -> list[dict]:
    import time

    deadline = time.monotonic() + timeout  # a liveness bound
    while time.monotonic() < deadline:
        jobs = [j for j in server.http.get("/api/playground").json() if j["id"] not in before]
        if len(jobs) >= n:
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"the page started {len(jobs)} runs, not {n}")


def _wait_ended(server, before: set[str], timeout: float = 120.0) -> None:
    """Wait until every run not in ``before`` has ended (a liveness bound for a loaded machine)."""
    _end_new_jobs(server, before, timeout, stop=False)


def _end_new_jobs(server, before: set[str], timeout: float = 120.0, *, stop: bool = True) -> None:
    """Stop the runs a test started on the shared server (every job not in ``before``; only wait with
    ``stop=False``) and wait until they have ended: a click on Stop can come before the page knows its runs' ids,
    and runs left going would hold the server's training slots for the next test."""
    import time

    deadline = time.monotonic() + timeout  # a liveness bound
    while True:
        active = [j for j in server.http.get("/api/playground").json()
                  if j["id"] not in before and j["state"] in ("queued", "running")]
        if not active:
            return
        assert time.monotonic() < deadline, f"runs still active: {[j['id'] for j in active]}"
        for j in active if stop else ():
            server.http.delete(f"/api/playground/{j['id']}")
        time.sleep(0.1)


def _page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.goto(url)
    return page, errors


def test_browser_rnn_vs_lstm_preset_trains_a_tanh_rnn_on_the_lstms_test_set(server, browser):
    before = {j["id"] for j in server.http.get("/api/playground").json()}
    page, errors = _page(browser, server.url + "/playground")
    page.click("button[data-name=rnn-vs-lstm]")
    jobs = _new_jobs(server, before, 2)
    page.click("#stop")
    a, b = sorted((j["config"] for j in jobs), key=lambda c: c["model"] != "rnn")
    preset = next(p for p in PRESETS if p["name"] == "rnn-vs-lstm")
    assert (a["model"], a["activation"], a["init"]) == ("rnn", "tanh", "xavier_uniform")
    assert b["model"] == "lstm"
    for key in ("n_train", "n_test", "seq_len", "steps", "lr", "batch_size"):  # the same data and budget
        assert a[key] == b[key] == preset["a"][key], key
    assert errors == []
    page.close()
    _end_new_jobs(server, before)


def test_browser_shared_link_with_b_trains_both_runs(server, browser):
    before = {j["id"] for j in server.http.get("/api/playground").json()}
    page, errors = _page(browser, server.url + "/playground?depth=2&width=16&activation=sigmoid&steps=300"
                                               "&b=activation:relu,init:he_normal")
    page.click("#start")
    jobs = _new_jobs(server, before, 2)
    page.click("#stop")
    _wait_ended(server, before)  # Stop ends both runs, even one whose start was still on its way
    a, b = sorted((j["config"] for j in jobs), key=lambda c: c["activation"] != "sigmoid")
    assert (a["activation"], b["activation"], b["init"]) == ("sigmoid", "relu", "he_normal")
    assert a["depth"] == b["depth"] == 2 and a["width"] == b["width"] == 16 and a["steps"] == b["steps"] == 300
    assert "b=activation" in page.url  # the link still holds both runs
    assert errors == []
    page.close()
    _end_new_jobs(server, before)


def test_browser_diverged_run_is_shown_as_diverged(server, browser):
    _end_new_jobs(server, set())  # the server's training slots free for this run, whatever ran before
    query = "&".join(f"{k}={v}" for k, v in EXPLODING.items() if k != "epochs")
    page, errors = _page(browser, f"{server.url}/playground?{query}")
    page.click("#start")
    page.wait_for_function("() => { const s = document.getElementById('status-A'); "
                           "return s && ['diverged', 'completed', 'failed'].includes(s.dataset.state); }",
                           timeout=120_000)  # a liveness bound for a loaded machine
    assert page.get_attribute("#status-A", "data-state") == "diverged"
    assert page.locator("#status-A .badge.diverged").count() == 1
    page.goto(server.url + "/?status=diverged")
    page.wait_for_selector("#rows tr")
    outcomes = page.eval_on_selector_all("#rows tr", "rows => rows.map(r => r.dataset.outcome)")
    assert outcomes and set(outcomes) == {"diverged"}
    assert errors == []
    page.close()


def test_browser_compare_and_delete_stored_runs(tmp_path, browser):
    store = tmp_path / "runs.sqlite"
    runs = [lab.train(lab.Config(**TINY, activation=act), store=store) for act in ("sigmoid", "relu")]
    _watched_run_in(store)
    s = Server(store)
    try:
        page, errors = _page(browser, s.url + "/")
        page.wait_for_selector("#rows tr")
        text = page.inner_text("#rows")
        assert "null" not in text and "watched Sequential" in text  # a watched run is named, not null×null
        for run in runs:
            page.click(f"#rows tr[data-id='{run.id}'] input.pick")
        page.click("#compare")
        page.wait_for_function("() => document.body?.dataset.ready === '1'", timeout=30_000)
        assert {page.inner_text("#name-a"), page.inner_text("#name-b")} == {r.id for r in runs}
        assert "activation" in page.inner_text("#diff")
        page.select_option("#stat", "update_ratio")
        assert "update ratio" in page.inner_text(".stat-label")  # the label follows the statistic
        # a run page's labels follow the statistic too
        page.goto(f"{s.url}/runs/{runs[0].id}")
        page.wait_for_function("() => Number(document.getElementById('heatmap')?.dataset.drawn) > 0", timeout=30_000)
        page.select_option("#stat", "update_ratio")
        assert all("update ratio" in t for t in page.locator(".stat-label").all_inner_texts())
        # delete from the list
        page.goto(s.url + "/")
        page.wait_for_selector(f"#rows tr[data-id='{runs[1].id}']")
        page.click(f"#rows tr[data-id='{runs[1].id}'] button.delete")
        page.wait_for_selector(f"#rows tr[data-id='{runs[1].id}']", state="detached", timeout=30_000)
        with RunStore(store) as db:
            assert runs[1].id not in [r["id"] for r in db.runs()] and runs[0].id in [r["id"] for r in db.runs()]
        assert errors == []
        page.close()
    finally:
        s.close()


def _watched_run_in(store: Path) -> None:
    import gradwatch as gw

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with gw.watch(model, opt, store=store, name="mine"):
        for _ in range(3):
            opt.zero_grad()
            model(torch.randn(16, 4)).pow(2).mean().backward()
            opt.step()

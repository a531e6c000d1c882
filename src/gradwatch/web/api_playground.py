"""The playground's API: start a training (``POST /api/playground``), follow it (``GET …/{id}/events``, a
server-sent-event stream), stop it (``DELETE …/{id}``), and what the page needs to build its controls
(``GET /api/playground/options``: every lab.Config field with its choices and caps, the datasets present here,
the presets)."""

from __future__ import annotations

import asyncio
import json
import typing
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gradwatch.web.encode import clean
from gradwatch.web.limits import DEFAULT_STEPS, FORBIDDEN, PLAYGROUND_MODELS, playground_config
from gradwatch.web.playground import FINISHED, Job, PlaygroundFull
from gradwatch.web.presets import PRESETS

router = APIRouter(prefix="/api/playground", tags=["playground"])
POLL_S = 0.1          # how often a stream looks for new events
KEEPALIVE_S = 15.0    # a comment line this often keeps proxies from closing an idle stream


def _job(request: Request, job_id: str) -> Job:
    job = request.app.state.playground.get(job_id)
    if job is None:
        raise HTTPException(404, {"parameter": "id", "value": job_id,
                                  "allowed": "no playground run has this id (finished runs are forgotten after a "
                                             "while; their stored copy is under /api/runs)"})
    return job


@router.post("", status_code=201)
async def start(request: Request) -> JSONResponse:
    """Start a training of the posted lab config (JSON object of ``lab.Config`` fields); answers ``{"id"}``."""
    limits = request.app.state.limits
    body = await request.body()
    if len(body) > limits.max_body_bytes:
        raise HTTPException(413, {"parameter": "body", "value": f"{len(body)} bytes",
                                  "allowed": f"at most {limits.max_body_bytes} bytes"})
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(422, {"parameter": "body", "value": body[:80].decode("utf-8", "replace"),
                                  "allowed": f"a JSON object of lab.Config fields ({exc})"}) from None
    cfg = playground_config(data, limits, request.app.state.datasets)  # ConfigError → 422 (see app.py)
    try:
        job = request.app.state.playground.submit(cfg)
    except PlaygroundFull as exc:
        raise HTTPException(429, {"parameter": "playground", "value": "full", "allowed": str(exc)}) from None
    return JSONResponse(clean({"id": job.id, "state": job.state, "config": cfg.to_dict()}), status_code=201)


@router.get("")
def list_jobs(request: Request) -> list[dict[str, Any]]:
    """The playground runs this server remembers, oldest first."""
    return clean([j.summary() for j in request.app.state.playground.jobs()])


def _field_info(name: str, field: Any, limits: Any, datasets: tuple[str, ...]) -> dict[str, Any]:
    """Type (bool, int, float, str or list), default, choices (None: free), cap and description of a field."""
    from gradwatch.lab.config import LAB_INITS
    from gradwatch.nn.activations import ACTIVATIONS

    args = [a for a in typing.get_args(field.annotation) if a is not type(None)] or [field.annotation]
    literal = next((a for a in [field.annotation, *args] if typing.get_origin(a) is typing.Literal), None)
    named = {"activation": list(ACTIVATIONS), "init": list(LAB_INITS), "dataset": list(datasets),
             "recurrent_init": [None] + [i for i in LAB_INITS if i != "lsuv"], "model": list(PLAYGROUND_MODELS)}
    choices = named.get(name) or (list(typing.get_args(literal)) if literal is not None else None)
    if literal is not None:
        kind = type(typing.get_args(literal)[0]).__name__
    else:
        kind = next((t.__name__ for t in (bool, int, float, str) if t in args), "list")
    caps = {"depth": limits.max_depth, "width": limits.max_width, "steps": limits.max_steps, **limits.field_caps}
    return {"type": kind, "default": DEFAULT_STEPS if name == "steps" else field.default, "choices": choices,
            "max": caps.get(name), "description": field.description}


@router.get("/options")
def options(request: Request) -> dict[str, Any]:
    """Every lab.Config field a request may set (type, default, choices, cap, description), the datasets
    available on this server, the limits and the presets."""
    from gradwatch.lab.config import Config

    limits, datasets = request.app.state.limits, request.app.state.datasets
    fields = {n: _field_info(n, f, limits, datasets) for n, f in Config.model_fields.items() if n not in FORBIDDEN}
    return clean({"fields": fields, "datasets": list(datasets), "presets": PRESETS,
                  "limits": {"max_depth": limits.max_depth, "max_width": limits.max_width,
                             "max_steps": limits.max_steps, "max_concurrent": limits.max_concurrent,
                             "max_queued": limits.max_queued, "max_body_bytes": limits.max_body_bytes}})


@router.get("/{job_id}")
def status(request: Request, job_id: str) -> dict[str, Any]:
    """State (queued, running, completed, stopped, failed), the stored run's id once it ends, the error."""
    return clean(_job(request, job_id).summary())


@router.get("/{job_id}/events")
async def events(request: Request, job_id: str) -> StreamingResponse:
    """A server-sent-event stream of the run: ``prediction``, ``step`` ({"step", "epoch", "loss", "layers",
    "grad_norm", "relative_grad", "update_ratio", "saturation"}), ``epoch`` (the epoch's metrics) and ``end``
    ({"state", "run_id", "error", "diagnosis"}). Each event's ``id`` is its index; a reconnecting client
    (``Last-Event-ID``) resumes after it."""
    job = _job(request, job_id)
    try:
        start = int(request.headers.get("last-event-id", "-1")) + 1
    except ValueError:
        start = 0

    async def stream():
        i, idle = start, 0.0
        yield "retry: 1000\n\n"
        while True:
            new = job.events[i:]
            for ev in new:
                yield f"id: {i}\nevent: {ev['type']}\ndata: {json.dumps(clean(ev), allow_nan=False)}\n\n"
                i += 1
            if job.state in FINISHED and i >= len(job.events):
                return
            if await request.is_disconnected():
                return
            idle = 0.0 if new else idle + POLL_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.delete("/{job_id}")
def stop(request: Request, job_id: str) -> dict[str, Any]:
    """Stop the run: a queued run never starts; a running one ends at its next step (stored as interrupted)."""
    _job(request, job_id)
    job = request.app.state.playground.stop(job_id)
    return clean({"id": job.id, "state": job.state, "stopping": job.state not in FINISHED})

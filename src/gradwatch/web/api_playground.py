"""The playground's API: start a training (``POST /api/playground``), follow it (``GET …/{id}/events``, a
server-sent-event stream), stop it (``DELETE …/{id}``), and what the page needs to build its controls
(``GET /api/playground/options``: every lab.Config field with its choices and caps, the datasets present here,
the presets)."""

from __future__ import annotations

import asyncio
import json
import typing
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from gradwatch.web.answers import errors
from gradwatch.web.encode import clean
from gradwatch.web.limits import (
    DEFAULT_STEPS,
    FORBIDDEN,
    PLAYGROUND_MODELS,
    playground_config,
)
from gradwatch.web.playground import FINISHED, Job, PlaygroundFull
from gradwatch.web.presets import PRESETS

router = APIRouter(prefix="/api/playground", tags=["playground"])
POLL_S = 0.1  # how often a stream looks for new events
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream


def _job(request: Request, job_id: str) -> Job:
    job = request.app.state.playground.get(job_id)
    if job is None:
        raise HTTPException(
            404,
            {
                "parameter": "id",
                "value": job_id,
                "allowed": "no playground run has this id (finished runs are forgotten after a "
                "while; their stored copy is under /api/runs)",
            },
        )
    return job


def _parse(body: bytes) -> Any:
    """The body as JSON; a malformed, too deeply nested or too long-numbered body is a 422 naming ``body``."""
    try:
        return json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int digits, nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise HTTPException(
            422,
            {
                "parameter": "body",
                "value": body[:80].decode("utf-8", "replace"),
                "allowed": f"a JSON object of lab.Config fields ({reason})",
            },
        ) from None


def _validated(body: bytes, limits: Any, datasets: tuple[str, ...]) -> Any:
    return playground_config(_parse(body), limits, datasets)  # ConfigError → 422 (see app.py)


START_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "lab.Config fields (see GET /api/playground/options)",
                "additionalProperties": True,
                "example": {"depth": 5, "width": 100, "activation": "sigmoid", "steps": 50},
            }
        }
    },
    "required": False,
}


@router.post("", status_code=201, openapi_extra={"requestBody": START_BODY}, responses=errors(403, 413, 429))
async def start(
    request: Request, detached: bool = Query(False, description="keep training when no client watches its stream")
) -> JSONResponse:
    """Start a training of the posted lab config (JSON object of ``lab.Config`` fields); answers ``{"id"}``.
    The run is stopped when no client has read its event stream for the server's grace period (30 s by
    default) unless ``detached``. 429 when the queue, or this client's share of it, is full."""
    limits = request.app.state.limits
    body = await request.body()  # capped while read (see guard.py)
    cfg = await run_in_threadpool(_validated, body, limits, request.app.state.datasets)
    client = request.client.host if request.client else None
    try:
        job = request.app.state.playground.submit(cfg, client=client, detached=detached)
    except PlaygroundFull as exc:
        raise HTTPException(429, {"parameter": "playground", "value": "full", "allowed": str(exc)}) from None
    return JSONResponse(
        clean({"id": job.id, "state": job.state, "detached": job.detached, "config": cfg.to_dict()}), status_code=201
    )


@router.get("", responses=errors())
def list_jobs(request: Request) -> list[dict[str, Any]]:
    """The playground runs this server remembers, oldest first."""
    return clean([j.summary() for j in request.app.state.playground.jobs()])


def _field_info(name: str, field: Any, limits: Any, datasets: tuple[str, ...]) -> dict[str, Any]:
    """Type (bool, int, float, str or list), default, choices (None: free), cap and description of a field."""
    from gradwatch.lab.config import LAB_INITS
    from gradwatch.nn.activations import ACTIVATIONS

    args = [a for a in typing.get_args(field.annotation) if a is not type(None)] or [field.annotation]
    literal = next((a for a in [field.annotation, *args] if typing.get_origin(a) is typing.Literal), None)
    named = {
        "activation": list(ACTIVATIONS),
        "init": list(LAB_INITS),
        "dataset": list(datasets),
        "recurrent_init": [None] + [i for i in LAB_INITS if i != "lsuv"],
        "model": list(PLAYGROUND_MODELS),
    }
    choices = named.get(name) or (list(typing.get_args(literal)) if literal is not None else None)
    if literal is not None:
        kind = type(typing.get_args(literal)[0]).__name__
    else:
        kind = next((t.__name__ for t in (bool, int, float, str) if t in args), "list")
    caps = {"depth": limits.max_depth, "width": limits.max_width, "steps": limits.max_steps, **limits.field_caps}
    return {
        "type": kind,
        "default": DEFAULT_STEPS if name == "steps" else field.default,
        "choices": choices,
        "max": caps.get(name),
        "description": field.description,
    }


@router.get("/options", responses=errors())
def options(request: Request) -> dict[str, Any]:
    """Every lab.Config field a request may set (type, default, choices, cap, description), the datasets
    available on this server, the limits and the presets."""
    from gradwatch.lab.config import Config

    limits, datasets = request.app.state.limits, request.app.state.datasets
    fields = {n: _field_info(n, f, limits, datasets) for n, f in Config.model_fields.items() if n not in FORBIDDEN}
    return clean(
        {
            "fields": fields,
            "datasets": list(datasets),
            "presets": PRESETS,
            "limits": {
                "max_depth": limits.max_depth,
                "max_width": limits.max_width,
                "max_steps": limits.max_steps,
                "max_concurrent": limits.max_concurrent,
                "max_queued": limits.max_queued,
                "max_body_bytes": limits.max_body_bytes,
            },
        }
    )


@router.get("/{job_id}", responses=errors(404))
def status(request: Request, job_id: str) -> dict[str, Any]:
    """State (queued, running, completed, stopped, failed), the stored run's id once it ends, the error."""
    return clean(_job(request, job_id).summary())


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        **errors(404),
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "server-sent events"},
    },
)
async def events(request: Request, job_id: str) -> StreamingResponse:
    """A server-sent-event stream of the run: ``prediction``, ``step`` ({"step", "epoch", "loss", "layers",
    "grad_norm", "relative_grad", "update_ratio", "saturation"}), ``epoch`` (the epoch's metrics) and ``end``
    ({"state", "run_id", "error", "diagnosis"}). Each event's ``id`` is its index; a reconnecting client
    (``Last-Event-ID``) resumes after it."""
    job = _job(request, job_id)
    try:
        start = min(max(int(request.headers.get("last-event-id", "-1")[:20]) + 1, 0), len(job.encoded))
    except ValueError:
        start = 0
    playground = request.app.state.playground

    async def stream():
        with playground.watching(job):
            async for chunk in _follow(job, start, request):
                yield chunk

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def _follow(job: Job, start: int, request: Request):
    i, idle = start, 0.0
    yield "retry: 1000\n\n"
    while True:
        new = job.encoded[i:]
        if new:  # one write per batch: a joining client gets the run so far at once
            yield "".join(new)
            i += len(new)
        if job.state in FINISHED and i >= len(job.encoded):
            return
        if await request.is_disconnected():
            return
        idle = 0.0 if new else idle + POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_S)


@router.delete("/{job_id}", responses=errors(403, 404))
def stop(request: Request, job_id: str) -> dict[str, Any]:
    """Stop the run: a queued run never starts; a running one ends at its next step (stored as interrupted)."""
    _job(request, job_id)
    job = request.app.state.playground.stop(job_id, "stopped on request")
    return clean({"id": job.id, "state": job.state, "stopping": job.state not in FINISHED})

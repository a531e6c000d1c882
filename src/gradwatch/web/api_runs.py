"""``GET /api/runs`` (the stored runs, filterable), ``GET /api/runs/{id}`` (one run: config, metrics, the watch
history as layers × steps per statistic, the diagnosis) and ``DELETE /api/runs/{id}``. Each run carries an
``outcome``: its status, or ``diverged`` for a run whose loss blew up (see :mod:`gradwatch.web.outcome`).
Every request opens the run store afresh, so runs that
another process is training show their new rows on the next request (the store is SQLite in WAL mode)."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request

from gradwatch.errors import ConfigError, PathError
from gradwatch.web.answers import errors
from gradwatch.web.encode import clean
from gradwatch.web.outcome import outcome

router = APIRouter(prefix="/api/runs", tags=["runs"])
MAX_POINTS = 400  # default number of steps a run's history is thinned to (the last step always kept)
MAX_STEP = 2**63 - 1
LIST_KEYS = (
    "kind",
    "name",
    "model",
    "dataset",
    "depth",
    "width",
    "sizes",
    "activation",
    "init",
    "norm",
    "residual",
    "optimizer",
    "lr",
    "batch_size",
    "steps",
    "epochs",
)


def _store(request: Request):
    from gradwatch.store import RunStore

    path = request.app.state.store_path
    if not path.is_file():
        return None
    try:
        return RunStore(path)
    except PathError as exc:  # damaged since the server started, or unreadable for longer than the retries
        raise HTTPException(
            503, {"parameter": "store", "value": exc.path, "allowed": f"a readable run store ({exc.problem})"}
        ) from None


def _matches(run: dict[str, Any], status: str | None, model: str | None, dataset: str | None, q: str | None) -> bool:
    cfg = run["config"]
    if status and status not in (run["status"], run["outcome"]) or model and cfg.get("model") != model:
        return False
    if dataset and cfg.get("dataset") != dataset:
        return False
    if q:
        tokens = [run["id"], run["status"], run["outcome"], *(f"{k}={v}" for k, v in cfg.items())]
        tokens = [t.lower() for t in tokens]
        # key=value must match a field exactly; a bare word may be part of any
        return all(word in tokens if "=" in word else any(word in t for t in tokens) for word in q.lower().split())
    return True


@router.get("", responses=errors())
def list_runs(
    request: Request,
    status: str | None = Query(
        None, max_length=40, description="a status or outcome: running, completed, diverged, interrupted, failed"
    ),
    model: str | None = Query(None, max_length=40),
    dataset: str | None = Query(None, max_length=40),
    q: str | None = Query(
        None,
        max_length=200,
        description="words that must all match: key=value a "
        "config field exactly, a bare word part of the "
        "id, status or any key=value",
    ),
    limit: int = Query(500, ge=1, le=5000),
) -> list[dict[str, Any]]:
    """The stored runs, newest first: id, status, times, the main config keys and the summary."""
    store = _store(request)
    if store is None:
        return []
    with store:
        runs = store.runs()
    out = []
    for r in runs:
        r["outcome"] = outcome(r["status"], r["summary"])
        if _matches(r, status, model, dataset, q):
            out.append(
                {
                    "id": r["id"],
                    "status": r["status"],
                    "outcome": r["outcome"],
                    "started": r["started"],
                    "ended": r["ended"],
                    "config": {k: r["config"].get(k) for k in LIST_KEYS},
                    "summary": r["summary"],
                }
            )
        if len(out) >= limit:
            break
    return clean(out)


def _thin(steps: np.ndarray, after_step: int, max_points: int) -> np.ndarray:
    """Indices of the steps after ``after_step``, at most ``max_points`` evenly spaced, the last one kept."""
    idx = np.flatnonzero(steps > after_step)
    if len(idx) > max_points:
        keep = np.unique(np.linspace(0, len(idx) - 1, max_points).round().astype(int))
        idx = idx[keep]
    return idx


def _open_store(request: Request, run_id: str) -> Any:
    """The run store, open for reading a run; 404 naming ``run_id`` when there is none yet."""
    store = _store(request)
    if store is None:
        raise HTTPException(404, {"parameter": "run_id", "value": run_id, "allowed": "the run store is empty"})
    return store


def _get_run(store: Any, run_id: str) -> dict[str, Any]:
    """The run ``run_id`` names (an id or a unique prefix); 404 naming the parameter otherwise."""
    try:
        return store.get(run_id)
    except ConfigError as exc:
        raise HTTPException(404, {"parameter": exc.param, "value": exc.value, "allowed": exc.allowed}) from None


@router.get("/{run_id}", responses=errors(404))
def get_run(
    request: Request,
    run_id: str,
    after_step: int = Query(-1, ge=-1, le=MAX_STEP, description="only history steps after it"),
    max_points: int = Query(MAX_POINTS, ge=2, le=100_000),
) -> dict[str, Any]:
    """One run: its config, status, per-epoch metrics, the watch history (``layers``, ``steps`` and ``stats``
    {name: [steps][layers]}) thinned to ``max_points`` steps, and the diagnosis of its summary."""
    with _open_store(request, run_id) as store:
        run = _get_run(store, run_id)
        metrics, history, times = store.metrics(run["id"]), store.history(run["id"]), store.time_grads(run["id"])
    idx = _thin(history["steps"], after_step, max_points)
    return clean(
        {
            **run,
            "outcome": outcome(run["status"], run["summary"]),
            "metrics": metrics,
            "diagnosis": run["summary"].get("diagnosis"),
            "history": {
                "layers": history["layers"],
                "steps": history["steps"][idx],
                "stats": {k: v[idx] for k, v in history["stats"].items()},
            },
            "time_grads": {str(k): v for k, v in times.items()},
        }
    )


@router.delete("/{run_id}", responses=errors(403, 404, 409))
def delete_run(request: Request, run_id: str) -> dict[str, Any]:
    """Delete a stored run (its config, metrics and history). A run still training is refused (409): stop it
    first. From a browser only from the server's own pages (the Origin check)."""
    with _open_store(request, run_id) as store:
        run = _get_run(store, run_id)
        if run["id"] != run_id:
            raise HTTPException(
                404,
                {"parameter": "run_id", "value": run_id, "allowed": "the full id of a run (a prefix deletes nothing)"},
            )
        if run["status"] == "running":
            raise HTTPException(
                409, {"parameter": "run_id", "value": run["id"], "allowed": "the run is still training; stop it first"}
            )
        store.delete(run["id"])
    return {"id": run["id"], "deleted": True}

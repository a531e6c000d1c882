"""The ``gradwatch serve`` application: ``create_app(store)`` returns a FastAPI app serving the pages, the runs
API and the playground API. FastAPI and uvicorn are the optional extra ``web``.

Safe by default (see :mod:`gradwatch.web.guard`): requests must name a loopback host (no DNS rebinding) unless
the server was started for other hosts; state-changing requests (POST, DELETE) from a browser must come from the
server's own origin; request bodies are capped while read; pages may be framed by the server's own pages only.
A playground config is checked on its raw values first, then as :class:`gradwatch.lab.Config`, then for its
cost (:mod:`gradwatch.web.limits`), off the event loop; nothing in a request is executed. Every error is JSON.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradwatch.errors import ConfigError, DataError
from gradwatch.web.limits import Limits

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
PAGES = {"/": "runs.html", "/playground": "playground.html", "/compare": "compare.html", "/api/docs": "api.html"}
ALWAYS_DATASETS = ("digits", "mnist1d")


def require_web() -> None:
    """Raise an ImportError naming the extra when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f'gradwatch serve needs FastAPI and uvicorn ({exc.name} is missing): pip install "gradwatch[web]"'
        ) from None


def available_datasets() -> tuple[str, ...]:
    """Datasets the playground offers here: digits and MNIST-1D always, MNIST when its files are found
    locally (never downloaded on a request), and the synthetic tasks."""
    from gradwatch.lab import mnist
    from gradwatch.lab.tasks import TASKS

    names = list(ALWAYS_DATASETS)
    with contextlib.suppress(DataError, ConfigError, OSError):
        mnist.locate(None, download=False)
        names.insert(1, "mnist")
    return tuple(names) + tuple(TASKS)


def _error(status: int, param: str, value: Any, allowed: str):
    from fastapi.responses import JSONResponse

    from gradwatch.web.encode import clean
    from gradwatch.web.guard import error_body

    return JSONResponse(clean(error_body(param, value, allowed)), status_code=status)


def create_app(
    store: str | Path, *, limits: Limits | None = None, hosts: Sequence[str] = LOOPBACK, origins: Sequence[str] = ()
) -> Any:
    """The FastAPI app over the run store at ``store``.

    Args:
        limits: caps of the playground (default :class:`Limits()`).
        hosts: host names a request's ``Host`` header may carry (``("*",)``: any, for a server bound to a
            non-loopback address).
        origins: extra origins (``scheme://host:port``) allowed to POST and DELETE besides the server's own.
    """
    require_web()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import HTTPException, RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from gradwatch.web import api_playground, api_runs
    from gradwatch.web.guard import BodyTooLarge, Guard
    from gradwatch.web.playground import Playground

    limits = limits or Limits()
    store_path = Path(store).expanduser()
    playground = Playground(store_path, limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        playground.shutdown()

    # the API docs are a page of our own (static/api.html reads /api/openapi.json): nothing from a CDN
    app = FastAPI(
        title="gradwatch",
        summary="Runs and a gradient playground",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.store_path, app.state.limits, app.state.playground = store_path, limits, playground
    app.state.datasets = available_datasets()
    app.add_middleware(Guard, hosts=hosts, origins=origins, max_body_bytes=limits.max_body_bytes)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge):
        return _error(413, "body", f"more than {exc.cap} bytes", f"at most {exc.cap} bytes")

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError):
        return _error(422, exc.param, exc.value, exc.allowed)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        return _error(422, str(err.get("loc", ["?"])[-1]), err.get("input"), err.get("msg", "invalid value"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a bug of ours: still JSON, never a traceback
        return _error(500, "server", type(exc).__name__, "an unexpected error; please report it")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if isinstance(exc.detail, dict):
            d = exc.detail
            return _error(exc.status_code, d["parameter"], d["value"], d["allowed"])
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app.include_router(api_runs.router)
    app.include_router(api_playground.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    for route, page in {**PAGES, "/runs/{run_id}": "run.html"}.items():
        app.add_api_route(route, _page(HTMLResponse, page), include_in_schema=False)
    return app


def _page(response: Any, name: str):
    """A page read once and answered from memory, on the event loop (no file access per request)."""
    html = (STATIC / name).read_bytes()

    async def page() -> Any:
        return response(html, headers={"Cache-Control": "no-cache"})

    return page

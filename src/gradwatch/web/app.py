"""The ``gradwatch serve`` application: ``create_app(store)`` returns a FastAPI app serving the pages, the runs
API and the playground API. FastAPI and uvicorn are the optional extra ``web``.

Safe by default: requests must name a loopback host (no DNS rebinding) unless the server was started for other
hosts; state-changing requests (POST, DELETE) from a browser must come from the server's own origin; request
bodies are capped; a playground config is validated as :class:`gradwatch.lab.Config` and against
:class:`~gradwatch.web.limits.Limits`; nothing in a request is executed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradwatch.errors import ConfigError, DataError
from gradwatch.web.limits import Limits

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost")
PAGES = {"/": "runs.html", "/playground": "playground.html"}
ALWAYS_DATASETS = ("digits", "mnist1d")


def require_web() -> None:
    """Raise an ImportError naming the extra when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(f'gradwatch serve needs FastAPI and uvicorn ({exc.name} is missing): '
                          f'pip install "gradwatch[web]"') from None


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

    message = f"{param}={value!r} is not allowed: {allowed}"
    return JSONResponse(clean({"detail": {"parameter": param, "value": value, "allowed": allowed,
                                          "message": message}}), status_code=status)


def create_app(store: str | Path, *, limits: Limits | None = None, hosts: Sequence[str] = LOOPBACK,
               origins: Sequence[str] = ()) -> Any:
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
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from gradwatch.web import api_playground, api_runs
    from gradwatch.web.playground import Playground

    limits = limits or Limits()
    store_path = Path(store).expanduser()
    playground = Playground(store_path, limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        playground.shutdown()

    app = FastAPI(title="gradwatch", summary="Runs and a gradient playground", lifespan=lifespan,
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.store_path, app.state.limits, app.state.playground = store_path, limits, playground
    app.state.datasets = available_datasets()
    allowed_origins = set(origins)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if origin is not None and origin != own and origin not in allowed_origins:
                return _error(403, "Origin", origin, f"state-changing requests must come from {own}")
            size = request.headers.get("content-length")
            if size is not None and size.isdigit() and int(size) > limits.max_body_bytes:
                return _error(413, "body", f"{size} bytes", f"at most {limits.max_body_bytes} bytes")
        return await call_next(request)

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError):
        return _error(422, exc.param, exc.value, exc.allowed)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        return _error(422, str(err.get("loc", ["?"])[-1]), err.get("input"), err.get("msg", "invalid value"))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if isinstance(exc.detail, dict):
            d = exc.detail
            return _error(exc.status_code, d["parameter"], d["value"], d["allowed"])
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app.include_router(api_runs.router)
    app.include_router(api_playground.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    for route, page in PAGES.items():
        app.add_api_route(route, _page(FileResponse, page), include_in_schema=False)
    app.add_api_route("/runs/{run_id}", _page(FileResponse, "run.html"), include_in_schema=False)
    return app


def _page(response: Any, name: str):
    def page() -> Any:
        return response(STATIC / name, headers={"Cache-Control": "no-cache"})

    return page

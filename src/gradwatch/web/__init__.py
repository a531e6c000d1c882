"""``gradwatch serve``: a live dashboard of stored runs and a gradient playground in the browser.

Needs the optional extra ``web`` (FastAPI and uvicorn): ``pip install "gradwatch[web]"``. See ``docs/serve.md``.

    from gradwatch.web import create_app
    app = create_app("gradwatch-runs/runs.sqlite")   # an ASGI app: uvicorn.run(app, port=8765)
"""

from __future__ import annotations

from typing import Any


def create_app(store: Any, **options: Any) -> Any:
    """The FastAPI app (see :func:`gradwatch.web.app.create_app`); imports FastAPI only when called."""
    from gradwatch.web.app import create_app as _create

    return _create(store, **options)


__all__ = ["create_app"]

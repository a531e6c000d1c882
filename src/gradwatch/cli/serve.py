"""``gradwatch serve``: the live dashboard and gradient playground (the optional extra ``web``)."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path

import typer

from gradwatch.cli.common import err_console
from gradwatch.errors import ConfigError


def check_store(path: str | Path) -> None:
    """Refuse at the start a ``--store`` that is not a run store (a text file, another program's database, a
    damaged or truncated file), instead of answering every request with an error; a missing one is created by the
    first run."""
    from gradwatch.store import RunStore

    if Path(path).expanduser().exists():
        with RunStore(path, readonly=True) as db:
            db.check()


def _serve(
    store: str = typer.Option(
        None,
        "--store",
        help="SQLite run store to show (default: gradwatch-runs/runs.sqlite; created by the first run).",
    ),
    port: int = typer.Option(8765, "--port", help="TCP port (0: any free port)."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. Only this machine can "
        "connect to the default; another host exposes the "
        "playground to the network.",
    ),
    abandon_after: float = typer.Option(
        30.0,
        "--abandon-after",
        help="Stop a playground run when no "
        "browser has watched it for this many seconds (runs started "
        "detached excepted).",
    ),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser tab."),
) -> None:
    """Serve a live dashboard of the stored runs and a gradient playground in the browser."""
    from gradwatch.store import DEFAULT_STORE
    from gradwatch.web.app import LOOPBACK, require_web
    from gradwatch.web.guard import is_loopback, url_host
    from gradwatch.web.limits import Limits

    if not 0 <= port <= 65535:
        raise ConfigError("port", port, "expected 0 … 65535")
    if not 0 < abandon_after <= 86_400:
        raise ConfigError("abandon_after", abandon_after, "expected seconds in (0, 86400]")
    check_store(store or DEFAULT_STORE)
    try:
        require_web()
    except ImportError as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    import uvicorn

    from gradwatch.web import create_app

    hosts: tuple[str, ...] = (*LOOPBACK, url_host(host))  # 127.0.0.2, ::1, …: still checked
    if not is_loopback(host):
        err_console.print(
            f"warning: listening on {host}: anyone who can reach this address can see your runs and "
            "start trainings on this machine. Use the default 127.0.0.1 unless you mean it.",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )
        hosts = ("*",)
    app = create_app(store or DEFAULT_STORE, hosts=hosts, limits=Limits(abandon_after_s=abandon_after))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
            url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else url_host(host)}:{bound}/"
            err_console.print(
                f"gradwatch serve: {url}  (runs in {store or DEFAULT_STORE}; Ctrl+C stops)",
                highlight=False,
                soft_wrap=True,
            )
            if not no_browser:
                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True, name="gradwatch-serve-announce").start()
    server.run()


def register_serve(app: typer.Typer) -> None:
    """Add ``serve`` to the ``gradwatch`` app."""
    app.command("serve")(_serve)

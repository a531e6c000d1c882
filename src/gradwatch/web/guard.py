"""The server's gate, one pure ASGI middleware in front of every request (before any route or body parsing):

- ``Host`` must name an allowed host (by default the loopback names, IPv6 ``[::1]`` included), so a web page
  cannot reach the server through DNS rebinding;
- a ``POST``/``PUT``/``PATCH``/``DELETE`` carrying an ``Origin`` must come from the server's own origin (or one
  allowed explicitly), so other sites cannot start or stop trainings from the user's browser;
- a request body is capped while it is read, whether it declares its length or comes in chunks;
- every answer carries anti-framing and no-sniffing headers.

Refusals are JSON ``{"detail": {"parameter", "value", "allowed", "message"}}``, as every other error.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

STATE_CHANGING = (b"POST", b"PUT", b"PATCH", b"DELETE")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SECURITY_HEADERS = [
    (b"x-frame-options", b"SAMEORIGIN"),
    (
        b"content-security-policy",
        (
            b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            b"frame-ancestors 'self'; base-uri 'self'; form-action 'self'; object-src 'none'"
        ),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body grows past the cap while it is read (answered 413)."""

    def __init__(self, cap: int, seen: int):
        super().__init__(f"more than {cap} bytes")
        self.cap, self.seen = cap, seen


def host_name(host: str) -> str:
    """The name part of a ``Host`` header, lower case: ``[::1]:8765`` → ``[::1]``, ``localhost:80`` → ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def url_host(address: str) -> str:
    """How ``address`` (a bind address or host name) appears in a ``Host`` header: IPv6 in brackets."""
    address = address.strip().lower().strip("[]")
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``."""
    address = address.strip().lower().strip("[]")
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def error_body(param: str, value: Any, allowed: str) -> dict[str, Any]:
    from gradwatch.web.encode import short

    value = short(value)
    return {
        "detail": {
            "parameter": param,
            "value": value,
            "allowed": allowed,
            "message": f"{param}={value!r} is not allowed: {allowed}",
        }
    }


class Guard:
    """ASGI middleware: Host, Origin and body-size checks, security headers (see the module docstring)."""

    def __init__(self, app: Any, *, hosts: Iterable[str], origins: Iterable[str] = (), max_body_bytes: int):
        self.app = app
        self.any_host = "*" in hosts
        self.hosts = {url_host(h) for h in hosts if h != "*"}
        self.origins, self.max_body = set(origins), max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not self.any_host and host_name(host) not in self.hosts:
            await self._refuse(
                send,
                400,
                "Host",
                host,
                "this server answers requests for "
                + ", ".join(sorted(self.hosts))
                + " only (start it with --host to serve another address)",
            )
            return
        if scope["method"].encode() in STATE_CHANGING:
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{host}"
            if origin is not None and origin != own and origin not in self.origins:
                await self._refuse(send, 403, "Origin", origin, f"state-changing requests must come from {own}")
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and len(declared) < 30 and int(declared) > self.max_body:
            await self._refuse(send, 413, "body", f"{declared} bytes", f"at most {self.max_body} bytes")
            return
        await self.app(scope, self._capped(receive), self._with_headers(send))

    def _capped(self, receive: Any) -> Any:
        seen = 0

        async def capped_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body, seen)
            return message

        return capped_receive

    @staticmethod
    def _with_headers(send: Any) -> Any:
        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *((k, v) for k, v in SECURITY_HEADERS if k not in names)],
                }
            await send(message)

        return send_with_headers

    async def _refuse(self, send: Any, status: int, param: str, value: Any, allowed: str) -> None:
        body = json.dumps(error_body(param, value, allowed)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

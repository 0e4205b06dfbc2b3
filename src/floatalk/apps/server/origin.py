"""Which sites may talk to the server: the Host a request names must be one of the server's own
addresses (DNS rebinding points a name the attacker owns at 127.0.0.1, so its requests name that
name), and a request that changes state (POST, PUT, PATCH, DELETE, a websocket) sent by a
browser from another origin is refused unless that origin was allowed (`--allow-origin`): a
multipart POST is a "simple" request a browser sends from any page without asking first.
"""

from __future__ import annotations

import json
from typing import Any

from floatalk.apps.hosts import HostRules, host_name
from floatalk.apps.server.auth import refuse_websocket

__all__ = ["OriginGate"]

_CHANGES_STATE = {"POST", "PUT", "PATCH", "DELETE"}


def _refusal(status: int, message: str) -> list[dict[str, Any]]:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return [
        {"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]},
        {"type": "http.response.body", "body": body},
    ]


class OriginGate:
    """ASGI middleware enforcing `HostRules`: 421 for a Host that is not the server's, 403 for a
    cross-origin request that changes state or a CORS preflight from an origin not allowed; a
    websocket from such an origin is closed before it opens."""

    def __init__(self, app: Any, rules: HostRules) -> None:
        self.app = app
        self.rules = rules

    def problem(self, scope: dict) -> tuple[int, str] | None:
        """(status, sentence) of a request the rules refuse, else None."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host")
        if host is not None and not self.rules.host_allowed(host_name(host)):
            return 421, f"This server does not answer to the host name {host_name(host)!r} (see --allowed-host)."
        origin = headers.get("origin")
        if origin is None and headers.get("sec-fetch-site") == "cross-site":
            origin = "null"
        method = scope.get("method", "GET")
        preflight = method == "OPTIONS" and "access-control-request-method" in headers
        changes = scope["type"] == "websocket" or method in _CHANGES_STATE or preflight
        if changes and not self.rules.origin_allowed(origin, host or ""):
            return 403, f"Requests from the page at {origin} are refused here (see --allow-origin)."
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            problem = self.problem(scope)
            if problem is not None:
                if scope["type"] == "websocket":
                    await refuse_websocket(scope, send, *problem)
                    return
                for message in _refusal(*problem):
                    await send(message)
                return
        await self.app(scope, receive, send)

"""What each route allows, said the HTTP way: `OPTIONS` answers 204 with the path's `Allow` header,
`HEAD` answers as `GET` without the body, and a method the path does not take gets 405 with the
whole `Allow` list (Starlette's own 405 names only the first route that matched the path). Paths
of mounted apps (the web page) are theirs to answer.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.routing import Match, Mount

__all__ = ["MethodGate"]


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: Any, scope: dict) -> set[str]:
    """The methods the app's routes take on the request's path (empty: no route of this app, a
    mounted app's path included). Each method is tried against the routes (FastAPI nests
    included routers, so only a route's own `matches` knows what it takes)."""
    routes = [route for route in getattr(app, "routes", ()) if not isinstance(route, Mount)]
    methods = {m for m in _METHODS if any(r.matches({**scope, "method": m})[0] == Match.FULL for r in routes)}
    if methods:
        methods |= {"OPTIONS", *(["HEAD"] if "GET" in methods else [])}
    return methods


def _answer(status: int, allow: str, message: str | None) -> list[dict[str, Any]]:
    body = json.dumps({"error": message}).encode() if message else b""
    headers = [(b"allow", allow.encode()), (b"content-length", str(len(body)).encode())]
    if message:
        headers.append((b"content-type", b"application/json"))
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


class MethodGate:
    """ASGI middleware for OPTIONS, HEAD and 405 (see the module); `app` is the FastAPI app whose
    routes are looked at (the middleware wraps its router)."""

    def __init__(self, inner: Any, app: Any) -> None:
        self.inner = inner
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        methods = allowed_methods(self.app, scope)
        method = scope["method"]
        if not methods or (method in methods and method not in ("OPTIONS", "HEAD")):
            await self.inner(scope, receive, send)
            return
        allow = ", ".join(sorted(methods))
        if method == "HEAD":
            await self.inner({**scope, "method": "GET"}, receive, _headers_only(send))
            return
        if method == "OPTIONS":
            parts = _answer(204, allow, None)
        else:
            parts = _answer(405, allow, f"{method} is not allowed on {scope['path']}; it takes {allow}.")
        for part in parts:
            await send(part)


def _headers_only(send: Any) -> Any:
    """A `send` that passes a response's start and ends its body at once (the answer to HEAD)."""
    ended = False

    async def head_send(message: dict) -> None:
        nonlocal ended
        if message["type"] == "http.response.start":
            await send(message)
        elif message["type"] == "http.response.body" and not ended:
            ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return head_send

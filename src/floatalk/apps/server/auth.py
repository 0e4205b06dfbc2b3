"""The server's token: with one, a request must carry it, as `Authorization: Bearer <token>` (API
clients) or as the password of HTTP Basic authentication with any user name (a browser on the
web page or the interactive docs, which asks for it once).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from fastapi.responses import JSONResponse

from floatalk.apps.server.state import DOCS_PATH

__all__ = ["TokenGate"]


class TokenGate:
    """ASGI middleware: a request without the token gets 401, except on `open_paths`. Requests
    under `page_prefixes` (the web page and the live page; / leads to the first) and DOCS_PATH
    are answered with a Basic challenge, so that a browser asks for the token; others with a
    Bearer one. Plain ASGI, so request bodies and event streams pass through untouched."""

    def __init__(
        self, app: Any, token: str, open_paths: tuple[str, ...] = (), page_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.token = token.encode()
        self.open_paths = open_paths
        self.page_prefixes = page_prefixes

    def allowed(self, header: bytes) -> bool:
        """Whether an Authorization header's value carries the token (Bearer or Basic)."""
        scheme, _, value = header.partition(b" ")
        value = value.strip()
        if scheme.lower() == b"bearer":
            return hmac.compare_digest(value, self.token)
        if scheme.lower() == b"basic":
            try:
                password = base64.b64decode(value, validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(password, self.token)
        return False

    def refusal(self, path: str) -> JSONResponse:
        """The 401 for a request to `path` without the token: a browser's page is challenged for
        Basic authentication, anything else for a Bearer token."""
        page = path == DOCS_PATH or path.startswith(DOCS_PATH + "/")  # the interactive docs
        page |= bool(self.page_prefixes) and path == "/"
        page |= any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in self.page_prefixes)
        challenge = 'Basic realm="floatalk", charset="UTF-8"' if page else "Bearer"
        message = (
            "This page needs the server's token as the password (any user name)."
            if page
            else "This server needs the header 'Authorization: Bearer <token>'."
        )
        return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": challenge})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"] not in self.open_paths:
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not self.allowed(given):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await self.refusal(scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)

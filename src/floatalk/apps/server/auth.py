"""The server's token: with one, a request must carry it, as `Authorization: Bearer <token>` (API
clients) or as the password of HTTP Basic authentication with any user name (a browser on the
web page or the interactive docs, which asks for it once). A WebSocket may also carry it as
`?token=<token>` in its address, since a browser cannot set headers on one, and so may the live
page's address (the page passes it on to its WebSocket).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from fastapi.responses import JSONResponse

from floatalk.apps.server.state import DOCS_PATH

__all__ = ["TokenGate", "refuse_websocket"]


async def refuse_websocket(scope: dict, send: Any, status: int, message: str) -> None:
    """Refuse a WebSocket before it opens: an HTTP answer with `status` and the sentence as JSON
    where the server can send one (ASGI's websocket.http.response), else a close (1008), which
    the server answers with 403."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


class TokenGate:
    """ASGI middleware: a request without the token gets 401, except on `open_paths`. Requests
    under `page_prefixes` (the web page and the live page; / leads to the first) and DOCS_PATH
    are answered with a Basic challenge, so that a browser asks for the token; others with a
    Bearer one. Plain ASGI, so request bodies and event streams pass through untouched."""

    def __init__(
        self,
        app: Any,
        token: str,
        open_paths: tuple[str, ...] = (),
        page_prefixes: tuple[str, ...] = (),
        query_paths: tuple[str, ...] = (),
    ) -> None:
        """query_paths: pages (exact paths) that may also carry the token as `?token=`, as any
        WebSocket may."""
        self.app = app
        self.token = token.encode()
        self.open_paths = open_paths
        self.page_prefixes = page_prefixes
        self.query_paths = query_paths

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

    def in_query(self, scope: dict) -> bool:
        """Whether a WebSocket's (or a `query_paths` page's) address carries the token as `?token=`."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return any(hmac.compare_digest(given.encode("latin-1"), self.token) for given in query.get("token", []))

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
            websocket = scope["type"] == "websocket"
            by_query = websocket or scope["path"] in self.query_paths
            if not self.allowed(given) and not (by_query and self.in_query(scope)):
                if websocket:
                    words = "This server needs its token: 'Authorization: Bearer <token>' or '?token=<token>'."
                    await refuse_websocket(scope, send, 401, words)
                    return
                await self.refusal(scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RedactTokens(logging.Filter):
    """Hides the value of `token=` in log lines (uvicorn logs a WebSocket's address with its query,
    and a browser's live page sends the token there)."""

    _pattern = re.compile(r"([?&]token=)[^&\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._pattern.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self._pattern.sub(r"\1***", record.msg)
        return True


def redact_tokens_in_logs() -> None:
    """Put `RedactTokens` on uvicorn's loggers (once)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())

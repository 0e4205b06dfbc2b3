"""Bounds on request bodies in flight: at most `max_uploads` bodies are received at once (one more
is refused with 503 and Retry-After before a byte of it is read), and a body must have arrived
whole within `body_timeout_s` of its request's start (else 408 and the connection is closed). A
client that trickles a body byte by byte holds one slot for at most that long.

A body cut short (timed out, or its client gone) raises `BodyCutShortError` from the handler's next
read. It is a python-multipart parse error, so every multipart reader deletes the files it was
writing, as it does for a malformed body: ours (`Upload.discard`) and Gradio's upload route, which
keeps its temporary files when it merely sees the client disconnect.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from python_multipart.exceptions import MultipartParseError

__all__ = ["BodyCutShortError", "UploadGate"]

_RETRY_S = 5


class BodyCutShortError(MultipartParseError):
    """The request's body stopped before its end: it took too long, or its client went away."""


def _answer(status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> list[dict[str, Any]]:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(b"connection", b"close"), *extra]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


def _has_body(scope: dict) -> bool:
    """Whether an HTTP request announces a body (a Content-Length over 0, or chunks)."""
    for name, value in scope.get("headers") or []:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class UploadGate:
    """ASGI middleware: the number of bodies received at once and the time each may take (see the
    module). Requests without a body pass untouched."""

    def __init__(self, app: Any, max_uploads: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_uploads = max_uploads
        self.body_timeout_s = body_timeout_s
        self.active = 0  # bodies being received now (one event loop: no lock needed)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        if self.active >= self.max_uploads:
            message = f"The server is receiving {self.active} uploads already; try again in {_RETRY_S} s."
            for part in _answer(503, message, ((b"retry-after", str(_RETRY_S).encode()),)):
                await send(part)
            return
        self.active += 1
        upload = _Upload(self, receive, send)
        try:
            await self.app(scope, upload.receive, upload.send)
        except BodyCutShortError:
            pass  # answered already (408), or nobody is left to answer
        finally:
            upload.release()


class _Upload:
    """One body being received: its deadline, its slot in the gate, and whether the gate has
    answered for it (a timed-out body gets 408; whatever the handler sends after is dropped)."""

    def __init__(self, gate: UploadGate, receive: Any, send: Any) -> None:
        self.gate = gate
        self._receive = receive
        self._send = send
        self.deadline = time.monotonic() + gate.body_timeout_s
        self.holding = True
        self.started = False  # the response has begun
        self.timed_out = False

    def release(self) -> None:
        """Free the slot (once): the body arrived whole, or the request ended."""
        if self.holding:
            self.holding = False
            self.gate.active -= 1

    async def receive(self) -> dict:
        if self.timed_out:
            raise BodyCutShortError("The request body did not arrive in time.")
        if not self.holding:
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), max(0.0, self.deadline - time.monotonic()))
        except asyncio.TimeoutError:
            self.timed_out = True
            self.release()
            if not self.started:
                self.started = True
                seconds = f"{self.gate.body_timeout_s:g}"
                for part in _answer(408, f"The request body did not arrive within {seconds} s."):
                    await self._send(part)
            raise BodyCutShortError("The request body did not arrive in time.") from None
        if message["type"] == "http.disconnect":
            self.release()
            raise BodyCutShortError("The client went away before its request body ended.")
        if not message.get("more_body", False):
            self.release()
        return message

    async def send(self, message: dict) -> None:
        if self.timed_out:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

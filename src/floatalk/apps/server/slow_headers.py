"""A bound on the time a client may take to send a request's headers: uvicorn waits for them
without limit (its keep-alive timeout only covers the quiet before the first byte), so a client
that trickles a header line now and then holds a connection for ever. The protocol class made
here answers 408 and closes the connection when the headers of a request have not all arrived
`seconds` after the connection opened or after the previous answer ended.

It also closes connections the way a client can read: when the server hangs up on a client that
is still sending (a body timed out, an upload refused before its body was read), closing the
socket at once makes the kernel reset the connection, and the reset can destroy the answer before
the client reads it. The protocol shuts its sending side first (the client reads the answer and
an end), discards what still arrives for at most `LINGER_S` and `LINGER_BYTES`, and closes then
or when the client does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["LINGER_BYTES", "LINGER_S", "header_timeout_protocol"]

LINGER_S = 2.0
LINGER_BYTES = 1024 * 1024  # a client still pushing a refused upload at full speed is cut off past this


class _LingeringTransport:
    """The connection's transport as uvicorn's HTTP protocol sees it: `close()` sends the answer
    and an end, then waits up to `LINGER_S` for the client's end, discarding what it still sends.
    Everything else is the transport's own. A connection upgraded to a WebSocket (its protocol
    no longer the HTTP one) closes plainly."""

    def __init__(self, transport: asyncio.Transport, owner: Any) -> None:
        self._transport = transport
        self._owner = owner
        self.lingering = False
        self.discarded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        real = self._transport
        if self.lingering or real.is_closing():
            return
        if real.get_protocol() is not self._owner or not real.can_write_eof():
            real.close()
            return
        self.lingering = True
        real.write_eof()  # what is buffered goes first, then the end
        real.resume_reading()  # discard what still comes, so that closing resets nothing
        self._owner.loop.call_later(LINGER_S, real.close)

    def discard(self, size: int) -> None:
        """Count `size` bytes dropped while lingering; past LINGER_BYTES the connection closes."""
        self.discarded += size
        if self.discarded > LINGER_BYTES:
            self._transport.close()


class _HeaderDeadline:
    """Mixed into uvicorn's HTTP protocol (httptools or h11): a timer armed when the connection
    opens and again when an answer ends, which fires only if no new request has begun (uvicorn
    makes `self.cycle` once a request's headers are in) and the connection is still this
    protocol's (not upgraded to a websocket)."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        cycle = getattr(self, "cycle", None)
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late, cycle)  # type: ignore[attr-defined]

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self, cycle: Any) -> None:
        transport = self.transport  # type: ignore[attr-defined]
        if transport is None or transport.is_closing() or transport.get_protocol() is not self:
            return
        if getattr(self, "cycle", None) is not cycle:
            return  # a request began: its body is the upload gate's to time
        body = json.dumps({"error": f"The request headers did not arrive within {self.header_timeout_s:g} s."})
        head = f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        transport.write(f"{head}connection: close\r\n\r\n{body}".encode())
        transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        transport = self.transport  # type: ignore[attr-defined]
        if isinstance(transport, _LingeringTransport) and transport.lingering:
            transport.discard(len(data))  # the answer is sent and the connection closing: the rest is dropped
            return
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (the one `http="auto"` picks) with a `seconds` bound on headers;
    pass it as `uvicorn.Config(http=...)`."""
    return type("HeaderTimeoutProtocol", (_HeaderDeadline, AutoHTTPProtocol), {"header_timeout_s": float(seconds)})

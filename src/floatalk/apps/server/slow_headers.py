"""A bound on the time a client may take to send a request's headers: uvicorn waits for them
without limit (its keep-alive timeout only covers the quiet before the first byte), so a client
that trickles a header line now and then holds a connection for ever. The protocol class made
here answers 408 and closes the connection when the headers of a request have not all arrived
`seconds` after the connection opened or after the previous answer ended.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["header_timeout_protocol"]


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
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

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

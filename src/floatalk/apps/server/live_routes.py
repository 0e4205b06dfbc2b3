"""GET /v1/live: the live endpoint, a WebSocket that runs one live session (the protocol is
floatalk.apps.live.stream's; docs/LIVE.md describes it). The guards have passed it already: the
Host and Origin rules, and the token (as `Authorization: Bearer T` or `?token=T`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from floatalk.apps.live.sessions import CLOSE_POLICY, LiveError
from floatalk.apps.live.stream import ClientGoneError, LiveContext, run_live, say_error
from floatalk.apps.queue import JobQueue
from floatalk.apps.server.state import API_PREFIX, ServerState

__all__ = ["router"]

router = APIRouter(prefix=API_PREFIX)


class _Socket:
    """A Starlette WebSocket as a floatalk.apps.live.stream.Connection."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.gone = False

    async def receive(self) -> str | bytes | None:
        if self.gone:
            return None
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            self.gone = True
            return None
        data = message.get("bytes")
        return data if data is not None else message.get("text") or ""

    async def send(self, message: str | bytes) -> None:
        if self.gone:
            raise ClientGoneError()
        try:
            if isinstance(message, bytes):
                await self.websocket.send_bytes(message)
            else:
                await self.websocket.send_text(message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.gone = True
            raise ClientGoneError() from None

    async def close(self, code: int) -> None:
        if self.gone:
            return
        self.gone = True
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code)


def _job_image(queue: JobQueue):
    """A job's id -> its photo (None for an unknown job or one whose photo is gone)."""

    def image(job_id: str) -> Path | None:
        if queue.get(job_id) is None:
            return None
        path = queue.paths(job_id)[0]
        return path if path.is_file() else None

    return image


@router.get("/live", include_in_schema=False)
async def live_over_http() -> JSONResponse:
    """A plain GET of the live endpoint: 426, it takes WebSocket upgrades only."""
    words = "/v1/live is a WebSocket; open it with 'Upgrade: websocket' (see docs/LIVE.md)."
    return JSONResponse({"error": words}, status_code=426, headers={"Upgrade": "websocket", "Connection": "Upgrade"})


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """One live session: `start`, PCM, `control` and `end` in; `ready`, frames, `stats` and `done` out."""
    state: ServerState = websocket.app.state.floatalk
    await websocket.accept()
    socket = _Socket(websocket)
    if state.live is None:
        await say_error(socket, LiveError(CLOSE_POLICY, "This server runs no live sessions (see --live-sessions)."))
        return
    context = LiveContext(state.live, state.limits, state.incoming, _job_image(state.queue))
    await run_live(socket, context)

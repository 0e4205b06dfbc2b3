"""One live session over a message connection, the protocol of `/v1/live` (docs/LIVE.md) without
the web: the start message, PCM and controls in, numbered JPEG frames, stats and `done` out.

Three tasks share the session: the reader takes the client's messages (with the idle timeout and
the session's length bound) into a short queue, so a client that sends faster than the model
works is held back by the connection itself; the worker runs each push in the session's own
thread (floatalk.apps.live.runner.LiveRunner), never in the event loop; the sender writes the
outbox to the client. The outbox holds at most `send_frames` frames: a client that reads too
slowly loses the oldest waiting frames (counted in `stats` and `done`), so nothing is buffered
without bound and the worker never waits for a reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from floatalk.apps.live.runner import Batch, LiveRunner, describe_failure
from floatalk.apps.live.sessions import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    FORMATS,
    LiveError,
    LivePool,
    StartRequest,
    parse_start,
)
from floatalk.apps.uploads import Limits
from floatalk.errors import UserInputError, one_line

__all__ = ["ClientGoneError", "Connection", "LiveContext", "Outbox", "run_live", "say_error"]

_INBOX = 4  # client messages waiting for the worker
_LAST_WORDS_S = 2.0  # how long the error and the close may take to send at the end


class ClientGoneError(Exception):
    """The client closed the connection or went away."""


class Connection(Protocol):
    """A message connection, accepted already (a WebSocket)."""

    async def receive(self) -> str | bytes | None:
        """The next message (None: the client has gone)."""

    async def send(self, message: str | bytes) -> None:
        """Send one message (ClientGoneError when the client has gone)."""

    async def close(self, code: int) -> None:
        """Close with `code`."""


@dataclass(frozen=True)
class LiveContext:
    """What the server gives each live session."""

    pool: LivePool
    upload: Limits  # the photo is held to the upload limits
    incoming: Path  # where the photo is written while it is checked
    job_image: Callable[[str], Path | None] | None = None  # a job's id -> its photo


class Outbox:
    """Messages waiting to be sent, in order: at most `max_frames` frames (one more drops the
    oldest waiting frame), at most one `stats` (a newer one replaces it), then the end."""

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max_frames
        self.items: deque[tuple[str, str | bytes]] = deque()  # (kind: "frame" | "stats" | "text", message)
        self.frames = 0
        self.dropped = 0
        self.finished = False
        self._ready = asyncio.Event()

    def put_frame(self, message: bytes) -> None:
        if self.frames >= self.max_frames:
            oldest = next(i for i, (kind, _) in enumerate(self.items) if kind == "frame")
            del self.items[oldest]
            self.frames -= 1
            self.dropped += 1
        self.items.append(("frame", message))
        self.frames += 1
        self._ready.set()

    def put_text(self, kind: str, message: dict[str, Any] | None = None) -> None:
        """Queue a text message (`stats` without one: its figures are taken when it is sent)."""
        text = json.dumps(message) if message is not None else ""
        if kind == "stats":
            for i, (old, _) in enumerate(self.items):
                if old == "stats":
                    self.items[i] = (kind, text)
                    return
        self.items.append((kind, text))
        self._ready.set()

    def finish(self) -> None:
        """Nothing more will be put: `get` returns None once the rest is taken."""
        self.finished = True
        self._ready.set()

    async def get(self) -> tuple[str, str | bytes] | None:
        while not self.items:
            if self.finished:
                return None
            self._ready.clear()
            await self._ready.wait()
        kind, message = self.items.popleft()
        if kind == "frame":
            self.frames -= 1
        return kind, message


def _json(message: str | bytes) -> dict[str, Any]:
    """A text message as a JSON object (LiveError otherwise)."""
    try:
        value = json.loads(message)
    except (ValueError, RecursionError):
        raise LiveError(CLOSE_POLICY, "A text message must be a JSON object; this one is not valid JSON.") from None
    if not isinstance(value, dict):
        raise LiveError(CLOSE_POLICY, "A text message must be a JSON object with a 'type'.")
    return value


def _percentile_ms(values: deque[float], q: float) -> float | None:
    return round(float(np.percentile(list(values), q)) * 1000, 1) if values else None


class _Stream:
    """One session's state between its tasks (see the module)."""

    def __init__(self, conn: Connection, context: LiveContext) -> None:
        self.conn, self.context = conn, context
        self.slot: int | None = None  # the pool's slot, once the start message is read
        self.limits = context.pool.limits
        self.runner: LiveRunner | None = None
        self.request: StartRequest | None = None
        self.outbox = Outbox(self.limits.send_frames)
        self.inbox: asyncio.Queue[tuple[str, Any, float]] = asyncio.Queue(_INBOX)
        self.audio_s = 0.0
        self.deadline = time.monotonic() + self.limits.max_s
        self.sent = 0
        self.latency: deque[float] = deque(maxlen=200)  # per push that made frames: its arrival -> frames ready
        self.compute: deque[float] = deque(maxlen=200)  # per push that made frames: its steps and JPEGs
        self.compute_total = 0.0
        self.stats_at = time.monotonic()
        self.sent_at_stats = 0
        self.released = False

    # ------------------------------------------------------------------ the session
    async def run(self) -> None:
        first = await self._receive()
        if isinstance(first, bytes):
            raise LiveError(CLOSE_POLICY, "The first message must be the text 'start' message, not audio.")
        context = self.context
        self.request = parse_start(_json(first), context.upload, context.job_image)
        self.slot = context.pool.acquire()
        if self.slot is None:
            count = self.limits.max_sessions
            raise LiveError(CLOSE_TRY_LATER, f"All {count} live sessions of this server are in use; try again later.")
        self.runner = LiveRunner(context.pool, self.slot, self.request, context.upload, context.incoming)
        ready = await self._call(self.runner.open)
        self.deadline = time.monotonic() + self.limits.max_s
        self.stats_at = time.monotonic()
        await self._send(json.dumps(ready))
        tasks = [asyncio.ensure_future(job()) for job in (self._read, self._work, self._write)]
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            await _stop(tasks)

    def release(self) -> None:
        """Give the slot back (once): now, or when the session's thread finishes what it runs."""
        if self.released or self.slot is None:
            return
        self.released = True
        if self.runner is not None:
            self.runner.shutdown()
        else:
            self.context.pool.release(self.slot)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self.runner is not None
        return await asyncio.wrap_future(self.runner.call(fn, *args))

    async def _receive(self) -> str | bytes:
        """The client's next message, within the idle timeout and the session's length."""
        left = self.deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(self.conn.receive(), max(0.0, min(self.limits.idle_s, left)))
        except asyncio.TimeoutError:
            if time.monotonic() >= self.deadline:
                raise self._too_long() from None
            raise LiveError(
                CLOSE_POLICY, f"No message came for {self.limits.idle_s:g} s; the session is closed."
            ) from None
        if message is None:
            raise ClientGoneError()
        return message

    def _too_long(self) -> LiveError:
        return LiveError(
            CLOSE_POLICY,
            f"The session reached the longest this server allows, {self.limits.max_s:g} s; open a new one.",
        )

    async def _send(self, message: str | bytes) -> None:
        """Send one message; a client that takes none for `idle_s` ends the session."""
        try:
            await asyncio.wait_for(self.conn.send(message), self.limits.idle_s)
        except asyncio.TimeoutError:
            raise LiveError(
                CLOSE_POLICY, f"The client read nothing for {self.limits.idle_s:g} s; the session is closed."
            ) from None

    # ------------------------------------------------------------------ the three tasks
    async def _read(self) -> None:
        """The client's messages into the inbox, checked, until `end`."""
        from floatalk.live.controls import check_controls

        request = self.request
        assert request is not None
        max_bytes = request.max_chunk_bytes(self.limits)
        bytes_per_second = FORMATS[request.format] * request.sample_rate
        while True:
            message = await self._receive()
            arrived = time.monotonic()
            if isinstance(message, bytes):
                if len(message) > max_bytes:
                    raise LiveError(
                        CLOSE_TOO_BIG,
                        f"A PCM message may hold at most {self.limits.max_chunk_s:g} s of audio ({max_bytes} bytes of "
                        f"{request.format} at {request.sample_rate} Hz); this one has {len(message)} bytes.",
                    )
                self.audio_s += len(message) / bytes_per_second
                if self.audio_s > self.limits.max_s:
                    raise self._too_long()
                await self.inbox.put(("pcm", message, arrived))
                continue
            body = _json(message)
            kind = body.get("type")
            if kind == "control":
                try:
                    controls = check_controls({k: v for k, v in body.items() if k != "type"})
                except UserInputError as exc:
                    raise LiveError(CLOSE_POLICY, one_line(exc)) from None
                await self.inbox.put(("control", controls, arrived))
            elif kind == "end":
                await self.inbox.put(("end", None, arrived))
                return
            elif kind == "start":
                raise LiveError(CLOSE_POLICY, "This session has started already; 'start' comes once.")
            else:
                raise LiveError(
                    CLOSE_POLICY,
                    f"Unknown message type {str(kind)[:40]!r}; after 'start' a client sends PCM as binary messages, "
                    "'control' and 'end'.",
                )

    async def _work(self) -> None:
        """Each inbox message through the session's thread; the frames into the outbox."""
        runner = self.runner
        assert runner is not None
        while True:
            kind, value, arrived = await self.inbox.get()
            if kind == "pcm":
                self._deliver(await self._call(runner.push, value), arrived)
            elif kind == "control":
                await self._call(runner.update, value)
            else:
                self._deliver(await self._call(runner.close), arrived)
                self.outbox.put_text("stats")
                self.outbox.finish()
                return

    async def _write(self) -> None:
        """The outbox to the client, then `done`."""
        while True:
            item = await self.outbox.get()
            if item is None:
                break
            kind, message = item
            if kind == "stats":  # the figures as of now, not as of when it was queued
                message = json.dumps(self._stats())
            await self._send(message)
            self.sent += kind == "frame"
        assert self.runner is not None
        done = {"type": "done", "frames": self.runner.made, "sent": self.sent, "dropped": self.outbox.dropped}
        await self._send(json.dumps(done))

    # ------------------------------------------------------------------ figures
    def _deliver(self, batch: Batch, arrived: float) -> None:
        now = time.monotonic()
        for k, jpeg in batch.frames:
            self.outbox.put_frame(struct.pack("<I", k) + jpeg)
        if batch.frames:
            self.latency.append(now - arrived)
            self.compute.append(batch.compute_s)
        self.compute_total += batch.compute_s
        if now - self.stats_at >= self.limits.stats_every_s:
            self.outbox.put_text("stats")

    def _stats(self) -> dict[str, Any]:
        """The `stats` message: frames made, sent and dropped, the frame rate sent since the last
        stats, and per PCM message that made frames: latency (its arrival -> its frames ready) and
        compute (the session's steps and the JPEG encoding)."""
        now = time.monotonic()
        elapsed = max(now - self.stats_at, 1e-6)
        fps = (self.sent - self.sent_at_stats) / elapsed
        self.stats_at, self.sent_at_stats = now, self.sent
        assert self.runner is not None
        return {
            "type": "stats",
            "frames": self.runner.made,
            "sent": self.sent,
            "dropped": self.outbox.dropped,
            "fps": round(fps, 1),
            "latency_p50_ms": _percentile_ms(self.latency, 50),
            "latency_p95_ms": _percentile_ms(self.latency, 95),
            "compute_p50_ms": _percentile_ms(self.compute, 50),
            "compute_p95_ms": _percentile_ms(self.compute, 95),
            "audio_s": round(self.audio_s, 3),
            "realtime_factor": round(self.compute_total / self.audio_s, 3) if self.audio_s else None,
        }


async def _stop(tasks: list[asyncio.Future]) -> None:
    """Cancel the tasks and wait until each has ended. Cancelled again while any runs: on Python
    3.11 `asyncio.wait_for` returns its result instead of the cancellation when both come at once,
    and the task would go on to wait for a message that never comes."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:  # retrieved, so none is logged as never retrieved
        if not task.cancelled():
            task.exception()


async def say_error(conn: Connection, error: LiveError) -> None:
    """Tell the client why the session ends and close it, giving up after a moment (a client
    that reads nothing cannot hold the server)."""
    message = json.dumps({"type": "error", "message": str(error)})
    with contextlib.suppress(asyncio.TimeoutError, ClientGoneError):
        await asyncio.wait_for(conn.send(message), _LAST_WORDS_S)
    with contextlib.suppress(asyncio.TimeoutError, ClientGoneError):
        await asyncio.wait_for(conn.close(error.code), _LAST_WORDS_S)


async def run_live(conn: Connection, context: LiveContext) -> None:
    """Serve one live session on an accepted connection until it ends. A pool's slot is taken once
    the start message is read (none free: `error` and 1013) and given back once the session's
    thread has finished what it was doing."""
    stream = _Stream(conn, context)
    try:
        await stream.run()
    except ClientGoneError:
        return
    except Exception as exc:  # noqa: BLE001 - every failure is told to the client in one sentence
        stream.outbox.items.clear()
        stream.release()
        await say_error(conn, describe_failure(exc))
        return
    finally:
        stream.release()
    await conn.close(CLOSE_NORMAL)  # the slot is free before the client hears the end

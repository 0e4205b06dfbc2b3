"""A client of the live endpoint (`/v1/live` of `floatalk serve`): stream a recording as a
microphone would (paced at real time, or as fast as the server takes it) and keep what comes
back, the numbered JPEG frames, the `ready`, `stats` and `done` messages and the close code;
optionally write the frames as a video with the recording as its soundtrack.

    python -m floatalk.apps.live.client --url ws://127.0.0.1:8000/v1/live --token T \\
        --image portrait.png --audio speech.wav --out-dir frames --video live.mp4

Uses the `websockets` library (installed with floatalk[serve]); nothing of the server's web stack.
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

__all__ = ["LiveResult", "main", "stream", "write_frames"]


@dataclass
class LiveResult:
    """What a live session sent back."""

    ready: dict[str, Any] | None = None
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (k, JPEG) in the order received
    stats: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # the server's `error` message, if it sent one
    close_code: int | None = None
    timed_out: bool = False  # the server sent nothing for timeout_s
    first_frame_s: float | None = None  # the first audio sent -> the first frame received
    messages: list[str] = field(default_factory=list)  # every text message's type, in order

    @property
    def numbers(self) -> list[int]:
        """The frame numbers received, in order."""
        return [k for k, _ in self.frames]


def _pcm(wave: np.ndarray, fmt: str) -> bytes:
    if fmt == "s16le":
        return (np.clip(wave, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
    return wave.astype("<f4").tobytes()


def stream(
    url: str,
    wave: np.ndarray,
    sample_rate: int = 16000,
    *,
    image: str | Path | bytes | None = None,
    job: str | None = None,
    token: str | None = None,
    token_in_query: bool = False,
    options: dict[str, Any] | None = None,
    start: dict[str, Any] | None = None,
    fmt: str = "s16le",
    piece_ms: float = 40.0,
    realtime: bool = True,
    controls: Sequence[tuple[float, dict[str, Any]]] = (),
    origin: str | None = None,
    read_delay_s: float = 0.0,
    receive_buffer: int | None = None,
    timeout_s: float = 120.0,
    on_frame: Callable[[int, bytes], None] | None = None,
) -> LiveResult:
    """Run one live session: send `start` (the photo `image`, or the photo of job `job`, with
    `options`; `start` adds or overrides fields), stream (N,) float32 `wave` at `sample_rate` in
    pieces of `piece_ms` as `fmt` PCM (paced at real time when `realtime`), send each control of
    `controls` ((seconds into the audio, {control: value})) when its time comes, then `end`, and
    collect all the server sends until it closes.

    token: sent as `Authorization: Bearer` (or as `?token=` with token_in_query); origin: an
    Origin header to send (a browser's page); read_delay_s: a pause after each message received
    (a slow reader, for tests); receive_buffer: the socket's receive buffer in bytes (small: a
    slow link)."""
    from websockets.sync.client import connect

    url, headers = _authorised(url, token, token_in_query)
    message = _start_message(image, job, options, start, sample_rate, fmt)
    result = LiveResult()
    ready, finished = threading.Event(), threading.Event()
    first_sent = [0.0]
    sock = None if receive_buffer is None else _small_socket(url, receive_buffer, timeout_s)
    with connect(
        url,
        sock=sock,
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        compression=None,
        max_size=None,
        open_timeout=timeout_s,
        close_timeout=10,
    ) as ws:
        pacing = _Pacing(sample_rate, piece_ms, realtime, fmt, controls, timeout_s)
        sender = threading.Thread(
            target=pacing.send, args=(ws, wave, ready, finished, first_sent), name="live-client-audio", daemon=True
        )
        sender.start()
        ws.send(json.dumps(message))
        try:
            _receive(ws, result, first_sent, ready, timeout_s, read_delay_s, on_frame)
        finally:
            finished.set()
            ready.set()
        sender.join(timeout_s)
    return result


def _authorised(url: str, token: str | None, in_query: bool) -> tuple[str, dict[str, str]]:
    """The URL and headers that carry `token`: `Authorization: Bearer`, or `?token=` (in_query)."""
    if token is not None and in_query:
        return url + ("&" if "?" in url else "?") + "token=" + quote(token, safe=""), {}
    return url, ({"Authorization": f"Bearer {token}"} if token is not None else {})


def _start_message(
    image: str | Path | bytes | None,
    job: str | None,
    options: dict[str, Any] | None,
    start: dict[str, Any] | None,
    sample_rate: int,
    fmt: str,
) -> dict[str, Any]:
    """The `start` message: the photo (base64) or a job's id, the options, the audio's format."""
    message: dict[str, Any] = {"type": "start", "options": options or {}, "sample_rate": sample_rate, "format": fmt}
    if job is not None:
        message["job"] = job
    elif image is not None:
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        message["image"] = base64.b64encode(data).decode("ascii")
    message.update(start or {})
    return message


def _small_socket(url: str, receive_buffer: int, timeout_s: float) -> Any:
    """A connected TCP socket to `url`'s host with a receive buffer of `receive_buffer` bytes."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(timeout_s)
    sock.connect((parts.hostname, parts.port or (443 if parts.scheme == "wss" else 80)))
    return sock


@dataclass
class _Pacing:
    """How the audio goes out: pieces of piece_ms as fmt PCM, at real time or not, with the
    controls sent when their time in the audio comes."""

    sample_rate: int
    piece_ms: float
    realtime: bool
    fmt: str
    controls: Sequence[tuple[float, dict[str, Any]]]
    timeout_s: float

    def send(
        self, ws: Any, wave: np.ndarray, ready: threading.Event, finished: threading.Event, first_sent: list[float]
    ) -> None:
        """Once `ready`, send the audio, the controls and `end` (stop when `finished`)."""
        from websockets.exceptions import ConnectionClosed

        if not ready.wait(self.timeout_s) or finished.is_set():
            return
        rate = self.sample_rate
        piece = max(1, round(self.piece_ms * rate / 1000))
        pending = sorted(self.controls, key=lambda c: c[0])
        start_time = first_sent[0] = time.monotonic()
        try:
            for at in range(0, len(wave), piece):
                while pending and pending[0][0] * rate <= at:
                    ws.send(json.dumps({"type": "control", **pending.pop(0)[1]}))
                if self.realtime:
                    time.sleep(max(0.0, start_time + at / rate - time.monotonic()))
                if finished.is_set():
                    return
                ws.send(_pcm(wave[at : at + piece], self.fmt))
            ws.send(json.dumps({"type": "end"}))
        except ConnectionClosed:
            return


def _receive(
    ws: Any,
    result: LiveResult,
    first_sent: list[float],
    ready: threading.Event,
    timeout_s: float,
    read_delay_s: float,
    on_frame: Callable[[int, bytes], None] | None,
) -> None:
    """Collect what the server sends into `result` until it closes (or is silent for timeout_s)."""
    from websockets.exceptions import ConnectionClosed

    kinds = {"ready": "ready", "done": "done", "error": "error"}
    try:
        while True:
            received = ws.recv(timeout=timeout_s)
            if read_delay_s:
                time.sleep(read_delay_s)
            if isinstance(received, bytes):
                (k,) = struct.unpack("<I", received[:4])
                if result.first_frame_s is None:
                    result.first_frame_s = time.monotonic() - first_sent[0]
                result.frames.append((k, received[4:]))
                if on_frame is not None:
                    on_frame(k, received[4:])
                continue
            body = json.loads(received)
            kind = body.get("type")
            result.messages.append(kind)
            if kind == "stats":
                result.stats.append(body)
            elif kind in kinds:
                setattr(result, kinds[kind], body)
                if kind == "ready":
                    ready.set()
    except ConnectionClosed as closed:
        result.close_code = closed.rcvd.code if closed.rcvd is not None else None
    except TimeoutError:
        result.timed_out = True


def write_frames(
    result: LiveResult, out_dir: Path | None = None, video: Path | None = None, wave: np.ndarray | None = None
) -> None:
    """Save the frames received as `out_dir/frame_00000.jpg` ... (the number is k), and/or write
    them as `video` at the session's frame rate with `wave` (16 kHz) as its soundtrack (a frame
    that did not come shows the one before it)."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for k, jpeg in result.frames:
            (out_dir / f"frame_{k:05d}.jpg").write_bytes(jpeg)
    if video is None or not result.frames or result.ready is None:
        return
    import cv2

    from floatalk.render.writer import write_video

    decoded = {k: cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for k, jpeg in result.frames}
    count = (result.done or {}).get("frames") or max(decoded) + 1
    frames, last = [], decoded[min(decoded)]
    for k in range(count):
        last = decoded.get(k, last)
        frames.append(last)
    stack = np.ascontiguousarray(np.stack(frames))
    write_video(video, [stack], np.arange(len(stack)), int(result.ready["fps"]), wave, 16000)


def main(argv: list[str] | None = None) -> int:
    """Stream a recording to a live endpoint and save what comes back (see the module)."""
    p = argparse.ArgumentParser(prog="python -m floatalk.apps.live.client", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="ws://127.0.0.1:8000/v1/live", help="the live endpoint")
    p.add_argument("--token", help="the server's token (sent as Authorization: Bearer)")
    p.add_argument("--image", help="portrait photo")
    p.add_argument("--job", help="use the photo of this job instead of --image")
    p.add_argument("--audio", required=True, help="speech recording, any format PyAV reads (sent as 16 kHz s16le)")
    p.add_argument("--options", default="{}", help='generate options as JSON, e.g. \'{"emotion": "happy"}\'')
    p.add_argument("--chunk-ms", type=float, default=120.0, help="the session's chunk (default 120)")
    p.add_argument("--lookahead-ms", type=float, default=80.0, help="the session's lookahead (default 80)")
    p.add_argument("--fps", type=int, help="frames per second asked for (default: the model's)")
    p.add_argument("--piece-ms", type=float, default=40.0, help="audio per PCM message (default 40)")
    p.add_argument("--fast", action="store_true", help="send the audio as fast as the server takes it")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for any message (default 120; a server loads the model for the first session)",
    )
    p.add_argument("--out-dir", type=Path, help="save each frame as a JPEG here")
    p.add_argument("--video", type=Path, help="write the frames as a video (.mp4) with the recording as sound")
    args = p.parse_args(argv)
    if (args.image is None) == (args.job is None):
        p.error("give --image or --job")

    from websockets.exceptions import InvalidStatus, WebSocketException

    from floatalk.io.audio import load_audio

    wave = load_audio(args.audio, sample_rate=16000)
    try:
        result = stream(
            args.url,
            wave,
            image=args.image,
            job=args.job,
            token=args.token,
            options=json.loads(args.options),
            start={"chunk_ms": args.chunk_ms, "lookahead_ms": args.lookahead_ms}
            | ({"fps": args.fps} if args.fps else {}),
            piece_ms=args.piece_ms,
            realtime=not args.fast,
            timeout_s=args.timeout,
        )
    except InvalidStatus as exc:
        print(f"error: the server refused the session (HTTP {exc.response.status_code}).", file=sys.stderr)
        return 1
    except (OSError, WebSocketException) as exc:
        print(f"error: no session with {args.url} ({exc}).", file=sys.stderr)
        return 1
    write_frames(result, args.out_dir, args.video, wave)
    if result.timed_out:
        print(f"error: the server sent nothing for {args.timeout:g} s (see --timeout).", file=sys.stderr)
        return 1
    if result.error is not None:
        print(f"error: {result.error['message']} (close code {result.close_code})", file=sys.stderr)
        return 1
    last = result.stats[-1] if result.stats else {}
    print(
        f"ready: {json.dumps(result.ready)}\ndone: {json.dumps(result.done)}\nlast stats: {json.dumps(last)}\n"
        f"first frame {1000 * (result.first_frame_s or 0):.0f} ms after the first audio sent; "
        f"{len(result.frames)} frames received",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

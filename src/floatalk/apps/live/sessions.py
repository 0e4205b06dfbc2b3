"""The server's live sessions, without the web: their bounds (`LiveLimits`), the start message
read once into a checked `StartRequest`, and a bounded pool of model slots (`LivePool`, one
loaded pipeline per concurrent session). floatalk.apps.live.runner runs a session's compute and
floatalk.apps.live.stream drives it over a connection.

Every refusal is a `LiveError`: a WebSocket close code and one sentence. Nothing heavy (torch,
the model) is imported at the top.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.apps.jobs import JobOptions, option_field, parse_options
from floatalk.apps.uploads import Limits
from floatalk.errors import UserInputError, one_line
from floatalk.options import MAX_FPS

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline

__all__ = [
    "CLOSE_INTERNAL",
    "CLOSE_NAMES",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_LATER",
    "CLOSE_UNSUPPORTED",
    "FORMATS",
    "LiveError",
    "LiveLimits",
    "LivePool",
    "StartRequest",
    "parse_start",
]

log = logging.getLogger("floatalk.live")

# WebSocket close codes (RFC 6455, 7.4.1) and what the server means by each.
CLOSE_NORMAL = 1000  # the session ended after `done`
CLOSE_UNSUPPORTED = 1003  # audio the server cannot take: an unknown format or rate, bytes that are no samples
CLOSE_POLICY = 1008  # a message out of turn, malformed or out of range; no token; idle; too long; too slow
CLOSE_TOO_BIG = 1009  # a PCM message or a photo over the limit
CLOSE_INTERNAL = 1011  # the server failed
CLOSE_TRY_LATER = 1013  # every live session slot is taken

FORMATS = {"s16le": 2, "f32le": 4}
"""PCM sample formats a client may send: bytes per sample (mono, little-endian)."""

MIN_RATE, MAX_RATE = 8000, 192000
CHUNK_MS = (1.0, 2000.0)
LOOKAHEAD_MS = (0.0, 2000.0)


class LiveError(Exception):
    """A live session refused or ended: `code` is the WebSocket close code, the message one sentence."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LiveLimits:
    """Bounds on the server's live sessions (`floatalk serve --live-*`)."""

    max_sessions: int = 1  # sessions at once; each holds a loaded model
    idle_s: float = 30.0  # longest wait for a client's message, or for it to read one
    max_s: float = 600.0  # longest session, in wall time and in audio received
    max_chunk_s: float = 2.0  # most audio one PCM message may hold
    send_frames: int = 25  # frames waiting to be sent; one more drops the oldest
    jpeg_quality: int = 85
    stats_every_s: float = 1.0
    min_speed: float = 0.8  # a session whose measured speed is under this fraction of real time is refused
    warmup_s: float = 3.0  # longest the speed measurement at the start may take

    def __post_init__(self) -> None:
        if self.max_sessions < 0 or self.send_frames < 1 or not 1 <= self.jpeg_quality <= 100:
            raise ValueError("live limits out of range")
        if min(self.idle_s, self.max_s, self.max_chunk_s, self.stats_every_s) <= 0:
            raise ValueError("live limits must be positive")


@dataclass(frozen=True)
class StartRequest:
    """A checked start message."""

    job: JobOptions  # the options, parsed as the API parses a job's
    image: bytes | None  # the photo's file, or None when `image_path` names a job's
    image_path: Path | None
    sample_rate: int
    format: str
    chunk_ms: float
    lookahead_ms: float
    fps: int | None  # the frame rate asked for (None: the model's)

    def max_chunk_bytes(self, limits: LiveLimits) -> int:
        """The largest PCM message accepted: `limits.max_chunk_s` of audio, whole samples."""
        return int(limits.max_chunk_s * self.sample_rate) * FORMATS[self.format]


def _number(message: Mapping[str, Any], key: str, default: float, bounds: tuple[float, float]) -> float:
    value = message.get(key, default)
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise LiveError(CLOSE_POLICY, f"'{key}' must be a number from {low:g} to {high:g} (got {value!r}).")
    return float(value)


def _photo(message: Mapping[str, Any], upload: Limits) -> bytes:
    """The photo's bytes from a base64 string (a data: URL's prefix allowed)."""
    text = message["image"]
    if not isinstance(text, str) or not text:
        raise LiveError(CLOSE_POLICY, "'image' must be the photo file as a base64 string.")
    if text.startswith("data:") and "," in text:
        text = text.partition(",")[2]
    if len(text) * 3 // 4 > upload.max_upload_bytes:
        megabytes = upload.max_upload_bytes / 1024 / 1024
        raise LiveError(CLOSE_TOO_BIG, f"The photo is larger than {megabytes:g} MB, the largest this server accepts.")
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise LiveError(CLOSE_POLICY, "'image' is not valid base64.") from None


def _source(
    message: Mapping[str, Any], upload: Limits, job_image: Callable[[str], Path | None] | None
) -> tuple[bytes | None, Path | None]:
    """(photo bytes, None) from 'image' or (None, a job's photo path) from 'job': exactly one."""
    if ("image" in message) == ("job" in message):
        raise LiveError(CLOSE_POLICY, "'start' needs the photo: 'image' (base64) or 'job' (a job's id), one of them.")
    if "image" in message:
        return _photo(message, upload), None
    found = job_image(str(message["job"])) if job_image is not None else None
    if found is None:
        raise LiveError(CLOSE_POLICY, f"There is no job {str(message['job'])[:64]!r} whose photo could be used.")
    return None, found


def _live_options(message: Mapping[str, Any]) -> JobOptions:
    """The API's options, read once (`parse_options`), without what a live stream cannot do."""
    try:
        job = parse_options(message.get("options"))
    except UserInputError as exc:
        raise LiveError(CLOSE_POLICY, one_line(exc)) from None
    if job.paste_back:
        raise LiveError(CLOSE_POLICY, "Option 'paste_back' is not available live; the frames are the face's square.")
    if job.generate.timeline is not None:
        raise LiveError(CLOSE_POLICY, "Option 'timeline' is not available live; change the controls with 'control'.")
    return job


def _audio_format(message: Mapping[str, Any]) -> tuple[int, str]:
    """(sample rate, PCM format name) of the client's audio."""
    rate = message.get("sample_rate", 16000)
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        words = f"'sample_rate' must be a whole number of Hz from {MIN_RATE} to {MAX_RATE} (got {rate!r})."
        raise LiveError(CLOSE_UNSUPPORTED, words)
    fmt = message.get("format", "s16le")
    if fmt not in FORMATS:
        raise LiveError(CLOSE_UNSUPPORTED, f"The audio format {fmt!r} is not supported; send 's16le' or 'f32le'.")
    return rate, fmt


def _frame_rate(message: Mapping[str, Any], job: JobOptions) -> int | None:
    """The frame rate asked for ('fps' of the message, else of the options), None for the model's."""
    fps = message.get("fps")
    if fps is None and any(option_field(key)[0] == "fps" for key in job.given):
        fps = job.fps
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS):
        raise LiveError(CLOSE_POLICY, f"'fps' must be a whole number from 1 to {MAX_FPS} (got {fps!r}).")
    return fps


def parse_start(message: Any, upload: Limits, job_image: Callable[[str], Path | None] | None = None) -> StartRequest:
    """A client's first message (parsed JSON) read once into a `StartRequest` (LiveError otherwise).

    upload: the server's upload limits (the photo's size); job_image: a job's id -> its photo
    (None: unknown), for `{"job": id}` in place of `image`."""
    if not isinstance(message, dict) or message.get("type") != "start":
        raise LiveError(CLOSE_POLICY, "The first message must be a JSON object of type 'start'.")
    image, image_path = _source(message, upload, job_image)
    job = _live_options(message)
    rate, fmt = _audio_format(message)
    return StartRequest(
        job=job,
        image=image,
        image_path=image_path,
        sample_rate=rate,
        format=fmt,
        chunk_ms=_number(message, "chunk_ms", 120.0, CHUNK_MS),
        lookahead_ms=_number(message, "lookahead_ms", 80.0, LOOKAHEAD_MS),
        fps=_frame_rate(message, job),
    )


class LivePool:
    """Slots for the live sessions that may run at once, each with its own pipeline, loaded by
    `preload` or the first time a session uses the slot, and kept for the next."""

    def __init__(
        self,
        checkpoint: str = "bundled",
        device: str = "cpu",
        limits: LiveLimits | None = None,
        loader: Callable[[], FloatPipeline] | None = None,
    ) -> None:
        """loader: makes a slot's pipeline (default: `FloatPipeline.from_pretrained(checkpoint, device)`)."""
        self.checkpoint, self.device = checkpoint, device
        self.limits = limits or LiveLimits()
        self.loader = loader
        self._free = list(range(self.limits.max_sessions))
        self._pipes: dict[int, FloatPipeline] = {}
        self._lock = threading.Lock()
        self._loading = [threading.Lock() for _ in range(self.limits.max_sessions)]

    @property
    def active(self) -> int:
        """Sessions holding a slot now."""
        with self._lock:
            return self.limits.max_sessions - len(self._free)

    def acquire(self) -> int | None:
        """A free slot, or None when every one is taken."""
        with self._lock:
            return self._free.pop(0) if self._free else None

    def release(self, slot: int) -> None:
        """Give a slot back (its pipeline stays loaded)."""
        with self._lock:
            if slot not in self._free:
                self._free.append(slot)

    def pipeline(self, slot: int) -> FloatPipeline:
        """The slot's pipeline, loaded now if it was not (call it from a thread of its own)."""
        with self._loading[slot]:
            pipe = self._pipes.get(slot)
            if pipe is None:
                if self.loader is not None:
                    pipe = self.loader()
                else:
                    from floatalk.pipeline import FloatPipeline

                    pipe = FloatPipeline.from_pretrained(self.checkpoint, device=self.device)
                self._pipes[slot] = pipe
            return pipe

    def preload(self) -> threading.Thread:
        """Load every slot's pipeline in a thread (started and returned), so that the first
        sessions do not wait for it; a failure is left for a session to report."""

        def load() -> None:
            for slot in range(self.limits.max_sessions):
                try:
                    self.pipeline(slot)
                except Exception as exc:  # noqa: BLE001 - the session that needs the slot says why
                    log.warning("a live session slot could not load the model: %s", one_line(exc))
                    return

        thread = threading.Thread(target=load, name="floatalk-live-load", daemon=True)
        thread.start()
        return thread


CLOSE_NAMES = {
    CLOSE_NORMAL: "normal",
    CLOSE_UNSUPPORTED: "unsupported data",
    CLOSE_POLICY: "policy violation",
    CLOSE_TOO_BIG: "message too big",
    CLOSE_INTERNAL: "internal error",
    CLOSE_TRY_LATER: "try again later",
}
"""The close codes the server uses, by name."""

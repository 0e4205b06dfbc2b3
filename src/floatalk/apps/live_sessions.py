"""The server's live sessions, without the web: the start message read once into a checked
`StartRequest`, a bounded pool of model slots (`LivePool`, one loaded pipeline per concurrent
session) and `LiveRunner`, which runs one session's compute (the photo, the warm-up that
measures the speed, pushes, controls, the close) in a thread of its own with one torch thread,
and turns frames into numbered JPEGs. floatalk.apps.live_stream drives it over a connection.

Every refusal is a `LiveError`: a WebSocket close code and one sentence. Nothing heavy (torch,
the model, OpenCV) is imported at the top.
"""

from __future__ import annotations

import base64
import binascii
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from floatalk.apps.jobs import JobOptions, option_field, parse_options
from floatalk.apps.uploads import Limits, UploadError, check_face, check_image
from floatalk.errors import UserInputError, one_line
from floatalk.options import MAX_FPS

if TYPE_CHECKING:
    from floatalk.live import LiveSession
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
    "Batch",
    "LiveError",
    "LiveLimits",
    "LivePool",
    "LiveRunner",
    "StartRequest",
    "describe_failure",
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


def parse_start(message: Any, upload: Limits, job_image: Callable[[str], Path | None] | None = None) -> StartRequest:
    """A client's first message (parsed JSON) read once into a `StartRequest` (LiveError otherwise).

    upload: the server's upload limits (the photo's size); job_image: a job's id -> its photo
    (None: unknown), for `{"job": id}` in place of `image`."""
    if not isinstance(message, dict) or message.get("type") != "start":
        raise LiveError(CLOSE_POLICY, "The first message must be a JSON object of type 'start'.")
    if ("image" in message) == ("job" in message):
        raise LiveError(CLOSE_POLICY, "'start' needs the photo: 'image' (base64) or 'job' (a job's id), one of them.")
    image, image_path = None, None
    if "image" in message:
        image = _photo(message, upload)
    else:
        found = job_image(str(message["job"])) if job_image is not None else None
        if found is None:
            raise LiveError(CLOSE_POLICY, f"There is no job {str(message['job'])[:64]!r} whose photo could be used.")
        image_path = found
    try:
        job = parse_options(message.get("options"))
    except UserInputError as exc:
        raise LiveError(CLOSE_POLICY, one_line(exc)) from None
    if job.paste_back:
        raise LiveError(CLOSE_POLICY, "Option 'paste_back' is not available live; the frames are the face's square.")
    if job.generate.timeline is not None:
        raise LiveError(CLOSE_POLICY, "Option 'timeline' is not available live; change the controls with 'control'.")
    rate = message.get("sample_rate", 16000)
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        words = f"'sample_rate' must be a whole number of Hz from {MIN_RATE} to {MAX_RATE} (got {rate!r})."
        raise LiveError(CLOSE_UNSUPPORTED, words)
    fmt = message.get("format", "s16le")
    if fmt not in FORMATS:
        raise LiveError(CLOSE_UNSUPPORTED, f"The audio format {fmt!r} is not supported; send 's16le' or 'f32le'.")
    fps = message.get("fps")
    if fps is None and any(option_field(key)[0] == "fps" for key in job.given):
        fps = job.fps
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS):
        raise LiveError(CLOSE_POLICY, f"'fps' must be a whole number from 1 to {MAX_FPS} (got {fps!r}).")
    return StartRequest(
        job=job,
        image=image,
        image_path=image_path,
        sample_rate=rate,
        format=fmt,
        chunk_ms=_number(message, "chunk_ms", 120.0, CHUNK_MS),
        lookahead_ms=_number(message, "lookahead_ms", 80.0, LOOKAHEAD_MS),
        fps=fps,
    )


class LivePool:
    """Slots for the live sessions that may run at once, each with its own pipeline, loaded the
    first time a session uses the slot and kept for the next."""

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
        """The slot's pipeline, loaded now if it was not (call it from the session's thread)."""
        pipe = self._pipes.get(slot)
        if pipe is None:
            if self.loader is not None:
                pipe = self.loader()
            else:
                from floatalk.pipeline import FloatPipeline

                pipe = FloatPipeline.from_pretrained(self.checkpoint, device=self.device)
            self._pipes[slot] = pipe
        return pipe


@dataclass
class Batch:
    """What one push (or the close) made: numbered JPEGs in order, and how long it took."""

    frames: list[tuple[int, bytes]]  # (output frame number k, JPEG)
    made: int  # output frames made (all of `frames`)
    compute_s: float  # the session's steps and the JPEG encoding


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)  # per thread: a live step is many small operations (docs/LIVE.md, Threads)


class LiveRunner:
    """One live session's compute, run in a thread of its own (`call`): open the session on the
    photo and measure its speed, push PCM bytes, change controls, close. Output frame k shows the
    audio at k / fps s; at a lower `fps` than the model's, frame k is the model frame of that time
    (as `floatalk generate --fps` picks them)."""

    def __init__(self, pool: LivePool, slot: int, request: StartRequest, upload: Limits, incoming: Path) -> None:
        self.pool, self.slot, self.request = pool, slot, request
        self.upload, self.incoming = upload, incoming
        self.limits = pool.limits
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="floatalk-live", initializer=_one_torch_thread)
        self.last: Future | None = None  # the last call into the thread
        self.session: LiveSession | None = None
        self.model_fps = 25
        self.fps = 25
        self.resampler: Any = None
        self.made = 0  # output frames made so far

    # ---------------------------------------------------------------------- in the event loop
    def call(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run fn(*args) in the session's thread (one at a time, in order)."""
        self.last = self.executor.submit(fn, *args)
        return self.last

    def shutdown(self) -> None:
        """End the thread and give the slot back: at once when nothing runs there, else once
        what runs there now has finished (the event loop never waits for it)."""
        if self.last is None or self.last.done():
            self.executor.shutdown(wait=False)
            self.pool.release(self.slot)
            return
        self.executor.submit(lambda: None).add_done_callback(lambda _: self.pool.release(self.slot))
        self.executor.shutdown(wait=False)

    # ---------------------------------------------------------------------- in the session's thread
    def open(self) -> dict[str, Any]:
        """Load the slot's model (once), read the photo, open the session and measure its speed;
        returns the `ready` message (LiveError when it cannot start)."""
        try:
            return self._open()
        except (LiveError, UploadError) as exc:
            raise _as_live(exc) from None
        except UserInputError as exc:
            raise LiveError(CLOSE_POLICY, one_line(exc)) from None

    def _open(self) -> dict[str, Any]:
        request = self.request
        pipe = self.pool.pipeline(self.slot)
        options = request.job.generate
        self.model_fps = pipe.fps
        if request.fps is not None and request.fps > pipe.fps:
            raise LiveError(CLOSE_POLICY, f"'fps' may be at most the model's {pipe.fps} frames per second live.")
        self.fps = request.fps or pipe.fps
        prepared = self._prepare(pipe, options)
        session = pipe.live(prepared, options, chunk_ms=request.chunk_ms, lookahead_ms=request.lookahead_ms)
        speed = self._measure(pipe, session)
        measured = self.fps * speed
        if speed < self.limits.min_speed:
            lower = " ask for a lower 'fps' in 'start' or" if self.fps > 1 else ""
            raise LiveError(
                CLOSE_POLICY,
                f"This server makes {measured:.1f} of the {self.fps} frames per second asked ({speed:.2f} of real "
                f"time), too slow for a live session;{lower} use a faster machine or model.",
            )
        if request.sample_rate != pipe.sample_rate:
            import soxr

            self.resampler = soxr.ResampleStream(request.sample_rate, pipe.sample_rate, 1, dtype="float32")
        self.session = session
        return {
            "type": "ready",
            "fps": self.fps,
            "width": pipe.image_size,
            "height": pipe.image_size,
            "chunk_ms": session.chunk_ms,
            "lookahead_ms": session.lookahead_ms,
            "algorithmic_latency_ms": session.algorithmic_latency_ms,
            "realtime": speed >= 1.0,
            "measured_fps": round(measured, 1),
            "model_fps": pipe.fps,
            "sample_rate": request.sample_rate,
            "format": request.format,
            "max_chunk_bytes": request.max_chunk_bytes(self.limits),
            "idle_s": self.limits.idle_s,
            "max_s": self.limits.max_s,
        }

    def _prepare(self, pipe: FloatPipeline, options: Any) -> Any:
        """The photo checked as an upload is (`check_image`, and the face asked for) and cut."""
        from floatalk.pipeline import prepare_image

        path = self.request.image_path
        temporary = None
        if self.request.image is not None:
            with tempfile.NamedTemporaryFile(dir=self.incoming, prefix="live-", suffix=".img", delete=False) as file:
                file.write(self.request.image)
            path = temporary = Path(file.name)
        try:
            assert path is not None
            check_image(path, self.upload)
            if options.crop and options.face is not None:
                check_face(path, options.detector, options.face)
            return prepare_image(path, pipe.image_size, **options.image_settings())
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)

    def _measure(self, pipe: FloatPipeline, session: LiveSession) -> float:
        """The session's speed as a fraction of real time at the frame rate asked: a probe
        session on the same photo steps through quiet noise (up to 6 steps or `warmup_s`), and a
        frame is encoded as JPEG. Warms the model up too."""
        from floatalk.live import LiveSession

        timing = (session.chunk_ms, session.lookahead_ms)
        probe = LiveSession(pipe, session.source, session.options, *timing, editor=session.controls.editor)
        rng = np.random.default_rng(0)
        spf = pipe.sample_rate // pipe.fps
        piece = (probe.lookahead or 0) + probe.step_frames * spf
        steps: list[float] = []
        frame = None
        deadline = time.perf_counter() + self.limits.warmup_s
        while len(steps) < 6 and (not steps or time.perf_counter() < deadline):
            out = probe.push((rng.standard_normal(piece) * 0.01).astype(np.float32))
            steps += out.compute_s
            if len(out):
                frame = out.frames[0]
            piece = probe.step_frames * spf
        # The first steps each meet a new shape (the committed context grows to L' frames): the
        # last three tell the steady rate.
        per_frame = float(np.median(steps[-3:])) / probe.step_frames
        jpeg_s = 0.0
        if frame is not None:
            start = time.perf_counter()
            for _ in range(3):
                self._jpeg(frame)
            jpeg_s = (time.perf_counter() - start) / 3
        second = self.model_fps * per_frame + self.fps * jpeg_s  # compute per second of audio
        return 1.0 / max(second, 1e-9)

    def _jpeg(self, frame: np.ndarray) -> bytes:
        import cv2

        ok, data = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.limits.jpeg_quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode a frame as JPEG")
        return data.tobytes()

    def _samples(self, data: bytes) -> np.ndarray:
        """PCM bytes of the start's format -> float32 samples at the model's rate."""
        from floatalk.live import check_pcm, pcm_from_s16le

        size = FORMATS[self.request.format]
        if len(data) % size:
            raise LiveError(
                CLOSE_UNSUPPORTED, f"{self.request.format} audio must hold whole {size}-byte samples (got {len(data)})."
            )
        if self.request.format == "s16le":
            wave = pcm_from_s16le(data)
        else:
            wave = np.frombuffer(data, dtype="<f4").astype(np.float32)
            if not np.all(np.isfinite(wave)):
                raise LiveError(CLOSE_UNSUPPORTED, "The f32le audio holds NaN or infinite samples.")
        wave = check_pcm(wave)
        if self.resampler is not None:
            wave = self.resampler.resample_chunk(wave, last=False)
        return np.ascontiguousarray(wave, dtype=np.float32)

    def _frames(self, out: Any) -> list[tuple[int, bytes]]:
        """A session's output as numbered JPEGs at the output frame rate."""
        frames = []
        for frame, j in zip(out.frames, out.index):
            k = -(-int(j) * self.fps // self.model_fps)  # the first output frame at or after model frame j
            if (k * self.model_fps) // self.fps == j:
                frames.append((k, self._jpeg(frame)))
        self.made += len(frames)
        return frames

    def push(self, data: bytes) -> Batch:
        """Push one PCM message; returns the frames it made ready."""
        assert self.session is not None
        start = time.perf_counter()
        try:
            out = self.session.push(self._samples(data))
        except UserInputError as exc:
            raise LiveError(CLOSE_UNSUPPORTED, one_line(exc)) from None
        frames = self._frames(out)
        return Batch(frames, len(frames), time.perf_counter() - start)

    def update(self, controls: dict[str, Any]) -> None:
        """Apply checked controls (floatalk.live.controls.check_controls) from the next step on."""
        assert self.session is not None
        try:
            self.session.update(**controls)
        except UserInputError as exc:
            raise LiveError(CLOSE_POLICY, one_line(exc)) from None

    def close(self) -> Batch:
        """The frames of the rest of the audio; ends the session."""
        assert self.session is not None
        start = time.perf_counter()
        if self.resampler is not None:
            tail = self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                self.session.push(np.ascontiguousarray(tail, dtype=np.float32))
        frames = self._frames(self.session.close())
        return Batch(frames, len(frames), time.perf_counter() - start)


def _as_live(exc: LiveError | UploadError) -> LiveError:
    if isinstance(exc, LiveError):
        return exc
    return LiveError(CLOSE_POLICY, str(exc).replace("The 'image' upload", "The photo"))


def describe_failure(exc: BaseException) -> LiveError:
    """Any exception of a session as the LiveError its client is told (an unexpected one is
    logged and named as internal)."""
    if isinstance(exc, LiveError):
        return exc
    if isinstance(exc, UserInputError):
        return LiveError(CLOSE_POLICY, one_line(exc))
    log.error("a live session failed", exc_info=exc)
    return LiveError(CLOSE_INTERNAL, f"Internal error ({one_line(exc, with_type=True)}).")


CLOSE_NAMES = {
    CLOSE_NORMAL: "normal",
    CLOSE_UNSUPPORTED: "unsupported data",
    CLOSE_POLICY: "policy violation",
    CLOSE_TOO_BIG: "message too big",
    CLOSE_INTERNAL: "internal error",
    CLOSE_TRY_LATER: "try again later",
}
"""The close codes the server uses, by name."""

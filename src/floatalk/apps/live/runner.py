"""One live session's compute (`LiveRunner`): the photo checked and cut, the session opened and
its speed measured, PCM bytes pushed, controls changed, the close; all in a thread of its own
with one torch thread, frames turned into numbered JPEGs. floatalk.apps.live.stream calls it
from the event loop, which never waits on it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from floatalk.apps.live.sessions import (
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_UNSUPPORTED,
    FORMATS,
    LiveError,
    LivePool,
    StartRequest,
)
from floatalk.apps.uploads import Limits, UploadError, check_face, check_image
from floatalk.errors import UserInputError, one_line

if TYPE_CHECKING:
    from floatalk.live import LiveSession
    from floatalk.pipeline import FloatPipeline

__all__ = ["Batch", "LiveRunner", "describe_failure"]

log = logging.getLogger("floatalk.live")


@dataclass
class Batch:
    """What one push (or the close) made: numbered JPEGs in order, and how long it took."""

    frames: list[tuple[int, bytes]]  # (output frame number k, JPEG)
    made: int  # output frames made (all of `frames`)
    compute_s: float  # the session's steps and the JPEG encoding


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)  # per thread, until the session picks its own (docs/LIVE.md, Threads)


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
        self._pick_threads(pipe, session)
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

    def _pick_threads(self, pipe: FloatPipeline, session: LiveSession) -> None:
        """On a CPU, run this session's thread on the torch thread count its step runs fastest on
        now: one, or its share of the cores (`floatalk.live.threads`; sessions at once share them)."""
        import os

        from floatalk.live.threads import fastest_threads

        if pipe.device.type != "cpu":
            return
        share = max(1, (os.cpu_count() or 1) // self.limits.max_sessions)
        fastest_threads(session, (1, share))

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

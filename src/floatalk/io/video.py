"""Writing H.264 + AAC videos (mp4, mov, mkv) with PyAV, atomically, and small helpers to read them back.

`VideoWriter` encodes frames as they arrive into a hidden temporary file next to the target and
renames it onto the target only when everything succeeded, so an interrupted or failed run never
leaves a half-written video behind (nor damages an existing file of the same name).
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from floatalk.errors import UserInputError
from floatalk.fileio import check_writable, commit_temporary, discard_temporary, temporary_beside, write_error
from floatalk.io.image import MAX_IMAGE_SIDE, check_image_size, require_file

__all__ = [
    "CONTAINERS",
    "VideoWriter",
    "check_output_path",
    "container_for",
    "open_video",
    "probe_video",
    "read_video_frames",
]

CONTAINERS: dict[str, str] = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
"""Output file extension -> FFmpeg container; every one holds H.264 video and AAC sound."""

_AUDIO_BIT_RATE = 128_000
_AUDIO_CHUNK = 1024  # AAC frame size
_X264_PRESET = "medium"
_LOOKAHEAD_PIXELS = 1920 * 1088  # frames up to this size get x264's default lookahead


def _lookahead_frames(pixels: int) -> int | None:
    """x264's rate-control lookahead for frames of `pixels` (None: its default of 40 frames).

    x264 keeps every lookahead frame at full size with its half-pixel planes, about 4.5 bytes a
    pixel: 40 frames of a 4000 x 4000 photo (--paste-back) held 2.5 GB. Above about 2 MP the
    lookahead is cut so that it holds about as many pixels as 40 frames of 1080p, and at least
    10 frames; smaller videos are encoded exactly as before.
    """
    if pixels <= _LOOKAHEAD_PIXELS:
        return None
    return max(10, round(40 * _LOOKAHEAD_PIXELS / pixels))


def container_for(path: str | os.PathLike) -> str:
    """The container format for an output file name, from its extension (case-insensitive).

    Raises UserInputError for a name without one of the extensions in `CONTAINERS`."""
    path = Path(os.fspath(path))
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        shown = f"'{suffix}'" if suffix else "no extension"
        raise UserInputError(
            f"Cannot write '{path}': its name has {shown}; name the video .mp4, .mov or .mkv (H.264 + AAC)."
        )
    return CONTAINERS[suffix]


def check_output_path(path: str | os.PathLike) -> Path:
    """`path` as a Path if a video can be written there (known extension, existing writable
    folder, not a folder itself); otherwise a one-sentence UserInputError."""
    container_for(path)
    return check_writable(path)


class VideoWriter:
    """Encode RGB frames (and optionally a mono soundtrack) into an H.264/AAC mp4.

    Use as a context manager::

        with VideoWriter("out.mp4", fps=25, audio=wave, sample_rate=16000) as writer:
            writer.write(frames)  # (H, W, 3) or (n, H, W, 3) uint8 RGB, any number of calls

    Frames are encoded as soon as they are written. The file appears at `path` only when the
    block exits normally; on any exception (KeyboardInterrupt included) the temporary file is
    removed and `path` is left as it was. Odd widths/heights are padded by one replicated pixel
    (yuv420p needs even sizes). `audio` is float32 mono at `sample_rate` Hz; it is trimmed to the
    video's duration (frames / fps) and encoded as AAC. `metadata`: container tags to write.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: int = 25,
        audio: np.ndarray | None = None,
        sample_rate: int = 16000,
        crf: int = 18,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(os.fspath(path))
        self.metadata = dict(metadata or {})  # container tags, e.g. floatalk.io.provenance's mark
        if isinstance(fps, float) and fps.is_integer():
            fps = int(fps)
        if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or fps <= 0:
            raise UserInputError(f"The frame rate must be a positive integer, got {fps!r}.")
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
            raise UserInputError(f"The H.264 quality (crf) must be an integer in 0..51, got {crf!r}.")
        self.fps = int(fps)
        self.crf = int(crf)
        self.sample_rate = int(sample_rate)
        self.audio = self._check_audio(audio, sample_rate)
        self.container_format = container_for(self.path)
        check_output_path(self.path)
        try:
            self._temp = temporary_beside(self.path)
        except OSError as exc:
            raise UserInputError(f"Cannot write '{self.path}': {exc.strerror or exc}.") from exc
        self._container = None
        self._video = None
        self._audio_stream = None
        self._size: tuple[int, int] | None = None  # (height, width) of the frames written
        self._n_frames = 0
        self._audio_done = 0  # samples already sent to the AAC encoder
        self._audio_rate = self.sample_rate
        self._state = "open"

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its hidden temporary file behind.
        if getattr(self, "_state", None) == "open":
            with contextlib.suppress(Exception):
                self.abort()

    @property
    def n_frames(self) -> int:
        """Number of frames written so far."""
        return self._n_frames

    # -- writing -------------------------------------------------------------------------------

    @staticmethod
    def _check_audio(audio: np.ndarray | None, sample_rate: int) -> np.ndarray | None:
        if audio is None:
            return None
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise UserInputError(f"The audio sample rate must be a positive integer, got {sample_rate!r}.")
        wave = np.asarray(audio)
        if wave.ndim == 2 and wave.shape[1] == 1:
            wave = wave[:, 0]
        if wave.ndim != 1 or not (np.issubdtype(wave.dtype, np.floating) or wave.dtype == np.int16):
            raise UserInputError(
                f"The soundtrack must be a 1-D float array of samples, got shape {wave.shape} and dtype {wave.dtype}."
            )
        if wave.dtype == np.int16:
            return wave.astype(np.float32) / np.float32(32768.0)
        wave = np.nan_to_num(wave.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        return np.ascontiguousarray(wave)

    def _open(self, height: int, width: int) -> None:
        import av

        self._size = (height, width)
        options = {"movflags": "+faststart"} if self.container_format in ("mp4", "mov") else {}
        self._container = av.open(os.fspath(self._temp), mode="w", format=self.container_format, options=options)
        self._container.metadata.update(self.metadata)
        video = self._container.add_stream("libx264", rate=self.fps)
        video.width = width + width % 2
        video.height = height + height % 2
        video.pix_fmt = "yuv420p"
        video.time_base = Fraction(1, self.fps)
        video.codec_context.time_base = Fraction(1, self.fps)
        video.codec_context.colorspace = 1  # AVCOL_SPC_BT709, matches the conversion in _encode
        video.codec_context.color_primaries = 1  # BT.709 (= sRGB primaries)
        video.codec_context.color_trc = 1  # BT.709
        video.codec_context.color_range = 1  # limited ("tv") range
        options = {"crf": str(self.crf), "preset": _X264_PRESET}
        lookahead = _lookahead_frames(video.width * video.height)
        if lookahead is not None:
            options["x264-params"] = f"rc-lookahead={lookahead}"
        video.options = options
        self._video = video
        if self.audio is not None and self.audio.size:
            codec = av.Codec("aac", "w")
            rates = codec.audio_rates or ()
            if rates and self.sample_rate not in rates:
                self._audio_rate = 48000
            stream = self._container.add_stream("aac", rate=self._audio_rate)
            stream.layout = "mono"
            stream.bit_rate = _AUDIO_BIT_RATE
            stream.time_base = Fraction(1, self._audio_rate)
            self._audio_stream = stream
            if self._audio_rate != self.sample_rate:
                import soxr

                self.audio = soxr.resample(self.audio, self.sample_rate, self._audio_rate, quality="HQ")

    def write(self, frames: np.ndarray) -> None:
        """Encode one (H, W, 3) or a batch of (n, H, W, 3) uint8 RGB frames; all must share H, W."""
        if self._state != "open":
            raise RuntimeError(f"VideoWriter for '{self.path}' is already {self._state}.")
        batch = np.asarray(frames)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[3] != 3 or batch.dtype != np.uint8:
            raise UserInputError(
                f"Video frames must be (H, W, 3) or (n, H, W, 3) uint8 RGB, got shape {batch.shape} "
                f"and dtype {batch.dtype}."
            )
        if batch.shape[0] == 0:
            return
        height, width = batch.shape[1:3]
        if height < 2 or width < 2:
            raise UserInputError(f"Video frames must be at least 2x2 pixels, got {width}x{height}.")
        if max(height, width) > MAX_IMAGE_SIDE:
            raise UserInputError(
                f"Cannot write '{self.path}': its frames would be {width}x{height} pixels; H.264 allows at most "
                f"{MAX_IMAGE_SIDE} a side."
            )
        try:
            if self._container is None:
                self._open(height, width)
            elif (height, width) != self._size:
                raise UserInputError(
                    f"Video frame size changed from {self._size[1]}x{self._size[0]} to {width}x{height}."
                )
            for frame in batch:
                self._encode(frame)
            self._encode_audio(final=False)
        except BaseException as exc:
            self._fail(exc)

    def _encode(self, frame: np.ndarray) -> None:
        import av

        pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        yuv = rgb.reformat(
            format="yuv420p",
            dst_colorspace="itu709",
            dst_color_range="MPEG",
        )
        yuv.pts = self._n_frames
        yuv.time_base = Fraction(1, self.fps)
        for packet in self._video.encode(yuv):
            self._container.mux(packet)
        self._n_frames += 1

    def _encode_audio(self, final: bool) -> None:
        """Send audio up to the current video time (whole AAC frames only unless `final`)."""
        import av

        if self._audio_stream is None:
            return
        target = min(len(self.audio), round(self._n_frames * self._audio_rate / self.fps))
        if not final:
            target = self._audio_done + (target - self._audio_done) // _AUDIO_CHUNK * _AUDIO_CHUNK
        while self._audio_done < target:
            end = min(target, self._audio_done + _AUDIO_CHUNK)
            chunk = self.audio[self._audio_done : end]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = self._audio_rate
            frame.pts = self._audio_done
            frame.time_base = Fraction(1, self._audio_rate)
            for packet in self._audio_stream.encode(frame):
                self._container.mux(packet)
            self._audio_done = end

    # -- finishing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Flush the encoders, finish the file and move it onto `path`."""
        if self._state == "closed":
            return
        if self._state != "open":
            raise RuntimeError(f"VideoWriter for '{self.path}' was aborted.")
        try:
            if self._container is None:
                raise UserInputError(f"Cannot write '{self.path}': no video frames were given.")
            self._encode_audio(final=True)
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._audio_stream is not None:
                for packet in self._audio_stream.encode(None):
                    self._container.mux(packet)
            self._container.close()
            self._container = None
            commit_temporary(self._temp, self.path)
        except BaseException as exc:
            self._fail(exc)
        self._state = "closed"

    def _fail(self, exc: BaseException) -> None:
        """Abort, then raise `exc`, or one sentence naming the video when the system refused the write."""
        error = write_error(exc, self.path)  # before abort: a full disk is seen while the file fills it
        self.abort()
        if error is None:
            raise exc
        raise error from exc

    def abort(self) -> None:
        """Stop writing and delete the temporary file; `path` is left untouched."""
        if self._state == "closed":
            return
        self._state = "aborted"
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):  # the file is being discarded anyway
                container.close()
        discard_temporary(self._temp)


# ----------------------------------------------------------------------------------------------
# reading back


def open_video(path: str | os.PathLike):
    """(the checked path, an open PyAV container) for a file with a video stream; UserInputError
    (one sentence) for a missing, undecodable or still-image file."""
    import av

    source = require_file(path, "video")
    try:
        container = av.open(os.fspath(source), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UserInputError(f"Could not read video '{source}': not a video file FFmpeg can decode.") from exc
    if not container.streams.video:
        container.close()
        raise UserInputError(f"Could not read video '{source}': the file has no video stream.")
    # FFmpeg opens a photo as a one-frame "video" through its image demuxers (image2, png_pipe, ...).
    name = container.format.name or ""
    if name == "image2" or name.endswith("_pipe"):
        container.close()
        raise UserInputError(f"Could not read video '{source}': it is a still image, not a video.")
    codec = container.streams.video[0].codec_context
    try:  # frames of an absurd size are refused before one is decoded, as photos are
        check_image_size(codec.width, codec.height, f"Video '{source}'", minimum=1)
    except UserInputError:
        container.close()
        raise
    return source, container


def probe_video(path: str | os.PathLike) -> dict:
    """Describe a video file.

    Returns {"video_codec", "audio_codec" (None without audio), "width", "height", "n_frames",
    "fps", "duration" (s, video stream), "audio_duration" (s, None without audio)}.
    """
    import av

    source, container = open_video(path)
    with container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = video.average_rate or video.base_rate or video.guessed_rate
        fps = float(rate) if rate else 0.0
        n_frames = int(video.frames or 0)
        if n_frames == 0:
            try:
                n_frames = sum(1 for packet in container.demux(video) if packet.size)
            except av.FFmpegError as exc:
                raise UserInputError(f"Could not read video '{source}': the file is damaged.") from exc
        if video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        else:
            duration = n_frames / fps if fps else 0.0
        audio_duration = None
        if audio is not None and audio.duration is not None and audio.time_base is not None:
            audio_duration = float(audio.duration * audio.time_base)
        return {
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name if audio is not None else None,
            "width": int(video.codec_context.width),
            "height": int(video.codec_context.height),
            "n_frames": n_frames,
            "fps": fps,
            "duration": duration,
            "audio_duration": audio_duration,
        }


def read_video_frames(path: str | os.PathLike) -> np.ndarray:
    """Decode every frame of a video as an (n, H, W, 3) uint8 RGB array (all held in memory)."""
    import av

    source, container = open_video(path)
    frames = []
    try:
        with container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
    except av.FFmpegError as exc:
        raise UserInputError(f"Could not read video '{source}': the file is damaged.") from exc
    if not frames:
        raise UserInputError(f"Could not read video '{source}': it has no frames.")
    return np.stack(frames)

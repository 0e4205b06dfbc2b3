"""Checks for files that clients upload: sizes, file names, and that an image or a recording
really is one (decoded, within the pixel and duration limits) before a job is queued.

Every check raises `UploadError` with an HTTP status and one sentence that never names a path
on the server. Heavy imports (PIL, PyAV, numpy) happen inside the functions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from floatalk.apps.jobs import JobOptions
    from floatalk.timeline import Timeline

__all__ = [
    "Limits",
    "UploadError",
    "check_audio",
    "check_face",
    "check_file_name",
    "check_image",
    "check_uploads",
    "check_video",
    "read_image",
]

_IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif"}


_RECORDING = {"audio": "The recording"}
"""How a sentence names a job's recording by its part (a scene's voices by their part names)."""


class UploadError(Exception):
    """A refused upload: `status` is the HTTP status to answer, the message one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What the server accepts in one request."""

    max_upload_bytes: int = 50 * 1024 * 1024  # the whole request body
    max_audio_seconds: float = 60.0
    max_image_pixels: int = 4096 * 4096
    max_options_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0  # a request's headers, from the connection's start or the last answer
    body_timeout_s: float = 300.0  # a request's whole body, from its start (50 MB at 1.4 Mbit/s)
    max_uploads: int = 8  # request bodies received at once

    def __post_init__(self) -> None:
        numbers = (self.max_upload_bytes, self.max_audio_seconds, self.max_image_pixels, self.max_uploads)
        if min(numbers) <= 0 or self.header_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError("upload limits must be positive")


def check_file_name(part: str, name: str | None) -> None:
    """Refuse an upload's file name that is path-like (a folder part, an absolute path, NUL,
    control characters, '.' or '..'); the name is never used for storage either way."""
    if name is None or name == "":
        return
    if any(c in name for c in "/\\") or name in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UploadError(400, f"The file name of part '{part}' must be a plain file name, not a path ({name!r}).")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def check_image(path: Path, limits: Limits) -> str:
    """Check that `path` is an image floatalk can read within the pixel limit (its size is read
    from the header before anything is decoded); returns the suffix for its format."""
    return read_image(path, limits)[0]


def read_image(path: Path, limits: Limits) -> tuple[str, np.ndarray]:
    """`check_image`'s work, also returning the decoded pixels ((H, W, 3) uint8) so that a job's
    other checks need not decode the photo again: (suffix, pixels)."""
    from PIL import Image, UnidentifiedImageError

    from floatalk.errors import UserInputError
    from floatalk.io.image import load_image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                fmt = image.format or ""
                if width * height > limits.max_image_pixels:
                    raise UploadError(
                        400,
                        f"The image is {width}x{height} pixels ({_megapixels(width * height)}); the limit is "
                        f"{_megapixels(limits.max_image_pixels)}.",
                    )
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(400, "The image has far more pixels than this server accepts.") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise UploadError(400, "The 'image' upload is not an image this server can read.") from None
        try:
            pixels = load_image(path)
        except (UserInputError, OSError, ValueError, SyntaxError):
            raise UploadError(400, "The 'image' upload is not an image this server can read.") from None
    return _IMAGE_SUFFIXES.get(fmt, ".img"), pixels


def check_audio(path: Path, limits: Limits, timeline: Timeline | None = None, part: str = "audio") -> str:
    """Check that `path` holds sound floatalk can read and no longer than the duration limit
    (counted while decoding, once, so a header cannot lie about it), and that a job's checked
    `timeline` (or None) starts within it; returns a suffix for storage. part: the upload's name
    in the sentences (a scene's `voice1` ...)."""
    import av

    from floatalk.errors import UserInputError

    bad = UploadError(400, f"The '{part}' upload is not a sound recording this server can read.")
    what = _RECORDING.get(part, f"The '{part}' recording")
    seconds = 0.0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise bad
            fmt = container.format.name.split(",")[0]
            for frame in container.decode(audio=0):
                seconds += frame.samples / (frame.sample_rate or 1)
                if seconds > limits.max_audio_seconds:
                    raise UploadError(
                        400,
                        f"{what} is longer than {limits.max_audio_seconds:g} s, the longest this server accepts.",
                    )
    except UploadError:
        raise
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise bad from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise UploadError(400, f"The '{part}' upload contains no sound.")
    if timeline is not None:
        try:
            timeline.check_duration(seconds)
        except UserInputError as exc:
            raise UploadError(400, str(exc)) from None
    return "." + fmt if fmt.isalnum() and len(fmt) <= 8 else ".audio"


def check_video(path: Path) -> str:
    """Check that `path` holds a video floatalk can read (a video stream with a frame that
    decodes; a still image is refused); returns a suffix for storage."""
    import av

    from floatalk.errors import UserInputError
    from floatalk.io.video import open_video

    bad = UploadError(400, "The 'pose_video' upload is not a video this server can read.")
    try:
        _, container = open_video(path)
        with container:
            fmt = container.format.name.split(",")[0]
            next(container.decode(video=0))
    except (UserInputError, StopIteration, av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise bad from None
    return "." + fmt if fmt.isalnum() and len(fmt) <= 8 else ".video"


def check_face(image: Path | np.ndarray, detector: str, face: int) -> None:
    """Check that the photo (a path, or its decoded (H, W, 3) uint8 pixels) has face number `face`
    (counted from the left) for the job's crop to find, so that a job asking for a face the photo
    lacks is refused now, not failed later."""
    from floatalk.io.face import detect_faces
    from floatalk.io.image import load_image

    pixels = load_image(image) if isinstance(image, Path) else image
    count = len(detect_faces(pixels, detector))
    if not 1 <= face <= count:
        found = f"{count} face{'' if count == 1 else 's'}" if count else "no face"
        raise UploadError(400, f"The photo shows {found}; option 'face' must name one of them (got {face}).")


def check_uploads(
    image: Path, audio: Path, limits: Limits, job: JobOptions, pose_video: Path | None = None
) -> dict[str, str]:
    """Check a job's files before it is queued, as the API and the web page both do: the image
    (`check_image`), the recording with the job's timeline against its length (`check_audio`)
    and the pose video, if any (`check_video`), in that order; a face asked for by number must be
    in the photo (`check_face`). Returns each file's suffix for storage by part name ("image",
    "audio" and "pose_video" when given)."""
    image_suffix, pixels = read_image(image, limits)  # the only decoding before the worker's
    suffixes = {"image": image_suffix, "audio": check_audio(audio, limits, job.generate.timeline)}
    if job.generate.crop and job.generate.face is not None:
        check_face(pixels, job.generate.detector, job.generate.face)
    if pose_video is not None:
        suffixes["pose_video"] = check_video(pose_video)
    return suffixes

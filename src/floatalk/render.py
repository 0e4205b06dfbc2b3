"""The one render path: a photo and a recording in, a talking video file out.

`render_video` owns everything between the pipeline's frames and a finished file: streaming
window by window, frame-rate resampling, pasting the face back into the full photo frame by
frame (memory does not grow with the number of frames times the photo size), the soundtrack,
and atomic writing (a temporary file renamed only on success). `floatalk generate`,
`floatalk demo` and the trainers' sample videos all call it.

Letters: T model frames, S model image size, H, W the photo's size.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions
from floatalk.progress import Progress, no_progress

if TYPE_CHECKING:
    import torch

    from floatalk.io.face import CropBox, PasteBack
    from floatalk.pipeline import AudioInput, FloatPipeline, ImageInput, PreparedImage

__all__ = ["MAX_FPS", "RenderReport", "check_fps", "frame_picks", "render_video", "write_video"]

MAX_FPS = 120


@dataclass(frozen=True)
class RenderReport:
    """What `render_video` did."""

    out: Path
    frames: int  # frames written
    fps: int
    width: int
    height: int
    seconds: float  # duration of the recording, which is the video's
    elapsed: float  # wall-clock seconds of the whole render
    crop_box: CropBox  # the square the model saw, in photo pixels
    face_box: tuple[int, int, int, int] | None  # the detected face (x, y, w, h); None without cropping
    photo_size: tuple[int, int]  # (W, H) of the photo
    emotion: str  # the forced emotion's name, "auto" (predicted from the speech) or "timeline" (set by segments)
    probabilities: dict[str, float] = field(default_factory=dict)  # the emotion vector used, by name
    face_choice: Any = None  # floatalk.io.face.FaceChoice (which face, which detector); None without cropping

    def top_emotions(self, k: int = 2) -> list[tuple[str, float]]:
        """The k most probable emotions of the vector used, most probable first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def summary(self) -> list[str]:
        """The lines `floatalk generate` prints: face, emotion, and what was written."""
        w, h = self.photo_size
        if self.face_box is None:
            face = f"face: not searched (whole {w}x{h} photo, letterboxed to a square)"
        else:
            x, y, fw, fh = self.face_box
            box = self.crop_box
            which = ""
            if self.face_choice is not None:
                c = self.face_choice
                which = f"{c.number} of {c.count} (from the left), " if c.count > 1 else ""
                which += f"found by the {c.detector} detector, "
            face = (
                f"face: {which}{fw}x{fh} at ({x}, {y}) in the {w}x{h} photo; cropped a {box.size:.0f} px square "
                f"at ({box.x0:.0f}, {box.y0:.0f})"
            )
        if self.emotion == "auto":
            top = ", ".join(f"{name} {p:.2f}" for name, p in self.top_emotions(2))
            emotion = f"emotion: predicted from the speech: {top}"
        elif self.emotion == "timeline":
            top = ", ".join(f"{name} {p:.2f}" for name, p in self.top_emotions(2))
            emotion = f"emotion: set by the timeline (over the whole clip: {top})"
        else:
            emotion = f"emotion: {self.emotion} (forced)"
        wrote = (
            f"wrote {self.out}: {self.frames} frames at {self.fps} fps ({self.seconds:.2f} s), "
            f"{self.width}x{self.height}, in {self.elapsed:.1f} s"
        )
        return [face, emotion, wrote]


def emotion_source(opts: GenerateOptions) -> str:
    """How the emotion was chosen: "timeline" when segments set it, else the forced name or "auto"."""
    timeline = opts.timeline
    if timeline is not None and not isinstance(timeline, (str, dict)) and timeline.uses("emotion"):
        return "timeline"
    return opts.forced_emotion or "auto"


def check_fps(fps: Any) -> int:
    """An output frame rate as an int in 1..MAX_FPS, or a one-sentence UserInputError."""
    if isinstance(fps, float) and fps.is_integer():
        fps = int(fps)
    if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or not 1 <= fps <= MAX_FPS:
        raise UserInputError(f"The output frame rate must be a whole number from 1 to {MAX_FPS} (got {fps!r}).")
    return int(fps)


def frame_picks(n_model: int, model_fps: int, out_fps: int, n_audio: int, sample_rate: int) -> np.ndarray:
    """For each output frame, the model frame shown (the nearest earlier one in time): (n_out,) int."""
    if out_fps == model_fps:
        return np.arange(n_model)
    n_out = max(1, math.ceil(n_audio * out_fps / sample_rate))
    return np.minimum((np.arange(n_out) * model_fps) // out_fps, n_model - 1)


def write_video(
    out: Path,
    batches: Iterable[np.ndarray],
    picks: np.ndarray,
    fps: int,
    soundtrack: np.ndarray | None,
    sample_rate: int,
    paste: PasteBack | None = None,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write model frames arriving in (n, S, S, 3) batches to `out` atomically; returns the frame count.

    picks: for each output frame, the model frame shown (`frame_picks`); paste: blends each
    frame into the full photo, one full-size frame at a time (memory independent of T x H x W);
    metadata: container tags (floatalk.io.provenance's mark for a drawn face).
    """
    from floatalk.io.video import VideoWriter

    with VideoWriter(out, fps=fps, audio=soundtrack, sample_rate=sample_rate, metadata=metadata) as writer:
        first = 0  # model-frame index of the current batch's first frame
        cursor = 0  # next output frame to write
        for frames in batches:
            last = first + len(frames)
            stop = cursor
            while stop < len(picks) and picks[stop] < last:
                stop += 1
            chosen = frames[picks[cursor:stop] - first]
            if paste is None:
                writer.write(chosen)
            else:
                for frame in chosen:
                    writer.write(paste(frame))
            cursor, first = stop, last
    return cursor


def render_video(
    pipe: FloatPipeline,
    image: ImageInput | PreparedImage,
    audio: AudioInput,
    out: str | os.PathLike,
    options: GenerateOptions | None = None,
    *,
    paste_back: bool = False,
    fps: int | None = None,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
    metadata: dict[str, str] | None = None,
    **overrides: Any,
) -> RenderReport:
    """Animate `image` with `audio` and write an H.264 + AAC video to `out` (.mp4, .mov or .mkv).

    image, audio, options, generator, **overrides: as in `FloatPipeline.__call__` (an image may
    also be a `PreparedImage` already cut by `prepare_image`). paste_back: blend each generated
    square back into the full-resolution photo (the video then has the photo's size). fps:
    output frame rate (default the model's 25): frames are repeated or dropped to match. The
    soundtrack is the recording itself (a file's original sound at 48 kHz, an array as given).
    progress: progress(stage, done, total), frames counted in model frames. metadata: tags for
    the video's container (floatalk.io.provenance's mark when the face is the synthetic world's).

    Nothing appears at `out` unless the whole video was written. Raises UserInputError (one
    sentence) for unusable inputs.
    """
    from floatalk.io.audio import load_audio
    from floatalk.io.face import PasteBack
    from floatalk.io.video import check_output_path
    from floatalk.pipeline import PreparedImage, prepare_image
    from floatalk.units import MUX_SAMPLE_RATE

    started = time.perf_counter()
    opts = pipe.options(options, **overrides)
    pipe.check_inputs(image, audio, opts, generator)
    out_fps = check_fps(pipe.fps if fps is None else fps)
    out = check_output_path(out)
    report = progress or no_progress

    settings = opts.image_settings()
    prepared = image if isinstance(image, PreparedImage) else prepare_image(image, pipe.image_size, **settings)
    wave = pipe.load_audio(audio)
    if isinstance(audio, np.ndarray):
        soundtrack, sound_rate = wave, pipe.sample_rate
    else:
        soundtrack, sound_rate = load_audio(audio, sample_rate=MUX_SAMPLE_RATE), MUX_SAMPLE_RATE
    paste = PasteBack(prepared.original, prepared.box, pipe.image_size) if paste_back else None

    conditions = pipe.prepare(prepared, wave, opts)
    report("emotion", 1, 1)
    n_model = -(-len(wave) * pipe.fps // pipe.sample_rate)
    picks = frame_picks(n_model, pipe.fps, out_fps, len(wave), pipe.sample_rate)
    batches = (frames for _, frames in pipe.iter_windows(conditions, opts, generator, report))
    written = write_video(out, batches, picks, out_fps, soundtrack, sound_rate, paste, metadata)
    height, width = (prepared.original.shape[:2]) if paste is not None else (pipe.image_size, pipe.image_size)
    mean_emotion = conditions.emotion[0].float().mean(0)  # (K,): over frames when a timeline varies it
    probabilities = dict(zip(EMOTIONS, mean_emotion.cpu().tolist()))
    return RenderReport(
        out=out,
        frames=written,
        fps=out_fps,
        width=width,
        height=height,
        seconds=len(wave) / pipe.sample_rate,
        elapsed=time.perf_counter() - started,
        crop_box=prepared.box,
        face_box=prepared.face,
        face_choice=prepared.choice,
        photo_size=(prepared.original.shape[1], prepared.original.shape[0]),
        emotion=emotion_source(opts),
        probabilities=probabilities,
    )

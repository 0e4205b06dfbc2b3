"""The render path of reenactment: a photo moving as the face of a driving video does, written
with the driving video's sound (the motion itself: floatalk.editing.reenact).

Letters: T frames.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from floatalk.config import EMOTIONS
from floatalk.progress import Progress, no_progress
from floatalk.render.report import RenderReport
from floatalk.render.writer import write_video

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline

__all__ = ["reenact_video"]


def reenact_video(
    pipe: FloatPipeline,
    image,
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    absolute: bool = False,
    crop: bool = True,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> RenderReport:
    """Write `out` (.mp4, .mov or .mkv): `image` moving as the face in `video` does, with its sound.

    image: a photo path or (H, W, 3) uint8 array, cropped around its face unless crop=False;
    video: any file PyAV reads, its face cropped the same way (one crop for the whole clip).
    Raises UserInputError (one sentence) for unusable inputs."""
    from floatalk.editing.controls import EffectEditor
    from floatalk.editing.reenact import driving_motion, steer_roll
    from floatalk.engine import prepare_image
    from floatalk.io.audio import load_audio
    from floatalk.io.driving import load_face_video
    from floatalk.io.video import check_output_path, open_video
    from floatalk.units import MUX_SAMPLE_RATE

    started = time.perf_counter()
    out = check_output_path(out)
    report = progress or no_progress
    prepared = prepare_image(image, pipe.image_size, crop=crop)
    source = pipe.encode_image(prepared)
    frames = load_face_video(video, pipe.image_size, pipe.fps, crop=crop)
    _, container = open_video(video)
    with container:
        has_sound = bool(container.streams.audio)
    soundtrack = load_audio(video, sample_rate=MUX_SAMPLE_RATE) if has_sound else None
    if soundtrack is not None:
        soundtrack = soundtrack[: int(len(frames) * MUX_SAMPLE_RATE / pipe.fps)]
    motion = driving_motion(pipe, frames, source.lam, absolute)  # (T, D)
    if not absolute:
        motion = steer_roll(EffectEditor.for_portrait(pipe, source), frames, motion)
    T = len(frames)

    def batches():
        done = 0
        for chunk in pipe.decode(source, motion[None], batch_size):
            done += len(chunk)
            report("frames", done, T)
            yield chunk

    written = write_video(out, batches(), np.arange(T), pipe.fps, soundtrack, MUX_SAMPLE_RATE)
    return RenderReport(
        out=out,
        frames=written,
        fps=pipe.fps,
        width=pipe.image_size,
        height=pipe.image_size,
        seconds=T / pipe.fps,
        elapsed=time.perf_counter() - started,
        crop_box=prepared.box,
        face_box=prepared.face,
        photo_size=(prepared.original.shape[1], prepared.original.shape[0]),
        emotion="driving video",
        probabilities=dict.fromkeys(EMOTIONS, 0.0),
    )

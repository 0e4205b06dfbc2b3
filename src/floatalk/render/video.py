"""The render path of a generation: a photo and a recording in, a talking video file out.

`render_video` owns everything between the pipeline's frames and a finished file: streaming
decoder batch by decoder batch, frame-rate resampling, pasting the face back into the full photo frame by
frame (memory does not grow with the number of frames times the photo size), the soundtrack,
and atomic writing (a temporary file renamed only on success). `floatalk generate`,
`floatalk demo`, the apps and the trainers' sample videos all call it.

Letters: T model frames, S model image size, H, W the photo's size.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from floatalk.config import EMOTIONS
from floatalk.options import GenerateOptions
from floatalk.progress import Progress, no_progress
from floatalk.render.report import RenderReport
from floatalk.render.writer import check_fps, frame_picks, write_video

if TYPE_CHECKING:
    import torch

    from floatalk.engine import AudioInput, ImageInput, PreparedImage
    from floatalk.pipeline import FloatPipeline

__all__ = ["emotion_source", "render_video"]


def emotion_source(opts: GenerateOptions) -> str:
    """How the emotion was chosen: "timeline" when segments set it, else the forced name or "auto"."""
    timeline = opts.timeline
    if timeline is not None and not isinstance(timeline, (str, dict)) and timeline.uses("emotion"):
        return "timeline"
    return opts.forced_emotion or "auto"


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
    from floatalk.engine import PreparedImage, prepare_image
    from floatalk.io.audio import load_audio
    from floatalk.io.face import PasteBack
    from floatalk.io.video import check_output_path
    from floatalk.units import MUX_SAMPLE_RATE

    started = time.perf_counter()
    opts = pipe.options(options, **overrides)
    pipe.check_inputs(image, audio, generator)
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
    # Each decoder batch goes to the encoder as soon as it is done (the first two frames alone).
    batches = (frames for _, frames in pipe.iter_frames(conditions, opts, generator, report))
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

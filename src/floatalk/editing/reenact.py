"""Video-driven reenactment: a driving video's whole motion carried onto a photo through the
motion auto-encoder, with the driving video's soundtrack.

Each driving frame (cropped once for the whole clip, `floatalk.editing.driving`) is encoded to
its motion coefficients lambda_drv(t). Relative motion (default) gives the photo the driving
video's change from its first frame: lambda(t) = lambda_photo + lambda_drv(t) - lambda_drv(0),
so the photo keeps its own pose and expression where the driver starts; absolute motion copies
lambda_drv(t). Frames are decoded with the photo's identity latent and feature maps.

The latent change carries translation and the mouth across identities well, but roll less so
(on the bundled model the rendered roll followed the driver's at r 0.52-0.96 over 8 held-out
pairs): the same coefficients turn one face more than another. So in relative mode the roll is
steered: the driver's roll, measured from its frames by optical flow against its first frame
(floatalk.evaluation.motion), is the target of the photo's roll row of its motion atlas, reached
by a damped step (floatalk.editing.controls.TRACK_STEP) through the atlas' pseudo-inverse that
holds the other effects.

Letters: T frames, M coefficients, D latent size.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from floatalk.progress import Progress, no_progress

if TYPE_CHECKING:
    from floatalk.editing.controls import EffectEditor
    from floatalk.pipeline import FloatPipeline
    from floatalk.render import RenderReport

__all__ = ["driving_motion", "reenact_video", "steer_roll"]

ENCODE_BATCH = 16


def driving_motion(pipe: FloatPipeline, frames: np.ndarray, lam_photo, absolute: bool = False):
    """(T, S, S, 3) driving crops -> (T, D) motion latents for the photo whose coefficients are
    `lam_photo` (1, M)."""
    import torch

    from floatalk.convert import to_tensor

    ae = pipe.model.motion_autoencoder
    coeffs = []
    with torch.inference_mode():
        for start in range(0, len(frames), ENCODE_BATCH):
            batch = to_tensor(frames[start : start + ENCODE_BATCH]).to(pipe.device)
            coeffs.append(ae.encode(batch)[1].float())
        lam = torch.cat(coeffs)  # (T, M)
        if not absolute:
            lam = lam_photo.float() + (lam - lam[:1])
        return ae.motion(lam)


def steer_roll(editor: EffectEditor, frames: np.ndarray, motion, step: float | None = None):
    """(T, D) latents for the photo of `editor` (`EffectEditor.for_portrait`) with their head roll
    moved `step` of the way to the roll measured on the (T, S, S, 3) driving `frames` against their
    first frame (default step TRACK_STEP)."""
    from floatalk.editing.controls import TRACK_STEP
    from floatalk.evaluation.motion import EFFECTS, face_effects

    roll = EFFECTS.index("head_roll")
    effects = editor.effects(motion)  # (T, E)
    change = np.zeros_like(effects)
    change[:, roll] = (TRACK_STEP if step is None else step) * (face_effects(frames)[:, roll] - effects[:, roll])
    return editor.apply(motion, change)


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
    from floatalk.config import EMOTIONS
    from floatalk.editing.controls import EffectEditor
    from floatalk.editing.driving import load_face_video
    from floatalk.io.audio import load_audio
    from floatalk.io.video import check_output_path, open_video
    from floatalk.pipeline import prepare_image
    from floatalk.render import RenderReport, write_video
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

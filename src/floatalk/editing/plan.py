"""Planning: `GenerateOptions` turned into the sampler's conditions (per-frame emotion and
guidance when a timeline sets them) and the edit applied to each window of generated motion
before it is decoded (intensities, blinks, boundary easing, a pose video's head).

Letters: T frames, E effects.
"""

from __future__ import annotations

import numpy as np
import torch

from floatalk.editing.atlas import GROUPS
from floatalk.editing.controls import BoundaryEase, EffectEditor, MotionControls, MotionEdit
from floatalk.editing.reenact import driving_motion, steer_roll
from floatalk.engine import Conditions, FloatEngine, SourceImage
from floatalk.face_motion import EFFECTS
from floatalk.io.driving import load_face_video
from floatalk.models.audio_encoder import frame_count
from floatalk.options import GenerateOptions

__all__ = ["ping_pong", "pipe_rows", "plan_conditions", "reference_track"]


def ping_pong(values: np.ndarray, T: int) -> np.ndarray:
    """(n, ...) values stretched to T rows by playing them forwards, backwards, forwards..."""
    n = len(values)
    if n >= T or n == 1:
        return values[np.minimum(np.arange(T), n - 1)]
    period = 2 * (n - 1)
    phase = np.arange(T) % period
    return values[np.where(phase < n, phase, period - phase)]


def reference_track(path: str, pipe: FloatEngine, source: SourceImage, editor: EffectEditor, T: int) -> np.ndarray:
    """(T, E) effects on the portrait `source` (whose editor is `editor`) of a reference video's
    motion, at the model's fps, played back and forth when shorter than T frames.

    The reference's face crops are encoded and their change from the first frame carried onto the
    portrait as in reenactment (roll steered to the roll measured on the frames,
    `floatalk.editing.reenact`); the portrait's atlas reads the effects of that motion. Read
    through the latents, a reference's head track followed its true motion better than the track
    measured on its frames by optical flow did (docs/MOTION.md)."""
    frames = load_face_video(path, pipe.image_size, pipe.fps, crop=True, max_frames=T)
    with torch.inference_mode():
        motion = steer_roll(editor, frames, driving_motion(pipe, frames, source.lam))
    return ping_pong(editor.effects(motion), T)


def plan_conditions(pipe: FloatEngine, source: SourceImage, wave: np.ndarray, options: GenerateOptions) -> Conditions:
    """The sampler's conditions and the motion edit for `options` (a timeline, intensities,
    blinks, a pose video): per-frame emotion and guidance when a timeline sets them."""
    T = frame_count(len(wave), pipe.sample_rate, pipe.fps)
    timeline = options.timeline
    forced = options.forced_emotion
    blink = 1.0 if options.blink else 0.0
    e_scales = None
    near = None  # (T,) frames near a timeline boundary
    if timeline is None:
        emotion = pipe.encode_emotion(wave, forced)
        controls = MotionControls(options.head_motion, options.mouth_scale, options.expression_scale, blink)
    else:
        timeline.check_duration(len(wave) / pipe.sample_rate)
        needs_auto = forced is None or any(s.emotion == "auto" for s in timeline.segments)
        auto = pipe.encode_emotion(wave, None)[0, 0].float().cpu().numpy() if needs_auto else None
        defaults = {
            "emotion": forced or "auto",
            "e_cfg_scale": options.e_cfg_scale,
            "head_motion": options.head_motion,
            "mouth_scale": options.mouth_scale,
            "expression_scale": options.expression_scale,
            "blink": blink,
        }
        frames = timeline.frames(T, pipe.fps, defaults, auto)
        if frames.emotion is None:
            emotion = pipe.encode_emotion(wave, forced)
        else:
            emotion = torch.from_numpy(frames.emotion).float()[None].to(pipe.device)  # (1, T, K)
        if timeline.uses("e_cfg_scale"):
            e_scales = torch.from_numpy(frames.e_cfg_scale).float()
        controls = MotionControls(frames.head_motion, frames.mouth_scale, frames.expression_scale, frames.blink)
        near = frames.near_boundary if frames.near_boundary.any() else None
    if controls.is_identity() and options.pose_video is None and near is None:
        return Conditions(source, wave, emotion, e_scales, None)
    editor = EffectEditor.for_portrait(pipe, source)
    head = eyes = None
    if options.pose_video is not None:
        track = reference_track(options.pose_video, pipe, source, editor, T)
        head = track[:, pipe_rows("head")]
        eyes = track[:, pipe_rows("blink")] if options.blink_from_video else None
    ease = None if near is None else BoundaryEase(editor, near)
    return Conditions(source, wave, emotion, e_scales, MotionEdit(editor, controls, head, eyes, ease))


def pipe_rows(group: str) -> list[int]:
    """Columns of `floatalk.face_motion.EFFECTS` that belong to a control group."""
    return [EFFECTS.index(name) for name in GROUPS[group]]

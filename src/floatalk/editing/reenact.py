"""Video-driven reenactment's motion: a driving video's whole motion carried onto a photo through
the motion auto-encoder (the render path that writes it with the driving video's soundtrack is
floatalk.render.reenact).

Each driving frame (cropped once for the whole clip, `floatalk.io.driving`) is encoded to
its motion coefficients lambda_drv(t). Relative motion (default) gives the photo the driving
video's change from its first frame: lambda(t) = lambda_photo + lambda_drv(t) - lambda_drv(0),
so the photo keeps its own pose and expression where the driver starts; absolute motion copies
lambda_drv(t). Frames are decoded with the photo's identity latent and feature maps.

The latent change carries translation and the mouth across identities well, but roll less so
(on the bundled model the rendered roll followed the driver's at r 0.52-0.96 over 8 held-out
pairs): the same coefficients turn one face more than another. So in relative mode the roll is
steered: the driver's roll, measured from its frames by optical flow against its first frame
(floatalk.face_motion), is the target of the photo's roll row of its motion atlas, reached
by a damped step (floatalk.editing.controls.TRACK_STEP) through the atlas' pseudo-inverse that
holds the other effects.

Letters: T frames, M coefficients, D latent size.
"""

from __future__ import annotations

import numpy as np
import torch

from floatalk.convert import to_tensor
from floatalk.editing.controls import TRACK_STEP, EffectEditor
from floatalk.engine import FloatEngine
from floatalk.face_motion import EFFECTS, face_effects

__all__ = ["driving_motion", "steer_roll"]

ENCODE_BATCH = 16


def driving_motion(pipe: FloatEngine, frames: np.ndarray, lam_photo, absolute: bool = False):
    """(T, S, S, 3) driving crops -> (T, D) motion latents for the photo whose coefficients are
    `lam_photo` (1, M)."""
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
    roll = EFFECTS.index("head_roll")
    effects = editor.effects(motion)  # (T, E)
    change = np.zeros_like(effects)
    change[:, roll] = (TRACK_STEP if step is None else step) * (face_effects(frames)[:, roll] - effects[:, roll])
    return editor.apply(motion, change)

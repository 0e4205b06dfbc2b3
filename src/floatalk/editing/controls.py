"""Editing generated motion through the atlas: head, mouth and expression intensities, blinks,
and replacing the head's motion by another video's.

The generated motion latents r_d (T, D) decompose as r_d = Q lambda(t) + residual, with
lambda(t) = Q^T r_d (Q orthonormal). Relative to the portrait's own coefficients lambda_src,
the motion d(t) = lambda(t) - lambda_src has, to first order, the effects e(t) = A d(t) (the
atlas's response matrix). An edit asks for new effects e'(t) (e.g. the head rows scaled by 0
for a still head) and applies the smallest coefficient change that gets them while keeping
every other measured effect where it was:

    d'(t) = d(t) + A+ (e'(t) - e(t)),   r'(t) = Q (lambda_src + d'(t))

with A+ a ridge-regularised pseudo-inverse of A whose rows are first scaled to unit norm (so
each effect counts alike). An edited latent is rebuilt inside Q's span: the part of r_d outside
it (the FMT's targets all lie inside, so it is sampling error the decoder reads as a style
change) is dropped. On the bundled model that part alone carried head-like motion: with it
kept, --head-motion 0 left 32-39 % of the head motion, without it 9-13 %; dropping it without
any edit changes head motion by -4 to -6 % and lip sync by +1 to +2 %. With every intensity 1
nothing is computed and r_d is unchanged.

Letters: T frames, D latent size, M coefficients, E effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from floatalk.editing.atlas import GROUPS, MotionAtlas

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline, SourceImage

__all__ = ["TRACK_STEP", "EffectEditor", "MotionControls", "MotionEdit"]

RIDGE = 1e-3
"""Ridge of the pseudo-inverse, relative to the largest squared singular value of A."""

TRACK_STEP = 0.7
"""Share of the way a track (a reference video's head, the driver's roll in reenactment) is
followed in one linear step through the atlas. The atlas is the decoder's first-order response at
the portrait, so a full step to a large track overshoots: on the bundled model full steps
disturbed translation and lip sync on some faces, 0.7 kept both (docs/MOTION.md)."""


@dataclass(frozen=True)
class MotionControls:
    """Per-frame intensities: each a float or a (T,) array. 1 = as generated."""

    head_motion: float | np.ndarray = 1.0
    mouth_scale: float | np.ndarray = 1.0
    expression_scale: float | np.ndarray = 1.0
    blink: float | np.ndarray = 1.0  # 1 blinks as generated, 0 holds the eyes' openness

    def is_identity(self) -> bool:
        return all(
            np.all(np.asarray(v) == 1.0)
            for v in (self.head_motion, self.mouth_scale, self.expression_scale, self.blink)
        )


class EffectEditor:
    """Applies `MotionControls` and head tracks to motion latents through an atlas."""

    def __init__(self, atlas: MotionAtlas, basis: Tensor, lam_source: Tensor) -> None:
        """atlas: the checkpoint's atlas; basis: Q (D, M); lam_source: (1, M) or (M,) the portrait's lambda."""
        A = atlas.matrix  # (E, M)
        self.atlas = atlas
        self.norms = np.maximum(np.linalg.norm(A, axis=1), 1e-12)  # (E,)
        An = A / self.norms[:, None]
        u, s, vt = np.linalg.svd(An, full_matrices=False)
        ridge = RIDGE * (s[0] ** 2 if len(s) else 1.0)
        self.pinv = (vt.T * (s / (s**2 + ridge))) @ u.T  # (M, E): A_n+
        self.A = A
        self.basis = basis.detach().double().cpu()  # (D, M)
        self.lam_source = lam_source.detach().double().cpu().reshape(-1)  # (M,)

    @classmethod
    def for_portrait(cls, pipe: FloatPipeline, source: SourceImage) -> EffectEditor:
        """The editor of an encoded portrait: this checkpoint's atlas measured on it (cached,
        `floatalk.editing.atlas.atlas_for`), the decoder's basis Q and the portrait's lambda."""
        from floatalk.editing.atlas import atlas_for

        return cls(atlas_for(pipe, source), pipe.model.motion_autoencoder.dec.direction.basis(), source.lam)

    def coefficients(self, motion: Tensor) -> np.ndarray:
        """(T, D) motion latents -> (T, M) coefficients relative to the portrait's."""
        lam = motion.detach().double().cpu() @ self.basis
        return (lam - self.lam_source).numpy()

    def effects(self, motion: Tensor) -> np.ndarray:
        """(T, D) motion latents -> (T, E) first-order effects relative to the portrait."""
        return self.coefficients(motion) @ self.A.T

    def apply(self, motion: Tensor, target_change: np.ndarray) -> Tensor:
        """(T, D) latents rebuilt in Q's span with their effects changed by (T, E) `target_change`."""
        coeffs = self.coefficients(motion) + (target_change / self.norms[None, :]) @ self.pinv.T  # (T, M)
        rebuilt = (torch.from_numpy(coeffs) + self.lam_source) @ self.basis.T  # (T, D)
        return rebuilt.to(device=motion.device, dtype=motion.dtype)

    def row_scales(self, controls: MotionControls, T: int) -> np.ndarray:
        """(T, E) factor on each effect per frame."""
        scales = np.ones((T, len(self.atlas.effects)))
        for group, value in (
            ("head", controls.head_motion),
            ("mouth", controls.mouth_scale),
            ("expression", controls.expression_scale),
            ("blink", controls.blink),
        ):
            scales[:, self.atlas.rows(GROUPS[group])] *= np.broadcast_to(np.asarray(value, np.float64), (T,))[:, None]
        return scales

    def edit(
        self,
        motion: Tensor,
        controls: MotionControls,
        head: np.ndarray | None = None,
        eyes: np.ndarray | None = None,
    ) -> Tensor:
        """(T, D) latents with each effect scaled per `controls` (per-frame values are (T,) arrays).

        head: (T, 4) head effects to give the motion instead of its own (a reference video's),
        scaled by head_motion, approached by a TRACK_STEP share; eyes: (T, 2) eye effects likewise
        (blinks from a video). Returns
        `motion` itself when nothing changes."""
        if controls.is_identity() and head is None and eyes is None:
            return motion
        T = motion.shape[0]
        e = self.effects(motion)
        scales = self.row_scales(controls, T)
        target = scales * e
        for rows, track in ((self.atlas.rows(GROUPS["head"]), head), (self.atlas.rows(GROUPS["blink"]), eyes)):
            if track is not None:
                target[:, rows] += TRACK_STEP * (scales[:, rows] * track - target[:, rows])
        return self.apply(motion, target - e)


@dataclass(frozen=True)
class MotionEdit:
    """What to do to a clip's generated motion, frame by frame: an editor and per-frame settings."""

    editor: EffectEditor
    controls: MotionControls  # floats or (T,) arrays over the whole clip
    head: np.ndarray | None = None  # (T, 4) head effects from a reference video
    eyes: np.ndarray | None = None  # (T, 2) eye effects from a reference video

    def apply(self, motion: Tensor, start: int) -> Tensor:
        """Edit the (n, D) latents of clip frames start .. start + n - 1."""
        n = motion.shape[0]

        def part(value: float | np.ndarray | None) -> float | np.ndarray | None:
            if value is None or np.ndim(value) == 0:
                return value
            return value[start : start + n]

        c = self.controls
        window = MotionControls(part(c.head_motion), part(c.mouth_scale), part(c.expression_scale), part(c.blink))
        return self.editor.edit(motion, window, part(self.head), part(self.eyes))

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
each effect counts alike). An edited latent is rebuilt inside Q's span; the part of r_d outside
it (the FMT's targets all lie inside, so it is sampling error the decoder reads as motion the
atlas cannot attribute) is kept in the share of the frame's smallest intensity, at most 1
(`EffectEditor.off_span_share`). On the bundled model that part carried head and mouth motion:
kept whole, --head-motion 0 left 32-39 % of the head motion (dropped: 9-13 %) and
--mouth-scale 0 left up to 24 % of the mouth opening (dropped: up to 18 %); dropped under
--head-motion 2, the head moved 1.54-1.82x the default's, kept 1.66-1.87x
(benchmarks/bench_off_span.py, docs/MOTION.md).
With every intensity 1 nothing is computed and r_d is unchanged.

Letters: T frames, D latent size, M coefficients, E effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from floatalk.editing.atlas import GROUPS, MotionAtlas, atlas_for

if TYPE_CHECKING:
    from floatalk.engine import FloatEngine, SourceImage

__all__ = ["EASE_PERCENTILE", "TRACK_STEP", "BoundaryEase", "EffectEditor", "MotionControls", "MotionEdit"]

RIDGE = 1e-3
"""Ridge of the pseudo-inverse, relative to the largest squared singular value of A."""

TRACK_STEP = 0.7
"""Share of the way a track (a reference video's head, the driver's roll in reenactment) is
followed in one linear step through the atlas. The atlas is the decoder's first-order response at
the portrait, so a full step to a large track overshoots: on the bundled model full steps
disturbed translation and lip sync on some faces, 0.7 kept both (docs/MOTION.md)."""


EASE_PERCENTILE = 80.0
"""Near a timeline boundary the face (all but the mouth) moves no faster per frame than it does
in this percentile of the clip's other frames (`BoundaryEase`)."""


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
    def for_portrait(cls, pipe: FloatEngine, source: SourceImage) -> EffectEditor:
        """The editor of an encoded portrait: this checkpoint's atlas measured on it (cached,
        `floatalk.editing.atlas.atlas_for`), the decoder's basis Q and the portrait's lambda."""
        return cls(atlas_for(pipe, source), pipe.model.motion_autoencoder.dec.direction.basis(), source.lam)

    def coefficients(self, motion: Tensor) -> np.ndarray:
        """(T, D) motion latents -> (T, M) coefficients relative to the portrait's."""
        lam = motion.detach().double().cpu() @ self.basis
        return (lam - self.lam_source).numpy()

    def effects(self, motion: Tensor) -> np.ndarray:
        """(T, D) motion latents -> (T, E) first-order effects relative to the portrait."""
        return self.coefficients(motion) @ self.A.T

    def apply(self, motion: Tensor, target_change: np.ndarray, keep: float | np.ndarray = 0.0) -> Tensor:
        """(T, D) latents rebuilt in Q's span with their effects changed by (T, E) `target_change`,
        plus `keep` (a float or (T,)) times the part of `motion` outside Q's span."""
        coeffs = self.coefficients(motion) + (target_change / self.norms[None, :]) @ self.pinv.T  # (T, M)
        rebuilt = (torch.from_numpy(coeffs) + self.lam_source) @ self.basis.T  # (T, D)
        share = np.broadcast_to(np.asarray(keep, np.float64), (motion.shape[0],))
        if np.any(share != 0):
            m = motion.detach().double().cpu()
            outside = m - (m @ self.basis) @ self.basis.T
            rebuilt = rebuilt + torch.from_numpy(share.copy())[:, None] * outside
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
        return self.apply(motion, target - e, keep=self.off_span_share(controls, T, head is None and eyes is None))

    @staticmethod
    def off_span_share(controls: MotionControls, T: int, own_motion: bool = True) -> np.ndarray:
        """(T,) how much of the motion outside Q's span an edit keeps: the smallest intensity of
        the frame, at most 1, and nothing when a track replaces the motion's own head or eyes
        (`own_motion` False). That part carries head, mouth and other motion the atlas cannot
        tell apart, so it goes as far as any part is turned down, and stays as generated (not
        amplified) when parts are turned up."""
        if not own_motion:
            return np.zeros(T)
        values = (controls.head_motion, controls.mouth_scale, controls.expression_scale, controls.blink)
        smallest = np.minimum.reduce([np.broadcast_to(np.asarray(v, np.float64), (T,)) for v in values])
        return np.clip(smallest, 0.0, 1.0)


class BoundaryEase:
    """A speed limit on the face near timeline boundaries, applied window by window.

    Where a timeline's settings change, the model's motion can take a large step: the change of
    condition, or a natural movement (a turn of the head, a blink) that happens to fall there.
    Near a boundary (`near`, from `Timeline.frames`) each frame's step in the effects other than
    the mouth's (head, brows, eyes; each effect in units of its atlas row's norm, as the editor
    counts them) is capped at the EASE_PERCENTILE of the steps the clip takes elsewhere; the
    mouth follows the speech untouched. A capped face lags the generated motion and catches up
    at the same speed limit after the boundary, so it arrives where the model went without a
    jump. Only the capped frames change: r'(t) = r(t) + Q A_n+ (y(t) - x(t)), with x the effects
    of the motion and y the capped ones (mouth rows of y - x zero).

    Windows must come in order from frame 0 (a call with start 0 starts over); the limit uses
    the steps seen so far outside boundaries, the current window's included.
    """

    def __init__(self, editor: EffectEditor, near: np.ndarray) -> None:
        """editor: the portrait's; near: (T,) bool, the frames near a boundary."""
        self.editor = editor
        self.near = np.asarray(near, bool)
        mouth = set(editor.atlas.rows(GROUPS["mouth"]))
        self.face = [i for i in range(len(editor.atlas.effects)) if i not in mouth]
        self._reset()

    def _reset(self) -> None:
        self._last_x: np.ndarray | None = None  # (E,) the previous frame's effects, as generated
        self._last_y: np.ndarray | None = None  # ... and as shown
        self._behind = False  # the previous frame was capped: the face still lags
        self._steps: list[np.ndarray] = []  # face step sizes outside boundaries, window by window

    def __call__(self, motion: Tensor, start: int) -> Tensor:
        """(n, D) latents of frames start .. start + n - 1 -> the same, eased near boundaries."""
        if start == 0:
            self._reset()
        n = motion.shape[0]
        near = np.zeros(n, bool)
        inside = self.near[start : start + n]
        near[: len(inside)] = inside
        x = self.editor.effects(motion) / self.editor.norms  # (n, E), each effect in units of its row's norm
        face = x[:, self.face]
        chain = face if self._last_x is None else np.concatenate([self._last_x[None, self.face], face])
        steps = np.linalg.norm(np.diff(chain, axis=0), axis=1)  # the steps into this window's frames
        self._steps.append(steps[~near[n - len(steps) :]])
        y = x.copy()
        seen = np.concatenate(self._steps)
        if len(seen) < 10:  # too early in the clip for the steps outside boundaries to say much
            seen = np.concatenate([seen, steps])
        if (near.any() or self._behind) and len(seen):
            limit = float(np.percentile(seen, EASE_PERCENTILE))
            shown, behind = self._last_y, self._behind
            for t in range(n):
                if shown is not None and (near[t] or behind):
                    step = face[t] - shown[self.face]
                    size = float(np.linalg.norm(step))
                    behind = size > limit
                    if behind:
                        y[t, self.face] = shown[self.face] + step * (limit / size)
                shown = y[t]
            self._behind = behind
        self._last_x, self._last_y = x[-1], y[-1]
        changed = np.flatnonzero(np.any(y != x, axis=1))
        if len(changed) == 0:
            return motion
        out = motion.clone()  # the capped frames moved through the editor, the motion outside Q's span kept
        change = (y[changed] - x[changed]) * self.editor.norms
        out[changed] = self.editor.apply(motion[changed], change, keep=1.0)
        return out


@dataclass(frozen=True)
class MotionEdit:
    """What to do to a clip's generated motion, frame by frame: an editor, per-frame settings and
    a speed limit near timeline boundaries."""

    editor: EffectEditor
    controls: MotionControls  # floats or (T,) arrays over the whole clip
    head: np.ndarray | None = None  # (T, 4) head effects from a reference video
    eyes: np.ndarray | None = None  # (T, 2) eye effects from a reference video
    ease: BoundaryEase | None = None

    def apply(self, motion: Tensor, start: int) -> Tensor:
        """Edit the (n, D) latents of clip frames start .. start + n - 1."""
        n = motion.shape[0]

        def part(value: float | np.ndarray | None) -> float | np.ndarray | None:
            if value is None or np.ndim(value) == 0:
                return value
            return value[start : start + n]

        c = self.controls
        window = MotionControls(part(c.head_motion), part(c.mouth_scale), part(c.expression_scale), part(c.blink))
        edited = self.editor.edit(motion, window, part(self.head), part(self.eyes))
        return edited if self.ease is None else self.ease(edited, start)

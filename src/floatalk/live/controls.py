"""The motion controls of a live session, changed between chunks: each change is checked once
(floatalk.options.check_value) and then eased in over a few frames, so a new setting never
shows as a jump; the edit itself is floatalk.editing's (`EffectEditor`, the same as offline).

Letters: n frames, D latent size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from floatalk.editing.controls import EffectEditor, MotionControls
from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions, check_value

__all__ = ["LIVE_CONTROLS", "LiveControls", "check_controls"]

LIVE_CONTROLS = ("emotion", "e_cfg_scale", "head_motion", "mouth_scale", "expression_scale", "blink")
"""The settings `LiveSession.update` may change while the session runs."""

MOTION = ("head_motion", "mouth_scale", "expression_scale", "blink")

RAMP_FRAMES = 6
"""Frames over which a changed motion intensity moves from its old value to its new one."""


def check_controls(controls: dict[str, Any]) -> dict[str, Any]:
    """Live control values checked against their options' fields: {name: value} (blink as 0.0/1.0)."""
    checked = {}
    for name, value in controls.items():
        if name not in LIVE_CONTROLS:
            raise UserInputError(f"'{name}' cannot be changed live; the live controls are: {', '.join(LIVE_CONTROLS)}.")
        if name == "emotion" and value is None:
            value = "auto"
        checked[name] = check_value(GenerateOptions, name, value)
    if "blink" in checked:
        checked["blink"] = 1.0 if checked["blink"] else 0.0
    return checked


class LiveControls:
    """Per-frame motion intensities for frames as they are committed, and the emotion guidance."""

    def __init__(self, options: GenerateOptions, editor: EffectEditor | None) -> None:
        """options: checked; editor: the portrait's (None: the motion is never edited)."""
        self.editor = editor
        self.e_cfg_scale = options.e_cfg_scale
        start = {name: float(getattr(options, name)) for name in MOTION}
        self.shown = dict(start)  # the values of the last committed frame
        self.target = dict(start)

    def set(self, checked: dict[str, Any]) -> None:
        """Apply checked values (`check_controls`); motion intensities ease in from the next frame."""
        if "e_cfg_scale" in checked:
            self.e_cfg_scale = checked["e_cfg_scale"]
        for name in MOTION:
            if name in checked:
                self.target[name] = float(checked[name])

    def _frames(self, n: int) -> dict[str, np.ndarray]:
        """(n,) values per intensity for the next n frames, each moving toward its target by at
        most 1 / RAMP_FRAMES of the change per frame."""
        values = {}
        for name in MOTION:
            old, new = self.shown[name], self.target[name]
            step = (new - old) / RAMP_FRAMES
            ramp = old + step * np.arange(1, n + 1)
            values[name] = np.minimum(ramp, new) if new >= old else np.maximum(ramp, new)
            self.shown[name] = float(values[name][-1])
        return values

    def edit(self, motion: Tensor) -> Tensor:
        """(n, D) float32 latents of the next n frames -> the latents to show (edited when any
        intensity is not 1)."""
        v = self._frames(motion.shape[0])
        controls = MotionControls(v["head_motion"], v["mouth_scale"], v["expression_scale"], v["blink"])
        if self.editor is None or controls.is_identity():
            return motion
        return self.editor.edit(motion, controls)

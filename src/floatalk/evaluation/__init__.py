"""Measuring talking-portrait videos without ground truth: lip sync, expression, fidelity.

* `score_lipsync(frames, audio)`: correlation between the mouth opening seen in the frames and
  the opening implied by the speech, at offset 0 and at the best offset (`lipsync`).
* `mouth_opening(frames)`, `audio_opening(audio, n_frames)`: the two curves it compares.
* `measure_expression(frames)`: mouth-corner and brow heights per frame (`expression`).
* `psnr(a, b)`: peak signal-to-noise ratio (`quality`).
"""

from __future__ import annotations

from floatalk.evaluation.expression import measure_expression
from floatalk.evaluation.lipsync import audio_opening, find_face_box, mouth_opening, pearson, score_lipsync
from floatalk.evaluation.quality import psnr

__all__ = [
    "audio_opening",
    "find_face_box",
    "measure_expression",
    "mouth_opening",
    "pearson",
    "psnr",
    "score_lipsync",
]

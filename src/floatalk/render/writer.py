"""Model frames to a video file: the output frame rate and which model frame each output frame
shows, pasting back into the photo, the soundtrack and atomic writing.

Letters: T model frames, S model image size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from floatalk.errors import UserInputError
from floatalk.options import MAX_FPS

__all__ = ["MAX_FPS", "check_fps", "frame_picks", "write_video"]


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
    paste: Callable[[np.ndarray], np.ndarray] | None = None,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write model frames arriving in (n, S, S, 3) batches to `out` atomically; returns the frame count.

    picks: for each output frame, the model frame shown (`frame_picks`); paste: makes each model
    frame the full frame written, one at a time (memory independent of T x H x W): a
    `floatalk.io.face.PasteBack` blends an (S, S, 3) frame into the photo, a
    `floatalk.io.composite.SceneComposite` a scene's (F, S, S, 3) faces, the batches then being
    (n, F, S, S, 3); metadata: container tags (floatalk.io.provenance's mark for a drawn face).
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

"""Reading a driving or reference video as model-size face crops at the model's frame rate.

The face is found on up to `DETECT_FRAMES` frames spread over the clip and the crop (the usual
rule: a square of 1.6x the face box, centred, black outside the frame) is made from their
median box, so one crop holds for the whole clip: no per-frame jitter. Frames are resampled to
`fps` by taking, for each output time, the latest frame shown at that time.

Letters: T frames, S crop size.
"""

from __future__ import annotations

import os

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["DETECT_FRAMES", "load_face_video"]

DETECT_FRAMES = 9


def _frames_and_times(path: str | os.PathLike) -> tuple[list[np.ndarray], list[float]]:
    import av

    from floatalk.io.video import open_video

    source, container = open_video(path)
    frames, times = [], []
    try:
        with container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(frames) / float(stream.average_rate or 25)
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(t)
    except av.FFmpegError as exc:
        raise UserInputError(f"Could not read video '{source}': the file is damaged.") from exc
    if not frames:
        raise UserInputError(f"Could not read video '{source}': it has no frames.")
    return frames, times


def load_face_video(
    path: str | os.PathLike, size: int, fps: int, crop: bool = True, max_frames: int | None = None
) -> np.ndarray:
    """A video file -> (T, S, S, 3) uint8 face crops at `fps` (at most `max_frames`).

    crop=False letterboxes whole frames instead of cropping the face. Raises UserInputError for
    an unreadable file or, when cropping, a video in which no face is found.
    """
    from floatalk.io.face import crop_image, detect_face, face_crop_box, letterbox_box

    frames, times = _frames_and_times(path)
    h, w = frames[0].shape[:2]
    if crop:
        picks = np.unique(np.linspace(0, len(frames) - 1, min(DETECT_FRAMES, len(frames))).round().astype(int))
        faces = [f for f in (detect_face(frames[i]) for i in picks) if f is not None]
        if not faces:
            raise UserInputError(f"No face found in the video '{path}'; pass --no-crop to use whole frames.")
        x, y, fw, fh = np.median(np.asarray(faces, dtype=np.float64), axis=0)
        box = face_crop_box((x, y, fw, fh))
    else:
        box = letterbox_box(h, w)
    start, end = times[0], times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0 / fps)
    n_out = max(1, int(np.floor((end - start) * fps + 1e-6)))
    if max_frames is not None:
        n_out = min(n_out, max_frames)
    targets = start + np.arange(n_out) / fps
    index = np.clip(np.searchsorted(np.asarray(times), targets + 1e-6, side="right") - 1, 0, len(frames) - 1)
    return np.stack([crop_image(frames[i], box, size) for i in index])

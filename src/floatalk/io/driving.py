"""Reading a driving or reference video as model-size face crops at the model's frame rate.

The face is found on up to `DETECT_FRAMES` frames spread over the clip and the crop (the usual
rule: a square of 1.6x the face box, centred, black outside the frame) is made from their
median box, so one crop holds for the whole clip: no per-frame jitter. Frames are resampled to
`fps` by taking, for each output time, the latest frame shown at that time.

Letters: T frames, S crop size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["DETECT_FRAMES", "load_face_video"]

DETECT_FRAMES = 9


def _decode(path: str | os.PathLike) -> Iterator[tuple[float, Any]]:
    """(presentation time in seconds, PyAV frame) for each frame of the first video stream, in
    order; a damaged file is one sentence."""
    import av

    from floatalk.io.video import open_video

    source, container = open_video(path)
    with container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        try:
            for n, frame in enumerate(container.decode(stream)):
                yield (float(frame.time) if frame.time is not None else n / rate), frame
        except av.FFmpegError as exc:
            raise UserInputError(f"Could not read video '{source}': the file is damaged.") from exc


def load_face_video(
    path: str | os.PathLike, size: int, fps: int, crop: bool = True, max_frames: int | None = None
) -> np.ndarray:
    """A video file -> (T, S, S, 3) uint8 face crops at `fps` (at most `max_frames`).

    crop=False letterboxes whole frames instead of cropping the face. Raises UserInputError for
    an unreadable file or, when cropping, a video in which no face is found. The file is read
    in passes (frame times; the frames the face is found on; the crops), so memory holds the
    crops and DETECT_FRAMES frames, never the whole decoded clip.
    """
    from floatalk.io.face import crop_image, detect_face, face_crop_box, letterbox_box

    times = [t for t, _ in _decode(path)]
    if not times:
        raise UserInputError(f"Could not read video '{path}': it has no frames.")
    start, end = times[0], times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0 / fps)
    n_out = max(1, int(np.floor((end - start) * fps + 1e-6)))
    if max_frames is not None:
        n_out = min(n_out, max_frames)
    targets = start + np.arange(n_out) / fps
    # for each output time, the latest frame shown at that time
    index = np.clip(np.searchsorted(np.asarray(times), targets + 1e-6, side="right") - 1, 0, len(times) - 1)
    last = int(index[-1])
    if crop:
        picks = set(np.linspace(0, last, min(DETECT_FRAMES, last + 1)).round().astype(int).tolist())
        faces = []
        for i, (_, frame) in enumerate(_decode(path)):
            if i in picks and (face := detect_face(frame.to_ndarray(format="rgb24"))) is not None:
                faces.append(face)
            if i >= last:
                break
        if not faces:
            raise UserInputError(f"No face found in the video '{path}'; pass --no-crop to use whole frames.")
        x, y, fw, fh = np.median(np.asarray(faces, dtype=np.float64), axis=0)
        box = face_crop_box((x, y, fw, fh))
    out = np.empty((n_out, size, size, 3), np.uint8)
    filled = 0
    for i, (_, frame) in enumerate(_decode(path)):
        if filled < n_out and index[filled] == i:
            image = frame.to_ndarray(format="rgb24")
            if not crop:
                box = letterbox_box(*image.shape[:2])
            piece = crop_image(image, box, size)
            while filled < n_out and index[filled] == i:  # a frame shown at several output times
                out[filled] = piece
                filled += 1
        if filled == n_out:
            break
    if filled < n_out:  # the file gave fewer frames the second time: hold the last one
        if filled == 0:
            raise UserInputError(f"Could not read video '{path}': it has no frames.")
        out[filled:] = out[filled - 1]
    return out

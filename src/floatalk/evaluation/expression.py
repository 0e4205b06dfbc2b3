"""Expression measures for face videos of the synthetic world: mouth corners and brows.

Both are read from relative darkness (luminance below the local skin level; no identity's
colours are assumed), in regions placed relative to the face box found by
`floatalk.evaluation.lipsync.find_face_box`, and normalised by the face-box side B, so they
compare across frame sizes and identities:

* **mouth_corner** (per frame): how far the mouth corners sit *above* the middle of the mouth,
  in units of B. In the lip-sync meter's mouth window (`floatalk.evaluation.lipsync.mouth_window`),
  the mouth's horizontal extent is where the darkness summed over the lip band (+-0.08 B around
  the mouth row) exceeds 20 % of its maximum; the corners' row is the darkness-weighted mean row
  of the lip band over the outer 15 % of that extent (both sides averaged), the middle's row that
  of the whole window over the central 20 %. Happy > neutral > sad. An open mouth pulls the
  middle's row down (the cavity grows downwards), so compare clips with
  `summary["mouth_corner"]`, the median over the frames whose opening is in the clip's lowest
  third (mouth nearly closed).
* **brow_height** (per frame): the distance from each eye up to its brow, in units of B,
  averaged over both sides. In a column band over each eye (+-0.05 B around 0.154 B left and
  right of the box centre, rows 0.40 .. 0.02 B above it), darkness relative to the band's 80th
  percentile (dead zone 0.4, so eye-socket shading is ignored) is averaged into a row profile.
  From the top: a dark run touching the top (hair) is skipped, the first peak above 15 % of the
  maximum is the brow, which ends where the profile falls below 30 % of that peak; everything
  below is the eye (iris, lids). The height is the eye's darkness centroid minus the brow's.
  Surprise and fear > neutral > angry. NaN where no brow is found; `summary["brow_height"]` is
  the median over the finite values.
"""

from __future__ import annotations

import numpy as np

from floatalk.evaluation.lipsync import (
    MouthWindow,
    _check_frames,
    find_face_box,
    luminance,
    mouth_opening,
    mouth_window,
    relative_darkness,
)

__all__ = ["measure_expression"]

_EYE_X = 0.154  # eye centres, box sides left/right of the box centre
_EYE_BAND = 0.05  # half-width of the column band over each eye, box sides
_EYE_ROWS = (-0.40, -0.02)  # rows searched for eye and brow, box sides below the box centre
_EYE_DEAD_ZONE = 0.4
_LIP_BAND = 0.08  # rows around the lip line where the corners are looked for, box sides


def _mean_row(frame: np.ndarray, c0: int, c1: int) -> float:
    """Darkness-weighted mean row of columns c0..c1-1 of an (h, w) darkness map, NaN if empty."""
    block = frame[:, c0:c1]
    mass = float(block.sum())
    if mass <= 1e-9:
        return float("nan")
    return float((block.sum(axis=1) * np.arange(block.shape[0])).sum() / mass)


def _mouth_corners(win: MouthWindow) -> np.ndarray:
    """Height of the mouth corners above the mouth's middle per frame (T,), in pixels."""
    half = max(1, int(round(_LIP_BAND * win.side)))
    top = max(0, win.anchor - half)
    out = np.full(len(win.dark), np.nan)
    for t, frame in enumerate(win.dark):
        band = frame[top : win.anchor + half + 1]
        col = band.sum(axis=0)
        if col.max() <= 1e-6:
            continue
        on = np.flatnonzero(col > 0.2 * col.max())
        left, right = int(on[0]), int(on[-1])
        width = right - left + 1
        if width < 5:
            continue
        edge = max(1, int(round(0.15 * width)))
        mid0 = left + int(round(0.4 * width))
        mid1 = max(mid0 + 1, left + int(round(0.6 * width)))
        corners = np.nanmean([_mean_row(band, left, left + edge), _mean_row(band, right + 1 - edge, right + 1)])
        out[t] = _mean_row(frame, mid0, mid1) - (corners + top)
    return out


def _brow_to_eye(profile: np.ndarray) -> float:
    """Rows from the brow's centroid down to the eye's centroid in a darkness row profile, or NaN.

    From the top: skip a dark run touching the top (hair), take the first peak above 15 % of the
    maximum as the brow, end it where the profile falls below 30 % of that peak; everything below
    is the eye.
    """
    top = float(profile.max())
    if top <= 1e-6:
        return float("nan")
    on = profile > 0.15 * top
    i = 0
    while i < len(profile) and on[i]:
        i += 1  # hair reaching into the window
    while i < len(profile) and not on[i]:
        i += 1
    if i >= len(profile):
        return float("nan")
    start = i
    while i + 1 < len(profile) and profile[i + 1] >= profile[i]:
        i += 1
    peak = profile[i]
    while i < len(profile) and profile[i] >= 0.3 * peak:
        i += 1
    valley = i
    brow, eye = profile[start:valley], profile[valley:]
    if brow.sum() <= 1e-9 or eye.sum() <= 0.05 * profile.sum():
        return float("nan")
    rows = np.arange(len(profile), dtype=np.float64)
    return float((eye * rows[valley:]).sum() / eye.sum() - (brow * rows[start:valley]).sum() / brow.sum())


def _brow_heights(frames: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    T, H, W = frames.shape[:3]
    x, y, w, h = box
    side = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    r0 = max(0, int(np.floor(cy + _EYE_ROWS[0] * side)))
    r1 = min(H, int(np.ceil(cy + _EYE_ROWS[1] * side)))
    sigma = max(0.6, 0.01 * side)
    taps = np.arange(-int(3 * sigma + 1), int(3 * sigma + 1) + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    sides = []
    for sign in (-1, 1):
        ex = cx + sign * _EYE_X * side
        c0 = max(0, int(np.floor(ex - _EYE_BAND * side)))
        c1 = min(W, int(np.ceil(ex + _EYE_BAND * side)))
        heights = np.full(T, np.nan)
        if r1 - r0 < 5 or c1 - c0 < 2:
            sides.append(heights)
            continue
        dark = relative_darkness(luminance(frames[:, r0:r1, c0:c1]), dead_zone=_EYE_DEAD_ZONE)
        profiles = dark.mean(axis=2)
        for t in range(T):
            prof = np.convolve(profiles[t].astype(np.float64), kernel, mode="same")
            heights[t] = _brow_to_eye(prof) / side
        sides.append(heights)
    both = np.stack(sides)
    count = np.isfinite(both).sum(axis=0)
    return np.where(count > 0, np.nansum(both, axis=0) / np.maximum(count, 1), np.nan)


def measure_expression(frames: np.ndarray, box: tuple[float, float, float, float] | None = None) -> dict:
    """Mouth-corner and brow heights of a face video (T, H, W, 3) uint8 RGB, normalised by face size.

    Returns {"mouth_corner": (T,) float64, corners above the mouth's middle in face-box sides;
    "brow_height": (T,) float64, eye-to-brow distance in face-box sides (NaN where not found);
    "mouth_opening": (T,) float64, as `floatalk.evaluation.lipsync.mouth_opening`;
    "summary": {"mouth_corner": median over the frames with the lowest third of openings,
    "brow_height": median over the finite frames}; "face_box": [x, y, w, h]; "face_detected"}.
    See the module docstring for how each is measured.
    """
    frames = _check_frames(frames)
    detected = box is not None
    if box is None:
        box, detected = find_face_box(frames)
    win = mouth_window(frames, box)
    corner = _mouth_corners(win) / win.side
    brow = _brow_heights(frames, box)
    opening = mouth_opening(frames, box)
    closed = opening <= np.quantile(opening, 1 / 3)
    with np.errstate(all="ignore"):
        corner_closed = corner[closed & np.isfinite(corner)]
        summary = {
            "mouth_corner": float(np.median(corner_closed)) if corner_closed.size else float("nan"),
            "brow_height": float(np.nanmedian(brow)) if np.isfinite(brow).any() else float("nan"),
        }
    return {
        "mouth_corner": corner,
        "brow_height": brow,
        "mouth_opening": opening,
        "summary": summary,
        "face_box": [round(float(v), 2) for v in box],
        "face_detected": bool(detected),
    }

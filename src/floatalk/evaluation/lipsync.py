"""A lip-sync meter for talking-portrait videos of the synthetic world (no ground truth needed).

It compares two per-frame curves and reports their Pearson correlation, SyncNet-style, over a
range of audio-video offsets:

**Mouth opening from the frames** (`mouth_opening`). All lengths below are in units of the face
box side B, so nothing depends on the frame size, and no colour of any identity is assumed.

1. Face box, once per video: OpenCV's Haar detector (`floatalk.io.face.detect_face`) on up to 8
   evenly spaced frames, the median box; when none is found or it is implausible, the video is
   taken to be a 1.6x face crop (a centred box of 0.624 of the shorter side).
2. Relative darkness: luminance L becomes ``D = clip(1 - L / skin, 0, 1)``, where ``skin`` is
   the frame's median L over a mid-face band (cheeks and nose: rows -0.02 .. 0.12 B around the
   box centre, +-0.22 B wide), then ``D' = clip((D - 0.25) / 0.75, 0, 1)`` ignores mild shading.
3. Mouth row, once per video: in a central strip (+-0.06 B) 0.12 .. 0.42 B below the box
   centre, the time-averaged D' row profile; its peak nearest the usual lip line (0.26 B, a
   Gaussian preference of 0.1 B) and the run around it above 30 % of the peak are the mouth;
   the run's centroid anchors a window from 0.1 B above to 0.22 B below it, +-0.2 B wide. This
   absorbs detector boxes that are off by +-30 % in size or a few percent in position.
4. Per frame: the mouth's column is the D'-weighted centroid of the lip band (favouring the
   face's midline); the opening is the mean, over the central columns (+-0.06 B), of D' summed
   down each column of the window, divided by B: the height of "dark" in the middle of the
   mouth. Lips add a constant, the dark cavity adds what the jaw opens. Integrating darkness
   (rather than thresholding a shape) keeps it meaningful on blurred, noisy, rescaled or
   recompressed frames (very strong compression, e.g. x264 crf >= 32 at <= 96 px, skips the
   small changes of the mouth altogether, and the score drops with it).

**Opening implied by the audio** (`audio_opening`). This is the world's public physics
(`floatalk.jaw_law`, which the world's renderer uses too): a vowel's loudness in the voice band
100-1000 Hz is proportional to its jaw opening (stress x envelope x openness(F1)), and the jaw
follows with a 20 ms lag. So the
audio is band-passed to 100-1000 Hz (zero-phase 4th-order Butterworth), squared, passed through
the same 20 ms first-order lag, square-rooted, averaged over each frame's 40 ms and divided by
its 99th percentile. It reads only the sound, never the ground-truth JSON.

**Score** (`score_lipsync`). For offsets d in -max_offset..+max_offset frames, the Pearson
correlation of ``video[t]`` with ``audio[t + d]`` over the overlapping frames. A positive best
offset means the sound comes d frames after the mouth shows it (audio late). Well-synced clips
of the world score about 0.98 at offset 0 (64-128 px); audio shifted by 0.4 s or taken from
another clip scores about 0 (see docs/EVALUATION.md for measured numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from floatalk.errors import UserInputError
from floatalk.jaw_law import frame_means, voice_envelope
from floatalk.units import FPS, SAMPLE_RATE

__all__ = [
    "MouthWindow",
    "audio_opening",
    "find_face_box",
    "mouth_opening",
    "mouth_window",
    "pearson",
    "score_lipsync",
]

CROP_FACE_FRACTION = 0.624
"""Face-box side as a fraction of the frame side in a 1.6x face crop (the world's framing)."""

# All in face-box sides.
_LIP_SEARCH = (0.12, 0.42)  # rows searched for the mouth, below the box centre
_LIP_EXPECTED = 0.26  # usual row of the lip line below the box centre
_WINDOW = (0.1, 0.22)  # mouth window rows above / below the mouth's centroid row
_HALF_WIDTH = 0.2  # mouth window half-width
_CORE = 0.06  # half-width of the measured central columns (and of the lip-line strip)
_DEAD_ZONE = 0.25
_SKIN_ROWS = (-0.02, 0.12)  # mid-face band (cheeks, nose) giving the skin level, box sides below the centre
_SKIN_HALF_WIDTH = 0.22


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
        raise UserInputError(
            f"Frames must be a (T, H, W, 3) uint8 RGB array, got shape {frames.shape} and dtype {frames.dtype}."
        )
    if min(frames.shape[1:3]) < 16:
        raise UserInputError(f"Frames of {frames.shape[2]}x{frames.shape[1]} pixels are too small to find a mouth in.")
    return frames


def luminance(frames: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of (..., 3) uint8 RGB -> (...) float32 in 0..255."""
    f = frames.astype(np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def find_face_box(frames: np.ndarray, samples: int = 8) -> tuple[tuple[float, float, float, float], bool]:
    """Face box (x, y, w, h) in pixels for a whole video (T, H, W, 3), and whether it was detected.

    Median of `floatalk.io.face.detect_face` (Haar, which this meter was calibrated with) over up
    to `samples` evenly spaced frames; if no plausible face is found, the centred box of a 1.6x
    face crop (side 0.624 of the shorter side).
    """
    from floatalk.io.face import detect_face

    frames = _check_frames(frames)
    T, H, W = frames.shape[:3]
    picks = np.unique(np.linspace(0, T - 1, min(samples, T)).round().astype(int))
    found = [box for box in (detect_face(frames[i], detector="haar") for i in picks) if box is not None]
    side = min(H, W)
    if found:
        x, y, w, h = (float(v) for v in np.median(np.asarray(found, dtype=np.float64), axis=0))
        cx, cy = x + w / 2, y + h / 2
        plausible = (
            0.35 * side <= max(w, h) <= 0.95 * side and abs(cx - W / 2) < 0.25 * W and abs(cy - H / 2) < 0.25 * H
        )
        if plausible:
            return (x, y, w, h), True
    s = CROP_FACE_FRACTION * side
    return (W / 2 - s / 2, H / 2 - s / 2, s, s), False


def relative_darkness(
    region: np.ndarray, mask: np.ndarray | None = None, dead_zone: float = _DEAD_ZONE, skin: np.ndarray | None = None
) -> np.ndarray:
    """(T, h, w) luminance -> darkness relative to each frame's skin level, 0..1 after a dead zone.

    `skin` (T,) is the skin luminance per frame; by default the 80th percentile of the frame's
    pixels inside `mask` (h, w) bool (all pixels when None). Pixels outside the mask get 0.
    """
    if skin is None:
        inside = region[:, mask] if mask is not None else region.reshape(len(region), -1)
        skin = np.percentile(inside, 80, axis=1)
    dark = np.clip(1.0 - region / np.maximum(np.asarray(skin, dtype=np.float64), 1.0)[:, None, None], 0.0, 1.0)
    dark = np.clip((dark - dead_zone) / (1.0 - dead_zone), 0.0, 1.0)
    return dark * mask if mask is not None else dark


def skin_level(frames: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Skin luminance per frame (T,): the median over the mid-face band (cheeks and nose) of the box."""
    H, W = frames.shape[1:3]
    x, y, w, h = box
    side = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    r0 = min(H - 1, max(0, int(math.floor(cy + _SKIN_ROWS[0] * side))))
    r1 = max(r0 + 1, min(H, int(math.ceil(cy + _SKIN_ROWS[1] * side))))
    c0 = min(W - 1, max(0, int(math.floor(cx - _SKIN_HALF_WIDTH * side))))
    c1 = max(c0 + 1, min(W, int(math.ceil(cx + _SKIN_HALF_WIDTH * side))))
    patch = luminance(frames[:, r0:r1, c0:c1])
    return np.median(patch.reshape(len(frames), -1), axis=1)


def _span(centre: float, lo: float, hi: float, limit: int) -> slice:
    """Pixel indices covering [centre + lo, centre + hi), clipped to 0..limit."""
    start = min(limit - 1, max(0, int(math.floor(centre + lo))))
    return slice(start, max(start + 1, min(limit, int(math.ceil(centre + hi)))))


@dataclass
class MouthWindow:
    """The measured mouth area of a video: relative darkness and where it lies.

    dark: (T, h, w) relative darkness (0..1 after the dead zone); rows, cols: its place in the
    frame; anchor: row of the lip line inside `dark`; centre: (T,) mouth column per frame inside
    `dark`; side: face-box side (px).
    """

    dark: np.ndarray
    rows: slice
    cols: slice
    anchor: int
    centre: np.ndarray
    side: float


def mouth_window(frames: np.ndarray, box: tuple[float, float, float, float]) -> MouthWindow:
    """Find the lip line and cut the mouth window (see the module docstring), for a (T, H, W, 3) video."""
    T, H, W = frames.shape[:3]
    x, y, w, h = box
    side = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    skin = skin_level(frames, box)
    # 1. The mouth's row: in a central strip below the nose, the time-averaged darkness profile;
    #    its peak's run (above 30 % of the peak) is the mouth, whose centroid anchors the window.
    strip_rows = _span(cy, _LIP_SEARCH[0] * side, _LIP_SEARCH[1] * side, H)
    strip_cols = _span(cx, -_CORE * side, _CORE * side, W)
    strip = relative_darkness(luminance(frames[:, strip_rows, strip_cols]), skin=skin)
    profile = _smooth(strip.mean(axis=(0, 2)), max(0.5, 0.01 * side))
    expected = (np.arange(strip_rows.start, strip_rows.stop) + 0.5 - cy) / side - _LIP_EXPECTED
    peak = int(np.argmax(profile * np.exp(-0.5 * (expected / 0.1) ** 2)))  # the dark run nearest the usual place
    lo, hi = peak, peak
    while lo > 0 and profile[lo - 1] > 0.3 * profile[peak]:
        lo -= 1
    while hi + 1 < len(profile) and profile[hi + 1] > 0.3 * profile[peak]:
        hi += 1
    run = profile[lo : hi + 1]
    centroid = lo + float((run * np.arange(len(run))).sum() / run.sum()) if run.sum() > 1e-9 else float(peak)
    lip_line = strip_rows.start + int(round(centroid))
    # 2. The window around it, darkness relative to the mid-face skin level.
    rows = _span(lip_line, -_WINDOW[0] * side, _WINDOW[1] * side, H)
    cols = _span(cx, -_HALF_WIDTH * side, _HALF_WIDTH * side, W)
    if rows.stop - rows.start < 3 or cols.stop - cols.start < 3:
        raise UserInputError("The mouth region falls outside the frames; is this a face crop?")
    dark = relative_darkness(luminance(frames[:, rows, cols]), skin=skin)
    anchor = lip_line - rows.start
    # 3. The mouth's column per frame: darkness-weighted centroid of the lip band, near the midline.
    band = dark[:, max(0, anchor - int(_WINDOW[0] * side)) : anchor + int(_WINDOW[0] * side) + 1].sum(axis=1)
    xs = np.arange(cols.stop - cols.start, dtype=np.float64)
    mid = cx - cols.start - 0.5
    weight = band**2 * np.exp(-0.5 * ((xs - mid) / (0.08 * side)) ** 2)
    total = weight.sum(axis=1)
    centre = np.where(total > 1e-9, (weight * xs).sum(axis=1) / np.maximum(total, 1e-9), mid)
    return MouthWindow(dark, rows, cols, anchor, centre, side)


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    taps = np.arange(-int(3 * sigma + 1), int(3 * sigma + 1) + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    return np.convolve(values, kernel / kernel.sum(), mode="same")


def mouth_opening(frames: np.ndarray, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Per-frame mouth opening of a face video (T, H, W, 3) uint8 RGB -> (T,) float64.

    Height of "dark" in the middle of the mouth in units of the face-box side (see the module
    docstring). `box` (x, y, w, h) skips the face detection; by default `find_face_box`.
    """
    frames = _check_frames(frames)
    if box is None:
        box, _ = find_face_box(frames)
    win = mouth_window(frames, box)
    columns = win.dark.sum(axis=1)  # (T, w): darkness integrated down each column, in pixels
    xs = np.arange(columns.shape[1], dtype=np.float64)
    inside = np.abs(xs[None, :] - win.centre[:, None]) <= max(1.0, _CORE * win.side)
    heights = (columns * inside).sum(axis=1) / np.maximum(inside.sum(axis=1), 1)
    return heights / win.side


def audio_opening(audio: np.ndarray, n_frames: int, fps: float = FPS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Jaw opening implied by speech (N,) float at `sample_rate` -> (n_frames,) float64, about 0..1.

    Voice-band (100-1000 Hz) amplitude envelope with the world's 20 ms jaw lag, averaged per
    frame (frame k covers [k/fps, (k+1)/fps)) and divided by its 99th percentile; audio shorter
    than the video counts as silence.
    """
    wave = np.asarray(audio, dtype=np.float64)
    if wave.ndim != 1:
        raise UserInputError(f"Audio must be a 1-D array of samples, got shape {wave.shape}.")
    if n_frames < 1:
        raise UserInputError(f"The number of frames must be at least 1, got {n_frames}.")
    if not fps > 0:
        raise UserInputError(f"The frame rate must be positive, got {fps}.")
    curve = frame_means(voice_envelope(np.nan_to_num(wave), sample_rate), n_frames, fps, sample_rate)
    top = float(np.percentile(curve, 99))
    return curve / top if top > 1e-9 else curve


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length 1-D arrays; 0.0 when either is constant or too short."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) < 3:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def _offset_scores(video: np.ndarray, audio: np.ndarray, max_offset: int) -> tuple[list[int], list[float]]:
    T = len(video)
    offsets, corrs = [], []
    for d in range(-max_offset, max_offset + 1):
        lo, hi = max(0, -d), min(T, T - d)
        offsets.append(d)
        corrs.append(pearson(video[lo:hi], audio[lo + d : hi + d]) if hi - lo >= 3 else 0.0)
    return offsets, corrs


MIN_FRAMES = 10
"""Fewest frames a lip-sync score is computed on (0.4 s at 25 fps): a correlation over fewer means nothing."""


def check_lipsync_inputs(n_frames: int, fps: float, max_offset: int) -> None:
    """UserInputError for a video too short to score or a bad offset window."""
    if isinstance(max_offset, bool) or not isinstance(max_offset, (int, np.integer)) or max_offset < 0:
        raise UserInputError(f"The offset window must be a non-negative integer, got {max_offset!r}.")
    if n_frames < MIN_FRAMES:
        raise UserInputError(
            f"Lip sync needs a video of at least {MIN_FRAMES} frames ({MIN_FRAMES / fps:.1f} s at {fps:g} fps); "
            f"this one has {n_frames}."
        )


def sync_scores(video: np.ndarray, sound: np.ndarray, fps: float, max_offset: int) -> dict:
    """Correlation of a mouth-opening curve (T,) with a speech curve (T,) over audio-video offsets.

    Returns {"correlation": Pearson r at offset 0, "best_offset": frames (positive = audio late),
    "correlation_best": r there, "confidence": r_best - median r over the offsets (SyncNet's
    definition, on correlations), "offsets", "correlations", "n_frames", "fps"}. Ties go to the
    offset nearest 0.
    """
    offsets, corrs = _offset_scores(video, sound, int(min(max_offset, max(len(video) - 3, 0))))
    best = max(range(len(offsets)), key=lambda i: (round(corrs[i], 12), -abs(offsets[i])))
    zero = offsets.index(0)
    return {
        "correlation": round(corrs[zero], 6),
        "best_offset": int(offsets[best]),
        "correlation_best": round(corrs[best], 6),
        "confidence": round(corrs[best] - float(np.median(corrs)), 6),
        "offsets": offsets,
        "correlations": [round(c, 6) for c in corrs],
        "n_frames": int(len(video)),
        "fps": float(fps),
    }


def score_lipsync(
    frames: np.ndarray,
    audio: np.ndarray,
    fps: float = FPS,
    sample_rate: int = SAMPLE_RATE,
    max_offset: int = 10,
    box: tuple[float, float, float, float] | None = None,
) -> dict:
    """Lip-sync score of a face video (T, H, W, 3) uint8 against speech (N,) float32 at 16 kHz.

    Returns {"correlation": Pearson r at offset 0, "best_offset": frames (positive = audio
    late), "correlation_best": r at the best offset, "confidence": r_best - median r over the
    offsets, "offsets": [-max..max], "correlations": r per offset, "n_frames", "fps",
    "face_box": [x, y, w, h], "face_detected": bool}. Ties go to the offset nearest 0.
    """
    frames = _check_frames(frames)
    check_lipsync_inputs(len(frames), fps, max_offset)
    detected = box is not None
    if box is None:
        box, detected = find_face_box(frames)
    video = mouth_opening(frames, box)
    sound = audio_opening(audio, len(frames), fps, sample_rate)
    return sync_scores(video, sound, fps, max_offset) | {
        "face_box": [round(float(v), 2) for v in box],
        "face_detected": bool(detected),
    }

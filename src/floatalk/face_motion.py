"""Facial motion measured from the frames of a face video: the head's pose and local effects.

Dense optical flow (Farneback) from a reference frame to each frame is read over the face crop.
The head: a similarity transform (translation, scale, rotation about the face's centre) fitted
by least squares to the flow over the face, leaving out what moves without the head (the mouth
and jaw, the brows and the eyes), each pixel weighted by its texture (the reference's gradient
magnitude). The local effects: what that transform leaves unexplained, averaged over regions of
the crop: mouth opening (lower lip and jaw against upper lip), mouth width, each brow's height,
each eye's opening (lower lid against upper lid).

The regions assume the release's framing, a square crop of 1.6x the face box, centred (they sit
where the synthetic world's landmarks fall in such a crop, which matches a frontal real face).
The same measurement serves the motion atlas (what each motion direction does, measured on
decoded frames) and the benchmarks (what an edit did to a video).

Letters: T frames, H, W frame size, E effects.
"""

from __future__ import annotations

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["EFFECTS", "face_effects", "head_motion_energy", "head_track", "shift_energy", "upper_face_shift"]

EFFECTS: tuple[str, ...] = (
    "head_x",  # translation, fraction of the frame width
    "head_y",  # translation, fraction of the frame height
    "head_scale",  # scale - 1 (small-motion linearisation of the log-scale)
    "head_roll",  # rotation, radians (small-motion), positive clockwise on screen
    "mouth_open",
    "mouth_width",
    "brow_left",  # left as seen in the image
    "brow_right",
    "eye_left",
    "eye_right",
)
"""What `face_effects` measures, in order (local effects in fractions of the frame size)."""

# Regions, (x0, x1, y0, y1) in crop coordinates [-1, 1] (x left to right, y top to bottom).
_FACE = (-0.625, 0.625, -0.625, 0.625)
_UPPER_LIP = (-0.2, 0.2, 0.22, 0.34)
_LOWER_LIP = (-0.2, 0.2, 0.36, 0.55)
_MOUTH_LEFT = (-0.3, -0.1, 0.25, 0.5)
_MOUTH_RIGHT = (0.1, 0.3, 0.25, 0.5)
_BROW_LEFT = (-0.35, -0.02, -0.42, -0.26)
_BROW_RIGHT = (0.02, 0.35, -0.42, -0.26)
_EYE_LEFT = ((-0.35, -0.1, -0.22, -0.14), (-0.35, -0.1, -0.14, -0.06))  # upper lid band, lower lid band
_EYE_RIGHT = ((0.05, 0.3, -0.22, -0.14), (0.05, 0.3, -0.14, -0.06))


class _Regions:
    """Pixel masks of the regions and the head fit's weighted least-squares solver for one reference."""

    def __init__(self, reference_gray: np.ndarray) -> None:
        import cv2

        H, W = reference_gray.shape
        self.H, self.W = H, W
        ys, xs = np.meshgrid((np.arange(H) + 0.5) / H * 2 - 1, (np.arange(W) + 0.5) / W * 2 - 1, indexing="ij")
        self.xs, self.ys = xs, ys

        def box(b: tuple[float, float, float, float]) -> np.ndarray:
            return (xs > b[0]) & (xs < b[1]) & (ys > b[2]) & (ys < b[3])

        self.box = box
        rigid = box(_FACE) & ~box((-0.35, 0.35, 0.1, 0.625)) & ~box((-0.5, 0.5, -0.47, -0.03))
        gx = cv2.Sobel(reference_gray, cv2.CV_32F, 1, 0)
        gy = cv2.Sobel(reference_gray, cv2.CV_32F, 0, 1)
        weight = np.hypot(gx, gy)[rigid].astype(np.float64) + 1e-6
        X, Y = xs[rigid], ys[rigid]
        ones, zeros = np.ones_like(X), np.zeros_like(X)
        # displacement (crop units): dx = tx + a X - b Y, dy = ty + b X + a Y
        design = np.concatenate([np.stack([ones, zeros, X, -Y], 1), np.stack([zeros, ones, Y, X], 1)])
        sw = np.sqrt(np.concatenate([weight, weight]))[:, None]
        self.solver = np.linalg.pinv(design * sw) * sw.T  # (4, 2P)
        self.rigid = rigid

    def effects(self, flow: np.ndarray) -> np.ndarray:
        """(H, W, 2) flow in pixels -> (E,) effects."""
        dx = flow[..., 0] * (2.0 / self.W)  # crop units
        dy = flow[..., 1] * (2.0 / self.H)
        tx, ty, a, b = self.solver @ np.concatenate([dx[self.rigid], dy[self.rigid]])
        rx = dx - (tx + a * self.xs - b * self.ys)
        ry = dy - (ty + b * self.xs + a * self.ys)

        def mean(field: np.ndarray, b: tuple[float, float, float, float]) -> float:
            return float(field[self.box(b)].mean()) / 2.0  # crop units -> fractions of the frame

        return np.array(
            [
                tx / 2.0,
                ty / 2.0,
                a,
                b,
                mean(ry, _LOWER_LIP) - mean(ry, _UPPER_LIP),
                mean(rx, _MOUTH_RIGHT) - mean(rx, _MOUTH_LEFT),
                mean(ry, _BROW_LEFT),
                mean(ry, _BROW_RIGHT),
                mean(ry, _EYE_LEFT[1]) - mean(ry, _EYE_LEFT[0]),
                mean(ry, _EYE_RIGHT[1]) - mean(ry, _EYE_RIGHT[0]),
            ]
        )


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def face_effects(frames: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 face-crop frames -> (T, E) effects of each frame against `reference`
    ((H, W, 3), default the first frame); see EFFECTS for the columns."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise UserInputError(f"Facial motion needs (T, H, W, 3) frames, got shape {frames.shape}.")
    ref = _gray(frames[0] if reference is None else reference)
    regions = _Regions(ref)
    out = np.zeros((len(frames), len(EFFECTS)))
    for t, frame in enumerate(frames):
        flow = cv2.calcOpticalFlowFarneback(ref, _gray(frame), None, 0.5, 4, 15, 5, 5, 1.1, 0)
        out[t] = regions.effects(flow)
    return out


def head_track(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 face-crop frames -> (T, 4) head pose relative to the first frame: x and y
    translation (fractions of the frame), scale (ratio) and roll (degrees, counter-clockwise on
    screen, as OpenCV's rotation angles and the synthetic world's head_rot)."""
    e = face_effects(frames)
    return np.stack([e[:, 0], e[:, 1], 1.0 + e[:, 2], -np.degrees(e[:, 3])], axis=1)


def head_motion_energy(track: np.ndarray) -> float:
    """How much a head moves, one number: the RMS over frames of the (T, 4) track's departure from
    its mean, translation in frame fractions, scale as log-ratio, roll in radians."""
    t = np.asarray(track, dtype=np.float64)
    parts = np.stack([t[:, 0], t[:, 1], np.log(t[:, 2]), np.radians(t[:, 3])], axis=1)
    parts = parts - parts.mean(axis=0)
    return float(np.sqrt((parts**2).sum(axis=1).mean()))


def upper_face_shift(frames: np.ndarray, top: float = 0.6) -> np.ndarray:
    """(T, H, W, 3) uint8 face-crop frames -> (T, 2) x and y translation in pixels of the upper
    face (the top `top` share of the crop: hair, brows, eyes, nose) against the first frame, by
    phase correlation (a Hann window against the crop's edges). A second, model-free view of head
    motion beside `head_track`: it sees every edge of the upper face move alike, so a brow raise
    reads as a small upward shift."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise UserInputError(f"Facial motion needs (T, H, W, 3) frames, got shape {frames.shape}.")
    rows = max(8, int(round(top * frames.shape[1])))
    upper = frames[:, :rows].astype(np.float32).mean(axis=3)  # (T, rows, W)
    window = cv2.createHanningWindow((upper.shape[2], upper.shape[1]), cv2.CV_32F)
    return np.array([cv2.phaseCorrelate(upper[0], f, window)[0] for f in upper], dtype=np.float64)


def shift_energy(shift: np.ndarray) -> float:
    """One number for a (T, 2) translation track: the RMS over frames of its distance from the
    first frame, in pixels."""
    s = np.asarray(shift, dtype=np.float64)
    return float(np.sqrt((s**2).sum(axis=1).mean()))

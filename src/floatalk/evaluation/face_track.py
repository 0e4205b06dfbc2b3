"""Measures read from a video's face mesh: mouth opening, eyes, head pose and landmark distance.

A video is tracked once (`track_faces`, floatalk.io.mesh.MeshTracker: the detector on the first
frame, then the mesh in the region fitted to the previous frame's points); every measure below
is a function of the (T, P, 3) points. Lengths are divided by the eye-corner distance (outer
corners, points 33 and 263), so they do not depend on the frame size or the face's distance.

* `mouth_opening_mesh`: mean gap between five pairs of inner-lip points, over the eye-corner
  distance. It drives the landmark lip-sync meter `score_lipsync_mesh`, which compares it with
  the speech curve of `floatalk.evaluation.lipsync.audio_opening` over a window of offsets
  (the same search and keys as the synthetic world's meter).
* `eye_openness` and `count_blinks`: lid gap over eye width (both eyes averaged); a blink is a
  dip below 80 % of the clip's median openness lasting at most 0.5 s (on the synthetic world the
  mesh's lids close to 60-70 % of their median in a blink; benchmarks/eval_mesh_meter.py).
* `head_pose`: yaw, pitch and roll (degrees) of the face's frame built from the mesh's 3-D points
  (x along the eye corners, y from forehead to chin); `head_motion` gives their spread and the
  motion energy (mean speed of the points, eye-corner distances per second).
* `landmark_distance`: LMD against a reference video, mouth points (each mouth centred on its
  own mean) and all points, in pixels of a 256 px frame.

Letters: T frames, P = 468 mesh points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floatalk.errors import UserInputError
from floatalk.progress import Progress, no_progress
from floatalk.units import FPS, SAMPLE_RATE

__all__ = [
    "FaceTrack",
    "count_blinks",
    "eye_openness",
    "head_motion",
    "head_pose",
    "landmark_distance",
    "mouth_opening_mesh",
    "score_lipsync_mesh",
    "track_faces",
]

# MediaPipe face-mesh indices (canonical numbering).
_EYE_CORNERS = (33, 263)
_INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402))
# Each eye: (outer corner, inner corner, upper-lid points, lower-lid points).
_EYES = (
    (33, 133, (159, 158, 160), (145, 153, 144)),
    (263, 362, (386, 385, 387), (374, 380, 373)),
)
MOUTH_POINTS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
                78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)  # fmt: skip
_FOREHEAD, _CHIN = 10, 152
_LMD_FRAME = 256  # LMD is reported in pixels of a frame of this side


@dataclass
class FaceTrack:
    """A video's face mesh: points (T, P, 3) in pixels of frames of `size` (H, W), NaN where no
    face was found; found (T,) bool."""

    points: np.ndarray
    found: np.ndarray
    size: tuple[int, int]

    @property
    def found_fraction(self) -> float:
        return float(self.found.mean()) if len(self.found) else 0.0

    def filled(self) -> np.ndarray:
        """(T, P, 3) points with frames where no face was found filled in from their neighbours
        (`floatalk.io.mesh.fill_gaps`); UserInputError when none was found."""
        from floatalk.io.mesh import fill_gaps

        return fill_gaps(self.points, self.found)


def track_faces(frames: np.ndarray, progress: Progress = no_progress) -> FaceTrack:
    """Track the face mesh through a (T, H, W, 3) uint8 RGB video (the largest face of the first
    frame where one is found); reports progress('mesh', t, T)."""
    from floatalk.io.mesh import track_points

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise UserInputError(f"Frames must be a (T, H, W, 3) uint8 RGB array, got shape {frames.shape}.")
    points, found = track_points(frames, progress)
    return FaceTrack(points, found, (int(frames.shape[1]), int(frames.shape[2])))


def _eye_distance(points: np.ndarray) -> np.ndarray:
    a, b = _EYE_CORNERS
    return np.linalg.norm(points[:, b, :2] - points[:, a, :2], axis=-1)


def mouth_opening_mesh(points: np.ndarray) -> np.ndarray:
    """(T, P, 2+) mesh points -> (T,) mean inner-lip gap over the eye-corner distance."""
    gaps = [np.linalg.norm(points[:, lo, :2] - points[:, up, :2], axis=-1) for up, lo in _INNER_LIP_PAIRS]
    return np.mean(gaps, axis=0) / np.maximum(_eye_distance(points), 1e-6)


def eye_openness(points: np.ndarray) -> np.ndarray:
    """(T, P, 2+) mesh points -> (T,) lid gap over eye width, both eyes averaged."""
    values = []
    for outer, inner, upper, lower in _EYES:
        width = np.linalg.norm(points[:, outer, :2] - points[:, inner, :2], axis=-1)
        gap = np.mean([np.linalg.norm(points[:, u, :2] - points[:, d, :2], axis=-1) for u, d in zip(upper, lower)], 0)
        values.append(gap / np.maximum(width, 1e-6))
    return np.mean(values, axis=0)


def count_blinks(openness: np.ndarray, fps: float = FPS, threshold: float = 0.8, longest: float = 0.5) -> int:
    """Blinks in an eye-openness curve (T,): runs below `threshold` x the median lasting at most `longest` s."""
    low = np.asarray(openness) < threshold * float(np.median(openness))
    blinks, run = 0, 0
    for value in [*low.tolist(), False]:
        if value:
            run += 1
            continue
        if 0 < run <= longest * fps:
            blinks += 1
        run = 0
    return blinks


def head_pose(points: np.ndarray) -> np.ndarray:
    """(T, P, 3) mesh points -> (T, 3) yaw, pitch, roll in degrees of the face's own frame.

    x axis: outer eye corners (subject's right -> left); y axis: forehead -> chin, made orthogonal
    to x; z = x cross y. Roll turns about the view axis, yaw about the vertical, pitch about x.
    """
    p = np.asarray(points, dtype=np.float64)
    x = p[:, _EYE_CORNERS[1]] - p[:, _EYE_CORNERS[0]]
    x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    y = p[:, _CHIN] - p[:, _FOREHEAD]
    y -= (y * x).sum(-1, keepdims=True) * x
    y /= np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-9)
    z = np.cross(x, y)
    yaw = np.degrees(np.arcsin(np.clip(-x[:, 2], -1, 1)))
    pitch = np.degrees(np.arctan2(-y[:, 2], z[:, 2]))
    roll = np.degrees(np.arctan2(x[:, 1], x[:, 0]))
    return np.stack([yaw, pitch, roll], axis=1)


def head_motion(points: np.ndarray, fps: float = FPS) -> dict[str, float]:
    """Head-motion statistics of (T, P, 3) mesh points: spread (standard deviation, degrees) of
    yaw, pitch and roll, and motion energy (mean speed of the points, eye-corner distances per s)."""
    pose = head_pose(points)
    scale = float(np.median(_eye_distance(points)))
    speed = np.linalg.norm(np.diff(points[:, :, :2], axis=0), axis=-1).mean(axis=1) * fps / max(scale, 1e-6)
    return {
        "yaw_std": float(pose[:, 0].std()),
        "pitch_std": float(pose[:, 1].std()),
        "roll_std": float(pose[:, 2].std()),
        "motion_energy": float(speed.mean()) if len(speed) else 0.0,
    }


def landmark_distance(
    points: np.ndarray, size: tuple[int, int], reference: np.ndarray, reference_size: tuple[int, int]
) -> dict[str, float]:
    """LMD of (T, P, 2+) points in frames of `size` (H, W) against a reference's (T, P, 2+) points.

    Both are scaled to a 256 px frame (by the frame's longer side); "lmd_mouth" is the mean
    distance of the 40 lip points with each mouth centred on its own mean, "lmd_face" the mean
    distance of all points. Pixels of the 256 px frame, averaged over frames.
    """
    if len(points) != len(reference):
        raise UserInputError(f"LMD needs videos of the same length, got {len(points)} and {len(reference)} frames.")
    a = np.asarray(points, dtype=np.float64)[:, :, :2] * (_LMD_FRAME / max(size))
    b = np.asarray(reference, dtype=np.float64)[:, :, :2] * (_LMD_FRAME / max(reference_size))
    mouth = list(MOUTH_POINTS)
    am = a[:, mouth] - a[:, mouth].mean(axis=1, keepdims=True)
    bm = b[:, mouth] - b[:, mouth].mean(axis=1, keepdims=True)
    return {
        "lmd_mouth": float(np.linalg.norm(am - bm, axis=-1).mean()),
        "lmd_face": float(np.linalg.norm(a - b, axis=-1).mean()),
    }


def score_lipsync_mesh(
    video: np.ndarray | FaceTrack,
    audio: np.ndarray,
    fps: float = FPS,
    sample_rate: int = SAMPLE_RATE,
    max_offset: int = 10,
) -> dict:
    """Landmark lip-sync score of a face video (T, H, W, 3) uint8 (or its `FaceTrack`) against
    speech (N,) float at `sample_rate`: `mouth_opening_mesh` against `audio_opening` over offsets
    -max_offset..max_offset. Same keys as `floatalk.evaluation.lipsync.score_lipsync` (face_box:
    the median mesh face box; face_detected: a face in at least half the frames) plus
    "face_found_fraction"."""
    from floatalk.evaluation.lipsync import audio_opening, check_lipsync_inputs, sync_scores
    from floatalk.io.mesh import mesh_face_box

    track = video if isinstance(video, FaceTrack) else track_faces(video)
    check_lipsync_inputs(len(track.found), fps, max_offset)
    points = track.filled()
    curve = mouth_opening_mesh(points)
    sound = audio_opening(audio, len(curve), fps, sample_rate)
    box = np.median(np.array([mesh_face_box(p) for p in points[track.found]]), axis=0)
    return sync_scores(curve, sound, fps, max_offset) | {
        "face_box": [round(float(v), 2) for v in box],
        "face_detected": bool(track.found_fraction >= 0.5),
        "face_found_fraction": round(track.found_fraction, 4),
    }

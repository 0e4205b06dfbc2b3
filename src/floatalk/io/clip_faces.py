"""One clip's face for training data: a stable crop box from the tracked face mesh, and the mesh
in the crop's coordinates, frame by frame.

`floatalk preprocess` calls `clip_faces` on the frames it keeps (25 fps). The face mesh is
tracked through them (`floatalk.io.mesh.MeshTracker`: the detector on the first frame, then the
mesh in the region fitted to the previous frame's points, so the same face is followed), each
frame's calibrated face box is turned into the release's crop (a square of 1.6x the box), and
the clip gets one crop box: the median centre and the median side of those crops. Frames where
the mesh lost the face take their points from the nearest frames that have them (linear
interpolation) and are counted in `found`.

Points in crop coordinates are grid_sample's: -1 and 1 are the outer edges of the crop's first
and last pixels (the convention of the synthetic world's landmarks.npy).

Letters: T frames, P = 468 mesh points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floatalk.io.face import DEFAULT_CROP_SCALE, CropBox, face_crop_box

__all__ = ["ClipFaces", "clip_faces", "to_crop_coordinates"]


@dataclass(frozen=True)
class ClipFaces:
    """box: the clip's crop box (or None when the mesh found a face in fewer than half the frames);
    points: (T, P, 2) float64 mesh points in frame pixels (gaps filled, see the module docstring);
    found: (T,) bool, frames where the mesh found the face itself."""

    box: CropBox | None
    points: np.ndarray
    found: np.ndarray


def to_crop_coordinates(points: np.ndarray, box: CropBox) -> np.ndarray:
    """(..., 2) frame pixels -> the crop's [-1, 1] grid_sample coordinates (crop_image maps the box
    edges to the crop's outer pixel edges)."""
    return (np.asarray(points, dtype=np.float64) - (box.x0, box.y0)) / box.size * 2.0 - 1.0


def clip_faces(frames: list[np.ndarray], scale: float = DEFAULT_CROP_SCALE) -> ClipFaces:
    """Track the face mesh through a clip's (H, W, 3) uint8 RGB frames and derive its crop box."""
    from floatalk.io.mesh import fill_gaps, mesh_face_box, track_points

    points, found = track_points(frames)
    if found.sum() * 2 < len(frames):
        return ClipFaces(None, points[:, :, :2], found)
    filled = fill_gaps(points, found)
    crops = [face_crop_box(mesh_face_box(p), scale) for p in filled[found]]
    size = float(np.median([c.size for c in crops]))
    cx = float(np.median([c.x0 + c.size / 2 for c in crops]))
    cy = float(np.median([c.y0 + c.size / 2 for c in crops]))
    return ClipFaces(CropBox(cx - size / 2, cy - size / 2, size), filled[:, :, :2], found)

"""Offline face detection and the 468-point face mesh (MediaPipe's models, run with ai-edge-litert).

Three model files ship in `floatalk/assets/face_mesh` (Apache-2.0, from the mediapipe 0.10.21
wheel): BlazeFace full-range (192 px input, 2304 anchors) and short-range (128 px, 896
anchors) face detectors, and the face-landmark model (192 px input, 468 points with depth and a
face-presence score). They run with `ai-edge-litert` (Google's TensorFlow Lite runtime), a
plain dependency with no clash with the rest of floatalk's.

* `detect_faces(image)`: every face in a photo, largest first, each with its mesh. The
  full-range detector runs on a pyramid of overlapping square tiles, coarse to fine (the whole
  photo first, then tiles of half the side, ...), down to tiles of `MIN_TILE` pixels, or, once
  faces are found, down to tiles twice the largest face's side; each detection is confirmed by the mesh
  model's face-presence score, refined once (the mesh is re-run on the square fitted to its own
  points) and duplicates are merged.
* `MeshTracker`: a video's mesh frame by frame, each frame's region taken from the previous
  frame's points (the detector runs only on the first frame and when the face is lost).
* `mesh_face_box(points)`: the face box (x, y, w, h) that floatalk crops around, calibrated
  from the mesh to the Haar / release framing (docs/FACES.md gives the fit).

Coordinates are pixels of the image, pixel (i, j) covering [j, j + 1) x [i, i + 1) as in
`floatalk.io.face`. Letters: P = 468 mesh points, K = 6 detector keypoints.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np

from floatalk.errors import UserInputError

__all__ = [
    "MESH_POINTS",
    "MeshFace",
    "MeshTracker",
    "Region",
    "detect_faces",
    "fill_gaps",
    "mesh_available",
    "mesh_face_box",
    "run_mesh",
    "track_points",
]

MESH_POINTS = 468
MIN_TILE = 128  # smallest detector tile side (px): faces down to about 15 px are found
_DETECT_SCORE = 0.5  # BlazeFace score threshold
_PRESENCE = 0.5  # mesh face-presence threshold
_NMS_IOU = 0.3
_ROI_SCALE = 1.5  # the mesh model sees a square of 1.5x the face (MediaPipe's framing)
_MESH_SIZE = 192

# Mesh point indices used here (MediaPipe's canonical face mesh numbering).
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the subject's right eye is on the image's left
UPPER_LIP, LOWER_LIP = 13, 14  # inner lip midpoints
MOUTH_RIGHT, MOUTH_LEFT = 78, 308  # inner mouth corners
FOREHEAD, CHIN = 10, 152
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip

BOX_SIDE = 2.12
"""Face-box side in eye-to-mouth distances (`mesh_face_box`): the median over skimage's astronaut
photo and its variants of the Haar box side (benchmarks/bench_faces.py --calibrate)."""
BOX_SHIFT = 0.25
"""Face-box centre below the eyes' midpoint, in eye-to-mouth distances (fitted with BOX_SIDE)."""


def _asset(name: str) -> str:
    return str(resources.files("floatalk.assets") / "face_mesh" / name)


def mesh_available() -> bool:
    """True when the TensorFlow Lite runtime imports (it is a dependency; False means a broken install)."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


class _Model:
    """One TensorFlow Lite model with its own interpreter; calls are serialised (interpreters are not thread-safe)."""

    def __init__(self, name: str) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise UserInputError(
                "The face mesh needs the 'ai-edge-litert' package, which is missing; reinstall floatalk "
                "(pip install -e .) or pass --detector haar."
            ) from None
        with _quiet_stderr():  # the runtime logs "INFO: Created TensorFlow Lite XNNPACK delegate" to fd 2
            self.interpreter = Interpreter(model_path=_asset(name), num_threads=1)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = sorted(self.interpreter.get_output_details(), key=lambda d: int(np.prod(d["shape"])))
        self.size = int(self.input["shape"][1])
        self.lock = threading.Lock()

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        """(S, S, 3) float32 input -> outputs, smallest first."""
        with self.lock:
            self.interpreter.set_tensor(self.input["index"], tensor[None].astype(np.float32))
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(d["index"])[0].copy() for d in self.outputs]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C++ logging) for the duration; Python's sys.stderr is flushed first."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def _model(name: str) -> _Model:
    return _Model(name)


@functools.cache
def _anchors(size: int, strides: tuple[int, ...], per_cell: tuple[int, ...]) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1] of SSD feature grids (fixed anchor size: only centres matter)."""
    centres = []
    for stride, count in zip(strides, per_cell):
        n = size // stride
        ys, xs = np.mgrid[0:n, 0:n]
        grid = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, count, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float64)


# name -> (file, anchor strides, anchors per cell). The short-range model's three stride-16
# layers are merged into one grid of 6 anchors per cell, as its output is ordered.
_DETECTORS = {
    "full": ("face_detection_full_range_sparse.tflite", (4,), (1,)),
    "short": ("face_detection_short_range.tflite", (8, 16), (2, 6)),
}


@dataclass(frozen=True)
class Region:
    """A square of the image the mesh model looks at: centre (cx, cy), side and rotation (radians,
    positive turns the square's x axis towards the image's y axis)."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def matrix(self, size: int) -> np.ndarray:
        """2x3 affine map from pixel indices of the size x size model input to pixel indices of the image."""
        r = self.side / size
        c, s = math.cos(self.angle), math.sin(self.angle)
        # input pixel u has its centre at (u + 0.5) r - side / 2 in the square's frame
        lin = np.array([[c * r, -s * r], [s * r, c * r]])
        offset = np.array([self.cx, self.cy]) - lin @ np.array([size / 2, size / 2]) + lin @ np.array([0.5, 0.5]) - 0.5
        return np.concatenate([lin, offset[:, None]], axis=1)

    def to_image(self, points: np.ndarray, size: int) -> np.ndarray:
        """(..., 2) continuous coordinates of the model input (0..size) -> image coordinates."""
        local = (np.asarray(points, dtype=np.float64) / size - 0.5) * self.side
        c, s = math.cos(self.angle), math.sin(self.angle)
        x = self.cx + c * local[..., 0] - s * local[..., 1]
        y = self.cy + s * local[..., 0] + c * local[..., 1]
        return np.stack([x, y], axis=-1)


def _sample(image: np.ndarray, region: Region, size: int) -> np.ndarray:
    """The `region` of an (H, W, 3) uint8 image resampled to (size, size, 3) uint8 (black outside).

    Shrinking by more than 2x first area-averages the part under the region by an integer factor,
    so the bilinear warp never aliases.
    """
    import cv2

    shrink = int(region.side / size / 1.5)
    origin = (0, 0)
    source = image
    if shrink >= 2:
        half = region.side * 0.75 + 2 * shrink
        x0, y0 = max(0, int(region.cx - half)), max(0, int(region.cy - half))
        x1 = min(image.shape[1], int(math.ceil(region.cx + half)))
        y1 = min(image.shape[0], int(math.ceil(region.cy + half)))
        if x1 <= x0 or y1 <= y0:
            return np.zeros((size, size, 3), np.uint8)
        part = image[y0:y1, x0:x1]
        small = (max(1, part.shape[1] // shrink), max(1, part.shape[0] // shrink))
        source = cv2.resize(np.ascontiguousarray(part), small, interpolation=cv2.INTER_AREA)
        origin = (x0, y0)
    matrix = region.matrix(size)
    if source is not image:
        # image index p -> small index (p - origin + 0.5) / shrink - 0.5
        fx, fy = part.shape[1] / source.shape[1], part.shape[0] / source.shape[0]
        matrix = matrix.copy()
        matrix[0] = matrix[0] / fx
        matrix[1] = matrix[1] / fy
        matrix[0, 2] += (0.5 - origin[0]) / fx - 0.5
        matrix[1, 2] += (0.5 - origin[1]) / fy - 0.5
    return cv2.warpAffine(
        np.ascontiguousarray(source),
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


@dataclass(frozen=True)
class _Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    score: float
    keypoints: np.ndarray  # (K, 2) image pixels: right eye, left eye, nose tip, mouth, right ear, left ear


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _weighted_nms(dets: list[_Detection]) -> list[_Detection]:
    """MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged, weighted by score."""
    dets = sorted(dets, key=lambda d: -d.score)
    out = []
    while dets:
        top = dets[0]
        group = [d for d in dets if _iou(top.box, d.box) > _NMS_IOU]
        dets = [d for d in dets if _iou(top.box, d.box) <= _NMS_IOU]
        w = np.array([d.score for d in group])
        box = tuple(float(v) for v in (np.array([d.box for d in group]) * w[:, None]).sum(0) / w.sum())
        kps = (np.stack([d.keypoints for d in group]) * w[:, None, None]).sum(0) / w.sum()
        out.append(_Detection(box, top.score, kps))  # type: ignore[arg-type]
    return out


def _blazeface(image: np.ndarray, region: Region, kind: str = "full") -> list[_Detection]:
    """BlazeFace on one square `region` (angle 0) of the image: detections in image pixels."""
    name, strides, per_cell = _DETECTORS[kind]
    model = _model(name)
    size = model.size
    tensor = _sample(image, region, size).astype(np.float32) / 127.5 - 1.0
    scores, raw = model(tensor)  # (A, 1) logits, (A, 16) box and keypoint offsets
    anchors = _anchors(size, strides, per_cell)
    prob = 1.0 / (1.0 + np.exp(-np.clip(scores[:, 0].astype(np.float64), -100, 100)))
    dets = []
    for i in np.nonzero(prob >= _DETECT_SCORE)[0]:
        cx, cy = raw[i, 0] / size + anchors[i, 0], raw[i, 1] / size + anchors[i, 1]
        w, h = raw[i, 2] / size, raw[i, 3] / size
        corners = region.to_image(np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy + h / 2]]) * size, size)
        kps = region.to_image((raw[i, 4:16].reshape(6, 2) / size + anchors[i]) * size, size)
        dets.append(_Detection(tuple(float(v) for v in corners.reshape(-1)), float(prob[i]), kps))  # type: ignore[arg-type]
    return dets


def run_mesh(image: np.ndarray, region: Region) -> tuple[np.ndarray, float]:
    """The face mesh in one region of an (H, W, 3) uint8 RGB image.

    Returns (P, 3) float64 points (x, y in image pixels; z, depth relative to the face centre, in
    the same pixel scale, smaller = nearer) and the face-presence probability 0..1.
    """
    model = _model("face_landmark.tflite")
    size = model.size
    tensor = _sample(image, region, size).astype(np.float32) / 255.0
    presence, raw = model(tensor)
    points = raw.reshape(MESH_POINTS, 3).astype(np.float64)
    xy = region.to_image(points[:, :2], size)
    z = points[:, 2] * region.side / size
    prob = float(1.0 / (1.0 + math.exp(-float(np.clip(presence.reshape(-1)[0], -100, 100)))))
    return np.concatenate([xy, z[:, None]], axis=1), prob


def _roi_from_detection(det: _Detection) -> Region:
    (x0, y0, x1, y1), kp = det.box, det.keypoints
    angle = math.atan2(kp[1, 1] - kp[0, 1], kp[1, 0] - kp[0, 0])
    return Region((x0 + x1) / 2, (y0 + y1) / 2, _ROI_SCALE * max(x1 - x0, y1 - y0), angle)


def region_from_points(points: np.ndarray) -> Region:
    """The mesh model's region for a face given its (P, 2+) mesh points: the square of 1.5x the points'
    extent in the face's own frame (its x axis along the outer eye corners), as MediaPipe tracks."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    d = xy[LEFT_EYE_OUTER] - xy[RIGHT_EYE_OUTER]
    angle = math.atan2(d[1], d[0])
    c, s = math.cos(angle), math.sin(angle)
    local = xy @ np.array([[c, -s], [s, c]])  # rows: coordinates in the face's frame
    lo, hi = local.min(0), local.max(0)
    centre = np.array([[c, -s], [s, c]]) @ ((lo + hi) / 2)
    return Region(float(centre[0]), float(centre[1]), _ROI_SCALE * float(max(hi - lo)), angle)


@dataclass(frozen=True)
class MeshFace:
    """One face found in a photo: its mesh (P, 3) in image pixels, presence 0..1, detector score, and
    the calibrated face box (x, y, w, h) floatalk crops around (`mesh_face_box`)."""

    points: np.ndarray
    presence: float
    score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return mesh_face_box(self.points)


def mesh_face_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """Face box (x, y, w, h) in pixels from (P, 2+) mesh points, calibrated to the Haar / release framing.

    With E the midpoint of the outer eye corners, M the midpoint of the inner lips and d = |M - E|
    (the eye-to-mouth distance, which turning or tilting the head changes least): a square of side
    `BOX_SIDE` d centred `BOX_SHIFT` d below E along E -> M (fitted; docs/FACES.md).
    """
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    eyes = (xy[RIGHT_EYE_OUTER] + xy[LEFT_EYE_OUTER]) / 2
    mouth = (xy[UPPER_LIP] + xy[LOWER_LIP]) / 2
    down = mouth - eyes
    d = float(np.hypot(*down))
    if d < 1e-6:
        raise UserInputError("The face mesh collapsed to a point; this is not a usable face.")
    cx, cy = eyes + BOX_SHIFT * down
    side = BOX_SIDE * d
    return (float(cx - side / 2), float(cy - side / 2), side, side)


def _tiles(height: int, width: int, side: float) -> list[Region]:
    """Overlapping square tiles of `side` covering the image (stride 3/4 of the side)."""
    regions = []
    for length in (width, height):
        n = max(1, math.ceil((length - side) / (0.75 * side)) + 1) if length > side else 1
        starts = np.linspace(0, max(0.0, length - side), n) + side / 2 if length > side else np.array([length / 2])
        regions.append(starts)
    return [Region(float(x), float(y), side) for y in regions[1] for x in regions[0]]


def detect_faces(image: np.ndarray, min_tile: int = MIN_TILE) -> list[MeshFace]:
    """Every face in an (H, W, 3) uint8 RGB image with its mesh, largest face box first (see the module docstring).

    Tiles are never smaller than `min_tile` px nor than 1/16 of the image's longer side.
    """
    _check_image(image)
    height, width = image.shape[:2]
    min_tile = max(min_tile, max(height, width) / 16)
    image = np.ascontiguousarray(image)
    side = float(max(height, width))
    found: list[MeshFace] = []
    while True:
        dets = []
        for tile in _tiles(height, width, side):
            dets += _blazeface(image, tile)
        for det in _weighted_nms(dets):
            points, presence = run_mesh(image, _roi_from_detection(det))
            if presence < _PRESENCE:
                continue
            points, presence = run_mesh(image, region_from_points(points))  # refine on its own framing
            if presence < _PRESENCE:
                continue
            box = mesh_face_box(points)
            corners = (box[0], box[1], box[0] + box[2], box[1] + box[3])
            if any(_iou(corners, _corners(f.box)) > _NMS_IOU for f in found):
                continue
            found.append(MeshFace(points, presence, det.score))
        # Finer tiles find smaller faces; once faces are found, faces under about a third of the
        # largest one's size are not searched for (a tile finds faces down to ~1/12 of its side).
        if side / 2 < min_tile or (found and side / 2 < 2 * max(f.box[2] for f in found)):
            break
        side /= 2
    return sorted(found, key=lambda f: -f.box[2])


def _corners(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x, y, x + w, y + h)


def track_points(
    frames: np.ndarray | list[np.ndarray], progress: Callable[[str, int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Follow one face's mesh through a sequence of (H, W, 3) uint8 RGB frames (`MeshTracker`).

    Returns (T, P, 3) points in pixels, NaN where no face was found, and found (T,) bool;
    calls progress('mesh', t, T) after each frame when given.
    """
    tracker = MeshTracker()
    points = np.full((len(frames), MESH_POINTS, 3), np.nan)
    found = np.zeros(len(frames), dtype=bool)
    for t, frame in enumerate(frames):
        got = tracker(np.ascontiguousarray(frame))
        if got is not None:
            points[t], found[t] = got, True
        if progress is not None:
            progress("mesh", t + 1, len(frames))
    return points, found


def fill_gaps(points: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(T, P, D) per-frame points with the frames where `found` (T,) is False filled in linearly from
    their neighbours (the nearest found frame at either end); UserInputError when none was found."""
    if not found.any():
        raise UserInputError("No face was found in any frame of the video.")
    t = np.arange(len(found))
    flat = points.reshape(len(t), -1)
    known = np.nonzero(found)[0]
    out = np.stack([np.interp(t, known, flat[known, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(points.shape)


class MeshTracker:
    """A face mesh followed through a video: `tracker(frame)` -> (P, 3) points or None when no face.

    The first frame (and any frame after the face was lost) runs `detect_faces` and follows the
    largest face; later frames run only the mesh, in the region fitted to the previous frame's points.
    """

    def __init__(self) -> None:
        self.region: Region | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        if self.region is not None:
            points, presence = run_mesh(frame, self.region)
            if presence >= _PRESENCE:
                self.region = region_from_points(points)
                return points
            self.region = None
        faces = detect_faces(frame)
        if not faces:
            return None
        self.region = region_from_points(faces[0].points)
        return faces[0].points


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UserInputError("The face mesh needs an (H, W, 3) uint8 RGB image.")

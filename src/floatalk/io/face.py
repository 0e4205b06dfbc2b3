"""Finding the face in a portrait, cropping a square around it and pasting results back.

Two face detectors: "mesh" (MediaPipe's face detector and 468-point mesh, `floatalk.io.mesh`;
finds small, tilted, partly turned and grayscale faces) and "haar" (OpenCV's bundled Haar
cascades, frontal faces only). "auto", the default, is the mesh, or Haar when the TensorFlow
Lite runtime cannot be imported (a broken install). Either gives face boxes (x, y, w, h) with
the same framing (the mesh's box is calibrated to Haar's, docs/FACES.md); several faces are
numbered 1, 2, ... from left to right, and the largest is used unless one is chosen.

Coordinates are in pixels of the original image with pixel (i, j) covering the unit square
[j, j + 1) x [i, i + 1); a `CropBox` is a square in those coordinates and may extend past the
image borders (that part is filled with black when cropping).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from floatalk.errors import UserInputError

__all__ = [
    "DETECTORS",
    "CropBox",
    "FaceChoice",
    "PasteBack",
    "crop_image",
    "detect_face",
    "detect_faces",
    "locate_face",
    "resolve_detector",
    "face_crop_box",
    "find_crop_box",
    "find_face",
    "from_the_left",
    "letterbox_box",
    "paste_back",
]

DETECTORS = ("auto", "mesh", "haar")
DEFAULT_CROP_SCALE = 1.6
"""The release's crop: a square of 1.6x the face box's larger side."""
_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
_DETECT_MAX_SIDE = 640
_BLEND_ROWS = 256  # paste-back blends this many rows at a time


@dataclass(frozen=True)
class CropBox:
    """A square region of the original image: top-left corner (x0, y0) and side, in pixels."""

    x0: float
    y0: float
    size: float


def _check_rgb(image: np.ndarray, what: str = "Image") -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = tuple(image.shape) if isinstance(image, np.ndarray) else type(image).__name__
        raise UserInputError(f"{what} must be an (H, W, 3) uint8 RGB array, got {shape}.")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise UserInputError(f"{what} is empty (shape {tuple(image.shape)}).")


def _check_box(box: CropBox) -> None:
    if not (math.isfinite(box.x0) and math.isfinite(box.y0) and math.isfinite(box.size)) or box.size <= 0:
        raise UserInputError(f"Crop box {box} must have finite corners and a positive size.")


@functools.cache
def _cascade(name: str):
    import cv2

    path = os.path.join(cv2.data.haarcascades, name)
    classifier = cv2.CascadeClassifier(path)
    if classifier.empty():
        raise RuntimeError(f"OpenCV could not load its bundled face detector '{path}'.")
    return classifier


def _haar_faces(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces (x, y, w, h) from OpenCV's Haar cascades, largest first.

    The cascades run on an equalised grayscale copy scaled down so that its longer side is at most
    640 px; the second cascade is tried only when the first finds nothing.
    """
    import cv2

    height, width = image.shape[:2]
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    scale = min(1.0, _DETECT_MAX_SIDE / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(20, round(0.05 * min(gray.shape)))
    for name in _CASCADES:
        faces = _cascade(name).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        if len(faces):
            boxes = []
            for x, y, w, h in sorted((tuple(float(v) for v in face) for face in faces), key=lambda f: -f[2] * f[3]):
                x0, y0 = round(x / scale), round(y / scale)
                x1, y1 = min(width, round((x + w) / scale)), min(height, round((y + h) / scale))
                boxes.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
            return boxes
    return []


def resolve_detector(detector: str) -> str:
    """'mesh' or 'haar' for a detector name of `DETECTORS` ('auto': the mesh when its runtime imports)."""
    if detector not in DETECTORS:
        raise UserInputError(f"The face detector must be one of {', '.join(DETECTORS)} (got {detector!r}).")
    if detector == "auto":
        from floatalk.io.mesh import mesh_available

        return "mesh" if mesh_available() else "haar"
    return detector


def detect_faces(image: np.ndarray, detector: str = "auto") -> list[tuple[int, int, int, int]]:
    """Every face in an (H, W, 3) uint8 RGB image: boxes (x, y, w, h) in pixels, largest first."""
    _check_rgb(image)
    if resolve_detector(detector) == "haar":
        return _haar_faces(image)
    from floatalk.io.mesh import detect_faces as mesh_faces

    boxes = []
    for face in mesh_faces(image):
        x, y, w, h = face.box
        boxes.append((int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h)))))
    return boxes


def detect_face(image: np.ndarray, detector: str = "auto") -> tuple[int, int, int, int] | None:
    """The largest face in an (H, W, 3) uint8 RGB image, (x, y, w, h) in pixels, or None (see `detect_faces`)."""
    faces = detect_faces(image, detector)
    return faces[0] if faces else None


@dataclass(frozen=True)
class FaceChoice:
    """The face used in a photo: its box (x, y, w, h), its number 1..count from left to right, how
    many faces were found and by which detector ('mesh' or 'haar')."""

    box: tuple[int, int, int, int]
    number: int
    count: int
    detector: str


def from_the_left(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in the order they are numbered: by the centre's x, then its y."""
    return sorted(boxes, key=lambda b: (b[0] + b[2] / 2, b[1]))


def locate_face(image: np.ndarray, detector: str = "auto", face: int | None = None) -> FaceChoice:
    """The face to crop: face number `face` (1 = leftmost) or, when None, the largest one.

    Raises UserInputError when no face is found or `face` is out of range.
    """
    used = resolve_detector(detector)
    boxes = detect_faces(image, used)
    if not boxes:
        raise UserInputError("No face found in the image; pass --no-crop to animate the whole photo.")
    ordered = from_the_left(boxes)
    if face is None:
        box = boxes[0]
    elif isinstance(face, bool) or not isinstance(face, int) or not 1 <= face <= len(ordered):
        raise UserInputError(
            f"The photo has {len(ordered)} face{'s' if len(ordered) > 1 else ''} (numbered from the left); "
            f"--face must be from 1 to {len(ordered)} (got {face!r})."
        )
    else:
        box = ordered[face - 1]
    return FaceChoice(box, ordered.index(box) + 1, len(ordered), used)


def face_crop_box(face: tuple[float, float, float, float], scale: float = DEFAULT_CROP_SCALE) -> CropBox:
    """Square of side `scale * max(w, h)` centred on the centre of the (x, y, w, h) face box."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise UserInputError(f"The crop scale must be a positive number, got {scale!r}.")
    x, y, w, h = (float(v) for v in face)
    if w <= 0 or h <= 0:
        raise UserInputError(f"Face box {tuple(face)} must have a positive width and height.")
    side = scale * max(w, h)
    return CropBox(x0=x + w / 2 - side / 2, y0=y + h / 2 - side / 2, size=side)


def find_face(image: np.ndarray, detector: str = "auto", face: int | None = None) -> tuple[int, int, int, int]:
    """`locate_face`'s box: (x, y, w, h) in pixels; raises `UserInputError` when there is no face."""
    return locate_face(image, detector, face).box


def find_crop_box(image: np.ndarray, scale: float = DEFAULT_CROP_SCALE, detector: str = "auto") -> CropBox:
    """`find_face` then `face_crop_box`; raises `UserInputError` when there is no face."""
    return face_crop_box(find_face(image, detector), scale)


def letterbox_box(height: int, width: int) -> CropBox:
    """The square of side max(height, width) centred on the whole image (black bars, no stretch)."""
    if height <= 0 or width <= 0:
        raise UserInputError(f"Image size {width}x{height} must be positive.")
    side = float(max(height, width))
    return CropBox(x0=(width - side) / 2, y0=(height - side) / 2, size=side)


def box_matrix(box: CropBox, size: int, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """2x3 affine map from pixel indices of the original image (shifted by `offset`, the (x, y) of
    a region of interest) to pixel indices of the `size` x `size` square covering `box`."""
    s = size / box.size
    ox, oy = offset
    return np.array(
        [
            [s, 0.0, (ox + 0.5 - box.x0) * s - 0.5],
            [0.0, s, (oy + 0.5 - box.y0) * s - 0.5],
        ],
        dtype=np.float64,
    )


def _crop_matrix(
    box: CropBox, size: int, scale: tuple[float, float] = (1.0, 1.0), origin: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """2x3 map from pixel indices of the `size` x `size` crop to pixel indices of a source image.

    The source is the original image cut at `origin` (x, y) and then resized by `scale` (sx, sy);
    use it with cv2.WARP_INVERSE_MAP.
    """
    r = box.size / size
    (sx, sy), (ox, oy) = scale, origin
    return np.array(
        [
            [sx * r, 0.0, sx * (box.x0 - ox + 0.5 * r) - 0.5],
            [0.0, sy * r, sy * (box.y0 - oy + 0.5 * r) - 0.5],
        ],
        dtype=np.float64,
    )


def crop_image(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Cut `box` out of an (H, W, 3) uint8 image and resample it to (size, size, 3) uint8.

    Parts of the box outside the image are black. Enlarging is bicubic. Shrinking by r = box.size
    / size is area-averaged: bilinear warp to k * size with k = ceil(r) (never a reduction), then an
    exact k x k INTER_AREA average; for r >= 4 the part of the image under the box is first
    block-averaged by an integer factor so the intermediate stays under (3 * size)^2 pixels.
    """
    import cv2

    _check_rgb(image)
    _check_box(box)
    size = int(size)
    if size <= 0:
        raise UserInputError(f"The crop size must be positive, got {size}.")
    image = np.ascontiguousarray(image)
    ratio = box.size / size  # source pixels per output pixel
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": (0, 0, 0)}
    if ratio <= 1.0 + 1e-9:
        matrix = _crop_matrix(box, size)
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, **border)

    # Cut the part under the box (plus a margin for the interpolation taps) and pre-shrink it by an
    # integer factor m, padding its far edges with black to a multiple of m.
    height, width = image.shape[:2]
    m = max(1, math.floor(ratio / 2))
    margin = 2 * math.ceil(ratio) + 2
    x0 = max(0, math.floor(box.x0) - margin)
    y0 = max(0, math.floor(box.y0) - margin)
    x1 = min(width, math.ceil(box.x0 + box.size) + margin)
    y1 = min(height, math.ceil(box.y0 + box.size) + margin)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size, size, 3), np.uint8)
    region = image[y0:y1, x0:x1]
    if m > 1:
        region = _shrink_blocks(region, m)
    factor = math.ceil(ratio / m - 1e-6)
    inner = size * factor
    matrix = _crop_matrix(box, inner, scale=(1.0 / m, 1.0 / m), origin=(x0, y0))
    warped = cv2.warpAffine(region, matrix, (inner, inner), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, **border)
    if factor == 1:
        return warped
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)


def _shrink_blocks(region: np.ndarray, m: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (ceil(h / m), ceil(w / m), 3): the mean of each m x m block, the image
    taken as black past its far edges, in memory linear in the region (padding the region to
    whole blocks instead grows with m times its long side: 11.8 GB for a 16 x 1,000,000 strip).

    Whole blocks are one INTER_AREA resize; the last, partial row and column of blocks are the
    mean of their pixels weighted by the share of the block they fill.
    """
    import cv2

    h, w = region.shape[:2]
    hb, wb = h // m, w // m  # whole blocks down and across
    out = np.zeros((-(-h // m), -(-w // m), 3), np.uint8)
    if hb and wb:
        out[:hb, :wb] = cv2.resize(region[: hb * m, : wb * m], (wb, hb), interpolation=cv2.INTER_AREA)
    if h % m and wb:  # the last row of blocks, h % m rows of pixels high
        mean = cv2.resize(region[hb * m :, : wb * m], (wb, 1), interpolation=cv2.INTER_AREA).reshape(wb, 3)
        out[hb, :wb] = np.rint(mean * (h % m / m))
    if w % m and hb:  # the last column of blocks, w % m columns of pixels wide
        mean = cv2.resize(region[: hb * m, wb * m :], (1, hb), interpolation=cv2.INTER_AREA).reshape(hb, 3)
        out[:hb, wb] = np.rint(mean * (w % m / m))
    if h % m and w % m:  # the corner block
        corner = region[hb * m :, wb * m :].reshape(-1, 3)
        out[hb, wb] = np.rint(corner.mean(0) * (len(corner) / (m * m)))
    return out


def feather_ramp(length: int, start: float, side: float, feather: float) -> np.ndarray:
    """Mask profile along one axis for pixels start .. start+length-1 of the original image."""
    centres = np.arange(length, dtype=np.float64) + 0.5
    t = (centres - start) / side  # position inside the box, 0..1
    inside = (t > 0.0) & (t < 1.0)
    if feather <= 0.0:
        return inside.astype(np.float32)
    ramp = np.clip(np.minimum(t, 1.0 - t) / feather, 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep
    return (ramp * inside).astype(np.float32)


class PasteBack:
    """Blend generated (S, S, 3) crops back into the original photo; the mask is built once.

    `box` is the crop box the frames were made from, `crop_size` is S and `feather` the fraction
    of the box side over which the mask rises from 0 to 1 at its edges (0 = hard edge).
    """

    def __init__(self, original: np.ndarray, box: CropBox, crop_size: int, feather: float = 0.06) -> None:
        import cv2

        _check_rgb(original, "The original image")
        _check_box(box)
        if not (0.0 <= feather <= 0.5):
            raise UserInputError(f"The paste-back feather must be in [0, 0.5], got {feather}.")
        self.original = np.ascontiguousarray(original)
        self.box = box
        self.crop_size = int(crop_size)
        height, width = original.shape[:2]
        self._x0 = max(0, math.floor(box.x0))
        self._y0 = max(0, math.floor(box.y0))
        self._x1 = min(width, math.ceil(box.x0 + box.size))
        self._y1 = min(height, math.ceil(box.y0 + box.size))
        self._empty = self._x1 <= self._x0 or self._y1 <= self._y0
        if self._empty:
            return
        roi_w, roi_h = self._x1 - self._x0, self._y1 - self._y0
        # Frames larger than the box are area-averaged down to about the box size first, so the
        # bilinear warp below never shrinks by more than a few percent (no aliasing).
        self._source_size = self.crop_size
        if self.crop_size > box.size * 1.05:
            self._source_size = max(1, math.ceil(box.size))
        self._matrix = box_matrix(box, self._source_size, offset=(self._x0, self._y0))
        # The mask is the outer product of two ramps; it is kept as the ramps and formed strip by
        # strip, so a big photo's paste-back never holds float copies of the whole region.
        self._mask_x = feather_ramp(roi_w, box.x0 - self._x0, box.size, feather)
        self._mask_y = feather_ramp(roi_h, box.y0 - self._y0, box.size, feather)
        self._cv2_flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 generated frame -> (H, W, 3) uint8 photo with the frame blended in."""
        import cv2

        _check_rgb(frame, "The generated frame")
        if frame.shape[:2] != (self.crop_size, self.crop_size):
            raise UserInputError(
                f"The generated frame is {frame.shape[1]}x{frame.shape[0]}; expected {self.crop_size}x{self.crop_size}."
            )
        out = self.original.copy()
        if self._empty:
            return out
        source = np.ascontiguousarray(frame)
        if self._source_size != self.crop_size:
            size = self._source_size
            source = cv2.resize(source, (size, size), interpolation=cv2.INTER_AREA)
        warped = cv2.warpAffine(
            source,
            self._matrix,
            (self._x1 - self._x0, self._y1 - self._y0),
            flags=self._cv2_flags,
            borderMode=cv2.BORDER_REPLICATE,
        )
        roi = self.original[self._y0 : self._y1, self._x0 : self._x1]
        target = out[self._y0 : self._y1, self._x0 : self._x1]
        for top in range(0, roi.shape[0], _BLEND_ROWS):
            rows = slice(top, top + _BLEND_ROWS)
            mask = (self._mask_y[rows, None] * self._mask_x[None, :])[:, :, None]
            blended = warped[rows].astype(np.float32) * mask + roi[rows].astype(np.float32) * (1.0 - mask)
            target[rows] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return out


def paste_back(frame: np.ndarray, original: np.ndarray, box: CropBox, feather: float = 0.06) -> np.ndarray:
    """Inverse of `crop_image`: blend an (S, S, 3) frame into `original` at `box` -> (H, W, 3) uint8.

    For many frames build one `PasteBack` and call it per frame (the mask is computed once).
    """
    _check_rgb(frame, "The generated frame")
    return PasteBack(original, box, frame.shape[0], feather)(frame)

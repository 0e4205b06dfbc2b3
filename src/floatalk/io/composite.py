"""Compositing a scene: several generated face squares blended into one photo, frame by frame.

`SceneComposite` keeps the photo at the output size (`scene_size`: at most `MAX_SCENE_SIDE` pixels
on its longer side, width and height even) and, for each animated face, where its square goes and
a mask built once: the square's feathered edge (as `floatalk.io.face.PasteBack` feathers one face)
times a hole over every other face that this square must not cover. Face j is kept clear of face
i's square unless their face boxes overlap and j's is the smaller one (then i is in front of j, as
the photo shows them); the hole is j's face box grown by `CLEAR_MARGIN` of its side, fading out
over `CLEAR_SOFT`; only i's own face box is never holed. Squares
are pasted smallest face first, so a bigger (nearer) face lies on top where two squares share
pixels. Pixels outside every square are the photo's own, untouched.

Letters: F animated faces, S model image size, H, W the output's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from floatalk.errors import UserInputError
from floatalk.io.face import CropBox, box_matrix, feather_ramp
from floatalk.units import MAX_SCENE_SIDE

__all__ = ["CLEAR_MARGIN", "CLEAR_SOFT", "MAX_SCENE_SIDE", "SceneComposite", "scene_size"]

CLEAR_MARGIN = 0.15
CLEAR_SOFT = 0.1

Box = tuple[float, float, float, float]


def scene_size(height: int, width: int, max_side: int = MAX_SCENE_SIDE) -> tuple[float, int, int]:
    """(scale, height, width) of a scene's video for an H x W photo: scaled to fit `max_side`,
    then cut to even sides (the codec's yuv420p needs them)."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 16:
        raise UserInputError(f"The video's longest side must be a whole number, at least 16 pixels (got {max_side!r}).")
    scale = min(1.0, max_side / max(height, width))
    return scale, max(2, round(height * scale) // 2 * 2), max(2, round(width * scale) // 2 * 2)


def _soft_span(length: int, lo: float, hi: float, soft: float) -> np.ndarray:
    """(length,) 1 for pixel centres in [lo, hi], falling to 0 (smoothstep) over `soft` pixels outside."""
    centres = np.arange(length, dtype=np.float64) + 0.5
    distance = np.maximum(np.maximum(lo - centres, centres - hi), 0.0)
    if soft <= 0:
        return (distance <= 0).astype(np.float32)
    t = np.clip(1.0 - distance / soft, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@dataclass(frozen=True)
class _Paste:
    """Where one face's square goes: its index in the frames, the output region, the warp from the
    (resized) square to the region, and the region's (h, w, 1) mask."""

    index: int
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 in output pixels
    matrix: np.ndarray
    source_size: int
    mask: np.ndarray


class SceneComposite:
    """Blend F generated (S, S, 3) squares into the photo at once: `composite(frames)` with frames
    (F, S, S, 3) uint8 -> (H, W, 3) uint8, the photo copied once per frame."""

    def __init__(
        self,
        photo: np.ndarray,
        squares: Sequence[CropBox],
        faces: Sequence[Box],
        crop_size: int,
        kept_clear: Sequence[Box] = (),
        max_side: int = MAX_SCENE_SIDE,
        feather: float = 0.06,
    ) -> None:
        """photo: (H0, W0, 3) uint8 at its own size; squares[f], faces[f]: animated face f's crop box
        and face box (x, y, w, h) in the photo's pixels; kept_clear: face boxes of faces that are not
        animated (their pixels stay the photo's); crop_size: S; feather: as in PasteBack."""
        import cv2

        if len(squares) != len(faces):
            raise ValueError("one square per animated face is needed")
        scale, height, width = scene_size(photo.shape[0], photo.shape[1], max_side)
        if scale < 1.0:
            size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
            photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        self.background = np.ascontiguousarray(photo[:height, :width])
        self.scale = scale
        self.crop_size = int(crop_size)
        self.count = len(squares)
        boxes = [tuple(v * scale for v in box) for box in (*faces, *kept_clear)]
        order = sorted(range(len(squares)), key=lambda f: boxes[f][2] * boxes[f][3])
        self._pastes = []
        for f in order:
            square = CropBox(squares[f].x0 * scale, squares[f].y0 * scale, squares[f].size * scale)
            paste = self._plan(f, square, boxes, feather)
            if paste is not None:
                self._pastes.append(paste)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the composited frames."""
        return self.background.shape[0], self.background.shape[1]

    def _plan(self, f: int, square: CropBox, boxes: list[Box], feather: float) -> _Paste | None:
        height, width = self.size
        x0, y0 = max(0, math.floor(square.x0)), max(0, math.floor(square.y0))
        x1, y1 = min(width, math.ceil(square.x0 + square.size)), min(height, math.ceil(square.y0 + square.size))
        if x1 <= x0 or y1 <= y0:
            return None
        # Squares bigger than the model's are area-averaged to about their size first, as PasteBack does.
        source_size = self.crop_size if self.crop_size <= square.size * 1.05 else max(1, math.ceil(square.size))
        matrix = box_matrix(square, source_size, offset=(x0, y0))
        mask = np.outer(
            feather_ramp(y1 - y0, square.y0 - y0, square.size, feather),
            feather_ramp(x1 - x0, square.x0 - x0, square.size, feather),
        )
        own = boxes[f]
        clear = np.ones_like(mask)
        for j, other in enumerate(boxes):
            if j == f or (_overlap(own, other) and other[2] * other[3] < own[2] * own[3]):
                continue
            side = max(other[2], other[3])
            grow, soft = CLEAR_MARGIN * side, CLEAR_SOFT * side
            rows = _soft_span(y1 - y0, other[1] - grow - y0, other[1] + other[3] + grow - y0, soft)
            cols = _soft_span(x1 - x0, other[0] - grow - x0, other[0] + other[2] + grow - x0, soft)
            clear *= 1.0 - np.outer(rows, cols)
        inside = np.outer(  # the square's own face box is never holed (a hard edge: it may touch a neighbour)
            _soft_span(y1 - y0, own[1] - y0, own[1] + own[3] - y0, 0.0),
            _soft_span(x1 - x0, own[0] - x0, own[0] + own[2] - x0, 0.0),
        )
        mask = (mask * np.maximum(clear, inside)).astype(np.float32)[:, :, None]
        return _Paste(f, (x0, y0, x1, y1), matrix, source_size, mask)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(F, S, S, 3) uint8 squares, in the order of `squares` -> (H, W, 3) uint8 frame."""
        import cv2

        if frames.shape[:1] != (self.count,) or frames.shape[1:] != (self.crop_size, self.crop_size, 3):
            raise ValueError(
                f"expected ({self.count}, {self.crop_size}, {self.crop_size}, 3) frames, got {frames.shape}"
            )
        out = self.background.copy()
        for paste in self._pastes:
            source = np.ascontiguousarray(frames[paste.index])
            if paste.source_size != self.crop_size:
                size = paste.source_size
                source = cv2.resize(source, (size, size), interpolation=cv2.INTER_AREA)
            x0, y0, x1, y1 = paste.region
            warped = cv2.warpAffine(
                source,
                paste.matrix,
                (x1 - x0, y1 - y0),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            target = out[y0:y1, x0:x1]
            blended = warped.astype(np.float32) * paste.mask + target.astype(np.float32) * (1.0 - paste.mask)
            target[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return out

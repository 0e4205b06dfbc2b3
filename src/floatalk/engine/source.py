"""Step one of the paper: the source image. A photo is read and cut to the model's square input
(`prepare_image`, no model involved), then encoded once by the motion auto-encoder's encoder into
the identity latent s_r, the motion coefficients lambda, the reference motion r_s = Q lambda and
the feature maps the decoder warps (`SourceImage`; `FloatEngine.encode_image`).

Letters: S image size, D latent size, M motion coefficients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["ImageInput", "PreparedImage", "SourceImage", "prepare_image"]

ImageInput = str | os.PathLike | np.ndarray


@dataclass
class PreparedImage:
    """A photo read from disk and cut to the model's square input (no model involved)."""

    pixels: np.ndarray  # (S, S, 3) uint8 RGB, what the model sees
    box: Any  # floatalk.io.face.CropBox: the square in original-photo pixels
    original: np.ndarray  # (H, W, 3) uint8 RGB, the whole photo
    face: tuple[int, int, int, int] | None = None  # the detected face box (x, y, w, h); None without cropping
    choice: Any = None  # floatalk.io.face.FaceChoice: which face of how many, by which detector; None without cropping


def prepare_image(
    image: ImageInput,
    size: int,
    crop: bool = True,
    crop_scale: float = 1.6,
    detector: str = "auto",
    face: int | None = None,
) -> PreparedImage:
    """Read a photo and cut the model input: the face crop (a square of `crop_scale` times the
    face box, black padding outside the photo; the largest face, or face number `face` from the
    left, found by `detector`, see floatalk.io.face) or, with crop=False, the whole photo
    letterboxed to a square (black bars, never stretched; an S x S photo is used as is).

    Raises UserInputError for unreadable files and, when cropping, when no face is found.
    """
    from floatalk.io.face import crop_image, face_crop_box, letterbox_box, locate_face
    from floatalk.io.image import load_image

    original = load_image(image)
    h, w = original.shape[:2]
    if crop:
        choice = locate_face(original, detector, face)
        box = face_crop_box(choice.box, crop_scale)
        return PreparedImage(crop_image(original, box, size), box, original, choice.box, choice)
    box = letterbox_box(h, w)
    pixels = original if (h, w) == (size, size) else crop_image(original, box, size)
    return PreparedImage(pixels, box, original)


@dataclass
class SourceImage:
    """The model-size source crop and the encoder outputs computed once per photo."""

    pixels: np.ndarray  # (S, S, 3) uint8 RGB, what the model sees
    tensor: Tensor  # (1, 3, S, S) in [-1, 1]
    s_r: Tensor  # (1, D) identity latent
    lam: Tensor  # (1, M) motion coefficients
    r_s: Tensor  # (1, D) reference motion Q lambda
    feats: list[Tensor]  # encoder feature maps, 8 px .. S px
    box: Any = None  # floatalk.io.face.CropBox in original-photo pixels (None when given a model-size array)
    original: np.ndarray | None = None  # (H, W, 3) uint8, the full photo
    fast_feats: list[Tensor] | None = None  # feats in float32 channels-last, for the batched decoder

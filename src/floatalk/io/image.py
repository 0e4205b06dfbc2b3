"""Reading portrait images into (H, W, 3) uint8 RGB arrays.

Every way an image can be unusable (missing file, not an image, too small, an array of the wrong
shape) ends in a `UserInputError` whose message is one sentence naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["MAX_ASPECT_RATIO", "MAX_IMAGE_SIDE", "MIN_IMAGE_SIDE", "check_image_size", "load_image"]

MIN_IMAGE_SIDE = 16
"""Smallest accepted width and height, in pixels."""

MAX_IMAGE_SIDE = 16384
"""Largest accepted width and height, in pixels: the largest frame H.264 (libx264) encodes, so a
photo can always be pasted back into a video of its own size."""

MAX_ASPECT_RATIO = 32
"""Longest side over shortest side, at most: a 32:1 panorama strip is a photo, a 16 x 1,000,000
strip (47 kB as a PNG) is not. With the sides bounded too, memory follows the pixel count, which
Pillow's decompression-bomb limit bounds (about 179 million pixels; docs/PERFORMANCE.md)."""


def check_image_size(width: int, height: int, name: str, minimum: int = MIN_IMAGE_SIDE) -> None:
    """One sentence (UserInputError) about `name` ("Image 'x.png'", "Video 'y.mp4'") when its
    frames have a side under `minimum` or over MAX_IMAGE_SIDE, or a long side over
    MAX_ASPECT_RATIO times the short one."""
    if height < minimum or width < minimum:
        raise UserInputError(f"{name} is {width}x{height} pixels; it must be at least {minimum}x{minimum}.")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise UserInputError(
            f"{name} is {width}x{height} pixels, its long side {max(width, height) / min(width, height):.0f} times "
            f"its short side; at most {MAX_ASPECT_RATIO}:1 is accepted (crop it first)."
        )
    if max(width, height) > MAX_IMAGE_SIDE:
        raise UserInputError(
            f"{name} is {width}x{height} pixels; neither side may exceed {MAX_IMAGE_SIDE} (scale it down first)."
        )


def require_file(source: str | os.PathLike, kind: str) -> Path:
    """Return `source` as a Path after checking it names a non-empty regular file.

    `kind` ("image", "audio", ...) only appears in the error message.
    """
    path = Path(os.fspath(source))
    if not path.exists():
        raise UserInputError(f"Could not read {kind} '{path}': the file does not exist.")
    if path.is_dir():
        raise UserInputError(f"Could not read {kind} '{path}': it is a folder, not a file.")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserInputError(f"Could not read {kind} '{path}': {exc.strerror or exc}.") from exc
    if size == 0 and path.is_file():
        raise UserInputError(f"Could not read {kind} '{path}': the file is empty.")
    if not os.access(path, os.R_OK):
        raise UserInputError(f"Could not read {kind} '{path}': permission denied.")
    return path


def load_image(source: str | os.PathLike | np.ndarray) -> np.ndarray:
    """Load a portrait as an (H, W, 3) uint8 RGB array.

    Paths may name anything Pillow opens (JPEG, PNG including 16-bit colour and 16-bit gray, WebP,
    TIFF, BMP, ...) in any pixel mode (RGB, RGBA, L, LA, P with transparency, CMYK, I;16, ...).
    The EXIF orientation is applied and 16-bit samples are mapped to 8 bits by round(v / 257).
    An alpha channel is ignored, as the FLOAT release does (it reads photos with OpenCV's
    imread, which drops alpha): the stored colours are used whatever their transparency, so a
    half-transparent photo does not come out darker.

    Arrays are accepted as (H, W, 3) uint8 RGB (returned as a copy), (H, W) gray, (H, W, 4) RGBA
    (alpha ignored), as uint8 or as floats in [0, 1].

    Raises `UserInputError` for a missing, empty or undecodable file, an array of another shape
    or dtype, or an image whose size `check_image_size` refuses (smaller than 16x16 pixels, a side
    over 16384, an aspect ratio over 32:1; a file is refused from its header, before decoding).
    """
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(source)
        name = "Image array"
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise UserInputError(f"Expected an image path or a numpy array, got {type(source).__name__} instead.")
        path = require_file(source, "image")
        rgb = _read_image_file(path)
        name = f"Image '{path}'"
    height, width = rgb.shape[:2]
    check_image_size(width, height, name)
    return np.ascontiguousarray(rgb)


# ----------------------------------------------------------------------------------------------
# arrays


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    shape_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))
    if not shape_ok:
        raise UserInputError(
            f"Image array has shape {tuple(array.shape)}; expected (H, W, 3) RGB, (H, W) gray or (H, W, 4) RGBA."
        )
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]  # alpha ignored, as the release does
    if array.dtype == np.uint8:
        data = array
    elif np.issubdtype(array.dtype, np.floating):
        data = array.astype(np.float32)
        if not np.all(np.isfinite(data)):
            raise UserInputError("Image array contains NaN or infinite values.")
        if data.size and (data.min() < -1e-3 or data.max() > 1.0 + 1e-3):
            raise UserInputError(
                f"Float image array has values in [{data.min():.3g}, {data.max():.3g}]; expected values in [0, 1]."
            )
        data = np.clip(data, 0.0, 1.0)
    else:
        raise UserInputError(f"Image array has dtype {array.dtype}; expected uint8 or floats in [0, 1].")
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    if data.dtype != np.uint8:
        data = np.rint(data * 255.0).astype(np.uint8)
    return np.array(data, dtype=np.uint8, copy=True)


# ----------------------------------------------------------------------------------------------
# files


def _read_image_file(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    prefix = f"Could not read image '{path}'"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                check_image_size(*image.size, f"Image '{path}'")  # from the header: nothing decoded yet
                if _is_16bit_colour(image):
                    rgb = _read_16bit_colour(path, image)
                    if rgb is not None:
                        return rgb
                image.load()
                image = ImageOps.exif_transpose(image)
                return _pil_to_rgb(image)
    except UserInputError:
        raise
    except UnidentifiedImageError as exc:
        raise UserInputError(f"{prefix}: not an image file.") from exc
    except Image.DecompressionBombError as exc:
        raise UserInputError(f"{prefix}: the image has too many pixels.") from exc
    except PermissionError as exc:
        raise UserInputError(f"{prefix}: permission denied.") from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError) as exc:
        raise UserInputError(f"{prefix}: the file is damaged or in an unsupported format.") from exc


def _tile_rawmode(image) -> str:
    tiles = getattr(image, "tile", None) or []
    for tile in tiles:
        args = tile.args if hasattr(tile, "args") else tile[3]
        if isinstance(args, str):
            return args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            return args[0]
    return ""


def _is_16bit_colour(image) -> bool:
    """True for files Pillow would silently truncate to 8 bits (16-bit RGB/RGBA/LA PNG, TIFF)."""
    return image.mode in ("RGB", "RGBA") and ";16" in _tile_rawmode(image)


def _read_16bit_colour(path: Path, image) -> np.ndarray | None:
    """Decode a 16-bit colour file with OpenCV (which keeps all 16 bits); None if it cannot."""
    import cv2

    buffer = np.fromfile(path, dtype=np.uint8)
    decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16:
        return None
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    channels = decoded.shape[2]
    data = decoded.astype(np.float64)
    if channels in (3, 4):
        data[:, :, :3] = data[:, :, 2::-1]  # BGR(A) -> RGB(A)
    if channels in (2, 4):
        data = data[:, :, :-1]  # alpha ignored, as the release does
    if data.shape[2] == 1:
        data = np.repeat(data, 3, axis=2)
    rgb = np.rint(data / 257.0).astype(np.uint8)
    orientation = image.getexif().get(0x0112, 1)
    return _apply_orientation(rgb, orientation)


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1..8) to an (H, W, C) array, as ImageOps.exif_transpose does."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(array, -1)
    if orientation == 7:
        return array[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(array, 1)
    return array


def _pil_to_rgb(image) -> np.ndarray:
    """Convert an opened Pillow image of any mode to (H, W, 3) uint8; alpha is ignored (the release's rule)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        gray = _wide_gray_to_uint8(np.asarray(image), mode)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "1":
        image = image.convert("L")
        mode = "L"
    if mode in ("RGBa", "La"):  # premultiplied alpha: the stored colours are the darkened ones
        image = image.convert(mode[0] + "A")
    if mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _wide_gray_to_uint8(gray: np.ndarray, mode: str) -> np.ndarray:
    """Map 16-bit (or 32-bit int / float) gray samples to uint8.

    I;16 is always 16-bit. For I and F the range is guessed: values within [0, 1] (F only) are
    taken as normalised floats, values up to 255 as 8-bit, anything larger as 16-bit.
    """
    data = gray.astype(np.float64)
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    if mode.startswith("I;16"):
        scale = 257.0
    else:
        peak = float(data.max()) if data.size else 0.0
        if mode == "F" and peak <= 1.0:
            scale = 1.0 / 255.0
        elif peak <= 255.0:
            scale = 1.0
        else:
            scale = 257.0
    return np.rint(np.clip(data / scale, 0.0, 255.0)).astype(np.uint8)

"""Tests of floatalk.io.image: photos of every format, orientation and bit depth, and bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from floatalk.errors import UserInputError
from floatalk.io import (
    load_image,
)


def test_load_image_rgb_png_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, rgb)
    out_str = load_image(str(tmp_path / "a.png"))
    np.testing.assert_array_equal(out_str, rgb)


def test_load_image_16bit_rgb_png_is_rounded_not_truncated(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb16 = rng.integers(0, 65536, (20, 24, 3), dtype=np.uint16)
    rgb16[0, 0] = (255, 128, 65535)  # 255/257 -> 1 (truncation would give 0)
    assert cv2.imwrite(str(tmp_path / "a16.png"), rgb16[:, :, ::-1])
    out = load_image(tmp_path / "a16.png")
    expected = np.rint(rgb16 / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert tuple(out[0, 0]) == (1, 0, 255)


def test_load_image_16bit_rgba_png_ignores_alpha(tmp_path: Path) -> None:
    bgra = np.zeros((16, 16, 4), np.uint16)
    bgra[..., 2] = 65535  # red
    bgra[:, :8, 3] = 65535  # left half opaque, right half transparent
    assert cv2.imwrite(str(tmp_path / "a16a.png"), bgra)
    out = load_image(tmp_path / "a16a.png")
    assert (out == (255, 0, 0)).all()  # the stored colour, whatever the alpha


def test_load_image_16bit_gray_png(tmp_path: Path) -> None:
    gray16 = np.linspace(0, 65535, 32 * 20).astype(np.uint16).reshape(20, 32)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    expected = np.rint(gray16 / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out, np.repeat(expected[:, :, None], 3, axis=2))
    assert out.max() == 255 and out.min() == 0


def _release_read(path: Path) -> np.ndarray:
    """How the FLOAT release reads a photo: OpenCV's imread (alpha dropped), BGR -> RGB."""
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_load_image_rgba_ignores_alpha_as_the_release_does(tmp_path: Path) -> None:
    rgba = np.zeros((16, 20, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:, :10, 3] = 255
    rgba[:, 10:, 3] = 128  # half transparent: must not come out darker
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert (out == (200, 100, 50)).all()
    np.testing.assert_array_equal(out, _release_read(tmp_path / "rgba.png"))
    np.testing.assert_array_equal(load_image(rgba), out)  # arrays go the same way
    np.testing.assert_array_equal(load_image(rgba.astype(np.float32) / 255), out)


def test_load_image_la_grayscale_and_palette(tmp_path: Path) -> None:
    la = np.zeros((16, 16, 2), np.uint8)
    la[..., 0] = 180
    la[:8, :, 1] = 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png")
    assert (out == 180).all()
    np.testing.assert_array_equal(out, _release_read(tmp_path / "la.png"))

    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    out = load_image(tmp_path / "l.png")
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[..., 1], gray)

    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 255, 0] + [255, 0, 0] + [0, 0, 0] * 254)
    for x in range(8):
        for y in range(16):
            palette.putpixel((x, y), 0)
    palette.save(tmp_path / "p.png", transparency=0)  # index 0 (green) is transparent
    out = load_image(tmp_path / "p.png")
    assert (out[:, :8] == (0, 255, 0)).all()
    assert (out[:, 8:] == (255, 0, 0)).all()
    np.testing.assert_array_equal(out, _release_read(tmp_path / "p.png"))


def test_load_image_cmyk_jpeg_and_webp(tmp_path: Path) -> None:
    Image.new("CMYK", (24, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    out = load_image(tmp_path / "cmyk.jpg")
    assert out.shape == (16, 24, 3)
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60 and out[..., 2].mean() < 60  # red

    Image.new("RGB", (20, 18), (10, 120, 240)).save(tmp_path / "a.webp", lossless=True)
    out = load_image(tmp_path / "a.webp")
    assert out.shape == (18, 20, 3) and (out == (10, 120, 240)).all()


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    stored = np.full((24, 40, 3), 90, np.uint8)  # landscape as stored: 40 wide, 24 high
    stored[:8, :8] = (255, 0, 0)  # red marks the stored top-left corner
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 24, 3)  # now portrait
    top_right = out[:6, -6:].astype(int).mean(axis=(0, 1))
    top_left = out[:6, :6].astype(int).mean(axis=(0, 1))
    assert top_right[0] > 200 and top_right[1] < 60  # the red corner moved to the top right
    assert abs(top_left[0] - 90) < 15


def _insert_png_exif(png: bytes, exif: bytes) -> bytes:
    """Add an eXIf chunk right after IHDR (OpenCV cannot write EXIF itself)."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    after_ihdr = 8 + 4 + 4 + 13 + 4  # signature, IHDR length, type, data, crc
    return png[:after_ihdr] + chunk + png[after_ihdr:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_png_orientation_matches_exif_transpose(tmp_path: Path, orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    rgb8 = rng.integers(0, 256, (18, 24, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb8).save(tmp_path / "a8.png", exif=exif.tobytes())
    with Image.open(tmp_path / "a8.png") as tagged:
        expected = np.asarray(ImageOps.exif_transpose(tagged))
    ok, png16 = cv2.imencode(".png", (rgb8.astype(np.uint16) * 257)[:, :, ::-1])  # same picture, 16-bit
    assert ok
    (tmp_path / "a16.png").write_bytes(_insert_png_exif(png16.tobytes(), exif.tobytes()))
    with Image.open(tmp_path / "a16.png") as check:
        assert check.getexif().get(0x0112) == orientation
    np.testing.assert_array_equal(load_image(tmp_path / "a16.png"), expected)
    np.testing.assert_array_equal(load_image(tmp_path / "a8.png"), expected)


def test_load_image_arrays() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    out = load_image(rgb)
    np.testing.assert_array_equal(out, rgb)
    assert out is not rgb and not np.shares_memory(out, rgb)

    gray = np.full((20, 18), 77, np.uint8)
    assert (load_image(gray) == 77).all() and load_image(gray).shape == (20, 18, 3)

    floats = np.full((16, 16, 3), 0.5, np.float32)
    assert (load_image(floats) == 128).all()
    assert load_image(np.ones((16, 16), np.float64)).max() == 255


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((16, 16, 5), np.uint8),
        np.zeros((2, 16, 16, 3), np.uint8),
        np.zeros((16, 16, 3), np.int32),
        np.full((16, 16, 3), 2.0, np.float32),
        np.full((16, 16, 3), np.nan, np.float32),
        np.zeros((8, 8, 3), np.uint8),
    ],
)
def test_load_image_bad_arrays(array: np.ndarray) -> None:
    with pytest.raises(UserInputError):
        load_image(array)


def test_load_image_bad_files(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("this is not an image\n")
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    cases = {
        "missing.png": "does not exist",
        "": "folder",
        "empty.png": "empty",
        "notes.jpg": "not an image",
        "tiny.png": "at least 16x16",
        "cut.png": "damaged",
    }
    for name, words in cases.items():
        path = tmp_path / name if name else tmp_path
        with pytest.raises(UserInputError, match=words) as info:
            load_image(path)
        message = str(info.value)
        assert str(path) in message and message.endswith(".") and message.count(". ") == 0

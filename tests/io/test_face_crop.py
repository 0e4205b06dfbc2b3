"""Tests of floatalk.io.face: detection, the crop box, crops, letterboxing and paste-back."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from floatalk.errors import UserInputError
from floatalk.io import (
    CropBox,
    PasteBack,
    VideoWriter,
    crop_image,
    detect_face,
    face_crop_box,
    find_crop_box,
    letterbox_box,
    load_image,
    paste_back,
    probe_video,
)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_detect_face_on_portrait(portrait: np.ndarray) -> None:
    face = detect_face(portrait)
    assert face is not None
    x, y, w, h = face
    assert all(isinstance(v, int) for v in face)
    # the astronaut's face is in the upper middle of the photo
    assert 120 < x + w / 2 < 320 and 40 < y + h / 2 < 220 and 50 < w < 250
    box = find_crop_box(portrait)
    assert box.size == pytest.approx(1.6 * max(w, h))
    assert box.x0 <= x and box.y0 <= y and x + w <= box.x0 + box.size and y + h <= box.y0 + box.size


def test_detect_face_maps_back_from_downscaled_copy(portrait: np.ndarray) -> None:
    big = cv2.resize(portrait, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    small_face, big_face = detect_face(portrait), detect_face(big)
    assert small_face is not None and big_face is not None
    np.testing.assert_allclose(np.array(big_face), 3 * np.array(small_face), atol=12)


def test_no_face_raises() -> None:
    blank = np.full((200, 300, 3), 127, np.uint8)
    assert detect_face(blank) is None
    with pytest.raises(UserInputError, match="No face found"):
        find_crop_box(blank)


def test_face_crop_box_geometry() -> None:
    box = face_crop_box((100, 50, 40, 60), scale=2.0)
    assert box == CropBox(x0=60.0, y0=20.0, size=120.0)
    assert letterbox_box(100, 300) == CropBox(x0=0.0, y0=-100.0, size=300.0)
    with pytest.raises(UserInputError):
        face_crop_box((0, 0, 10, 10), scale=0)


def test_crop_image_exact_at_unit_scale_and_padding(portrait: np.ndarray) -> None:
    out = crop_image(portrait, CropBox(100.0, 60.0, 128.0), 128)
    np.testing.assert_array_equal(out, portrait[60:188, 100:228])
    padded = crop_image(portrait, CropBox(-50.0, -20.0, 128.0), 128)
    assert (padded[:, :50] == 0).all() and (padded[:20] == 0).all()
    np.testing.assert_array_equal(padded[20:, 50:], portrait[:108, :78])
    shrunk = crop_image(portrait, CropBox(0.0, 0.0, 512.0), 128)
    assert shrunk.shape == (128, 128, 3) and shrunk.dtype == np.uint8
    reference = cv2.resize(portrait, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - reference).max() <= 1


def test_crop_image_shrinking_matches_an_antialiased_resize(portrait: np.ndarray) -> None:
    """Fractional boxes shrunk by 2.3x .. 16x stay close to Pillow's exact Lanczos box resize."""
    for box, size in [(CropBox(100.3, 50.7, 300.0), 128), (CropBox(3.3, 5.2, 500.0), 64), (CropBox(0, 0, 512), 32)]:
        out = crop_image(portrait, box, size)
        corners = (box.x0, box.y0, box.x0 + box.size, box.y0 + box.size)
        ideal = np.asarray(Image.fromarray(portrait).resize((size, size), Image.Resampling.LANCZOS, box=corners))
        assert np.abs(out.astype(int) - ideal).mean() < 5
        naive = cv2.warpAffine(  # plain bilinear sampling aliases badly at these ratios
            portrait,
            np.array([[box.size / size, 0, box.x0], [0, box.size / size, box.y0]]),
            (size, size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        )
        assert np.abs(out.astype(int) - ideal).mean() < np.abs(naive.astype(int) - ideal).mean()


def test_letterbox_of_a_panorama_stays_small(portrait: np.ndarray) -> None:
    panorama = np.tile(portrait, (1, 20, 1))[:320]  # 320 x 10240: shrunk 20x, bars of 248 rows
    out = crop_image(panorama, letterbox_box(*panorama.shape[:2]), 512)
    assert out.shape == (512, 512, 3)
    assert (out[:248] == 0).all() and (out[264:] == 0).all()
    reference = cv2.resize(panorama, (512, 16), interpolation=cv2.INTER_AREA)
    assert np.abs(out[248:264].astype(int) - reference).max() <= 1


def _save_strip(path: Path, height: int, width: int) -> Path:
    strip = np.zeros((height, width, 3), np.uint8)
    strip[:, ::7] = 200
    Image.fromarray(strip).save(path, optimize=True)
    return path


@pytest.mark.parametrize(
    ("height", "width", "words"),
    [
        (16, 1_000_000, "62500 times its short side"),  # 47 kB as a PNG
        (1_000_000, 16, "62500 times its short side"),
        (16, 513, "32 times its short side|at most 32:1"),
        (600, 16385, "neither side may exceed 16384"),
        (15, 400, "at least 16x16"),
    ],
)
def test_absurd_image_sizes_are_refused_before_decoding(tmp_path: Path, height: int, width: int, words: str) -> None:
    path = _save_strip(tmp_path / "strip.png", height, width)
    with pytest.raises(UserInputError, match=words) as info:
        load_image(path)
    assert str(path) in str(info.value) and f"{width}x{height} pixels" in str(info.value)
    with pytest.raises(UserInputError, match=words):
        load_image(np.zeros((height, width, 3), np.uint8))


def test_the_largest_accepted_shapes_load(tmp_path: Path) -> None:
    assert load_image(_save_strip(tmp_path / "panorama.png", 16, 512)).shape == (16, 512, 3)  # 32:1
    assert load_image(np.zeros((512, 16384, 3), np.uint8)).shape == (512, 16384, 3)


def test_block_shrinking_is_the_black_padded_block_mean() -> None:
    from floatalk.io.face import _shrink_blocks

    rng = np.random.default_rng(0)
    for height, width, m in [(100, 130, 7), (16, 5000, 40), (64, 64, 8), (5, 3, 4), (300, 17, 16)]:
        region = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        pad_h, pad_w = -height % m, -width % m
        padded = cv2.copyMakeBorder(region, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        reference = cv2.resize(padded, ((width + pad_w) // m, (height + pad_h) // m), interpolation=cv2.INTER_AREA)
        out = _shrink_blocks(region, m)
        assert out.shape == reference.shape
        assert np.abs(out.astype(int) - reference).max() <= 1  # whole blocks equal, partial ones rounded twice
        np.testing.assert_array_equal(out[: height // m, : width // m], reference[: height // m, : width // m])


# The peak is read from VmHWM, which starts afresh at exec: ru_maxrss would keep the high-water
# mark of the (forked) test process, which grows with the tests that ran before.
_LETTERBOX = """
import re, sys
import numpy as np
from floatalk.io.face import crop_image, letterbox_box
height, width = int(sys.argv[1]), int(sys.argv[2])
strip = np.zeros((height, width, 3), np.uint8)
strip[:, ::7] = 200
out = crop_image(strip, letterbox_box(height, width), 128)
hwm_kib = int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1))
print(out.shape, hwm_kib // 1024)
"""


@pytest.mark.parametrize(("height", "width"), [(16, 1_000_000), (1_000_000, 16)])
def test_letterboxing_memory_is_linear_in_the_image(height: int, width: int) -> None:
    """A 16 x 1,000,000 strip (48 MB of pixels) letterboxed to 128 px: padding it to whole blocks
    asked for 11.8 GB; the child has 3 GB of address space, and peaks under 400 MiB."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _LETTERBOX, str(height), str(width)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shape, peak_mib = done.stdout.rsplit(")", 1)
    assert shape + ")" == "(128, 128, 3)" and int(peak_mib) < 400


def test_video_frames_over_the_h264_limit_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="at most 16384 a side"), VideoWriter(tmp_path / "big.mp4") as writer:
        writer.write(np.zeros((1, 32, 16400, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_videos_of_absurd_shape_are_refused_when_opened(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "strip.mp4", fps=25) as writer:
        writer.write(np.zeros((3, 16, 1040, 3), np.uint8))  # 65:1
    with pytest.raises(UserInputError, match=r"Video '.*strip.mp4' is 1040x16 pixels, its long side 65 times"):
        probe_video(tmp_path / "strip.mp4")


def test_letterbox_crop_keeps_whole_photo(portrait: np.ndarray) -> None:
    wide = portrait[:256]  # 256 high, 512 wide
    box = letterbox_box(*wide.shape[:2])
    out = crop_image(wide, box, 512)
    assert (out[:128] == 0).all() and (out[384:] == 0).all()
    np.testing.assert_array_equal(out[128:384], wide)


def test_paste_back_reproduces_original(portrait: np.ndarray) -> None:
    box = find_crop_box(portrait)
    for size in (256, 512):
        crop = crop_image(portrait, box, size)
        restored = paste_back(crop, portrait, box)
        assert restored.shape == portrait.shape and restored.dtype == np.uint8
        x0, y0 = int(box.x0 + 0.15 * box.size), int(box.y0 + 0.15 * box.size)
        x1, y1 = int(box.x0 + 0.85 * box.size), int(box.y0 + 0.85 * box.size)
        assert _psnr(restored[y0:y1, x0:x1], portrait[y0:y1, x0:x1]) > 30
        outside = np.ones(portrait.shape[:2], bool)
        outside[int(box.y0) : int(box.y0 + box.size) + 1, int(box.x0) : int(box.x0 + box.size) + 1] = False
        np.testing.assert_array_equal(restored[outside], portrait[outside])


def test_paste_back_blends_with_feather_and_clips_to_image(portrait: np.ndarray) -> None:
    box = CropBox(-64.0, 192.0, 256.0)  # leaves the image on the left
    paster = PasteBack(portrait, box, 128, feather=0.1)
    white = np.full((128, 128, 3), 255, np.uint8)
    out = paster(white)
    assert out.shape == portrait.shape
    np.testing.assert_array_equal(out, paste_back(white, portrait, box, feather=0.1))
    assert (out[300, 60] == 255).all()  # box interior (x=60 is 124 px into the box)
    assert (out[300, 300:] == portrait[300, 300:]).all()  # right of the box: untouched
    edge = out[300, 185].astype(int)  # 249 px into the 256 px box: inside the feather ramp
    assert (edge > portrait[300, 185]).all() and (edge < 255).all()

"""Tests of floatalk.io: images, audio, face crops and mp4 writing."""

from __future__ import annotations

import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import soundfile
from PIL import Image, ImageOps

from floatalk.errors import UserInputError
from floatalk.io import (
    SAMPLE_RATE,
    CropBox,
    PasteBack,
    VideoWriter,
    crop_image,
    detect_face,
    face_crop_box,
    find_crop_box,
    letterbox_box,
    load_audio,
    load_image,
    paste_back,
    probe_video,
    read_video_frames,
)

# ----------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def portrait(parity_dir: Path) -> np.ndarray:
    """A 512x512 photo with one face (NASA astronaut photo, public domain)."""
    return load_image(parity_dir / "inputs_a" / "image.png")


def _write_audio_av(path: Path, wave: np.ndarray, rate: int, codec: str, container_format: str | None = None) -> None:
    """Encode a (C, N) float32 wave with PyAV."""
    layout = "stereo" if wave.shape[0] == 2 else "mono"
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _tone(rate: int, seconds: float, channels: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.stack([0.4 * np.sin(2 * np.pi * freq * t)] * channels).astype(np.float32)


def _dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.argmax(spectrum) * rate / wave.size)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# ----------------------------------------------------------------------------------------------
# images


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


# ----------------------------------------------------------------------------------------------
# audio


def test_wav_int16_at_16k_is_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = rng.integers(-32768, 32768, 16000 * 2, dtype=np.int16)
    samples[:2] = (-32768, 32767)
    soundfile.write(tmp_path / "a.wav", samples, 16000, subtype="PCM_16")
    out = load_audio(tmp_path / "a.wav")
    int16, rate = soundfile.read(tmp_path / "a.wav", dtype="int16")
    assert rate == 16000 and out.dtype == np.float32 and out.shape == (samples.size,)
    assert np.array_equal(out, int16.astype(np.float32) / 32768)
    assert np.array_equal(out, samples.astype(np.float32) / 32768)


def test_parity_wav_is_bit_exact(parity_dir: Path) -> None:
    path = parity_dir / "inputs_a" / "audio.wav"
    int16, rate = soundfile.read(path, dtype="int16")
    assert rate == SAMPLE_RATE
    assert np.array_equal(load_audio(path), int16.astype(np.float32) / 32768)


def test_mp3_44k_stereo_becomes_16k_mono(tmp_path: Path) -> None:
    wave = _tone(44100, 1.0, 2)
    wave[1] *= 0.5  # different channels: the downmix is their average
    _write_audio_av(tmp_path / "a.mp3", wave, 44100, "libmp3lame")
    out = load_audio(tmp_path / "a.mp3")
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size - 16000) <= 160
    assert abs(_dominant_frequency(out, 16000) - 440) < 5
    rms = float(np.sqrt(np.mean(out[2000:-2000] ** 2)))
    assert abs(rms - 0.3 / np.sqrt(2)) < 0.03  # mean of 0.4 and 0.2 amplitude sines


def test_wav_48k_stereo_is_downmixed_and_resampled(tmp_path: Path) -> None:
    wave = _tone(48000, 0.5, 2, freq=1000)
    wave[1] = -wave[1]  # opposite channels cancel in the average
    soundfile.write(tmp_path / "s.wav", wave.T, 48000, subtype="FLOAT")
    out = load_audio(tmp_path / "s.wav")
    assert out.shape == (8000,) and np.abs(out).max() < 1e-6
    out = load_audio(tmp_path / "s.wav", sample_rate=24000)
    assert out.shape == (12000,)


@pytest.mark.parametrize(
    ("name", "codec", "container_format", "rate"),
    [
        ("a.opus", "libopus", "ogg", 48000),
        ("a.m4a", "aac", "ipod", 22050),
        ("a.flac", "flac", None, 32000),
    ],
)
def test_compressed_audio_formats(
    tmp_path: Path, name: str, codec: str, container_format: str | None, rate: int
) -> None:
    _write_audio_av(tmp_path / name, _tone(rate, 1.0, 1, freq=300), rate, codec, container_format)
    out = load_audio(tmp_path / name)
    assert abs(out.size - 16000) <= 160
    assert abs(_dominant_frequency(out, 16000) - 300) < 5


def test_audio_track_of_a_video(tmp_path: Path, portrait: np.ndarray) -> None:
    wave = _tone(16000, 0.4, 1)[0]
    with VideoWriter(tmp_path / "v.mp4", fps=25, audio=wave) as writer:
        writer.write(np.repeat(portrait[None, :64, :64], 10, axis=0))
    out = load_audio(tmp_path / "v.mp4")
    assert abs(out.size - 6400) <= 64
    assert abs(_dominant_frequency(out, 16000) - 440) < 5


def test_silence_is_accepted_and_arrays(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "silence.wav", np.zeros(1600, np.int16), 16000)
    assert (load_audio(tmp_path / "silence.wav") == 0).all()

    stereo = np.stack([np.ones(1000), np.zeros(1000)], axis=1).astype(np.float64)
    out = load_audio(stereo)
    assert out.dtype == np.float32 and out.shape == (1000,) and np.allclose(out, 0.5)
    mono = np.linspace(-1, 1, 800, dtype=np.float32)
    np.testing.assert_array_equal(load_audio(mono), mono)
    for bad in (np.zeros((2, 16000), np.float32), np.zeros(0, np.float32), np.zeros(10, np.int64)):
        with pytest.raises(UserInputError):
            load_audio(bad)


def test_bad_audio_files(tmp_path: Path, portrait: np.ndarray) -> None:
    (tmp_path / "notes.txt").write_text("hello, this is text and not audio\n" * 20)
    (tmp_path / "empty.wav").write_bytes(b"")
    noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)
    (tmp_path / "noise.mp3").write_bytes(noise.tobytes())
    Image.fromarray(portrait).save(tmp_path / "photo.png")
    with VideoWriter(tmp_path / "silent.mp4", fps=25) as writer:
        writer.write(np.zeros((5, 32, 32, 3), np.uint8))
    soundfile.write(tmp_path / "nothing.wav", np.zeros(0, np.int16), 16000)
    cases = {
        "notes.txt": "no audio stream|FFmpeg can decode",
        "noise.mp3": "FFmpeg can decode|could not be decoded|no audio samples",
        "empty.wav": "empty",
        "photo.png": "no audio stream",
        "silent.mp4": "no audio stream",
        "nothing.wav": "no audio samples",
        "missing.wav": "does not exist",
        "": "folder",
    }
    for name, words in cases.items():
        path = tmp_path / name if name else tmp_path
        with pytest.raises(UserInputError, match=words) as info:
            load_audio(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize("samples", [1, 2, 200, 201, 399, 600])
@pytest.mark.parametrize(
    ("name", "codec", "container_format", "rate"),
    [
        ("a.wav", None, None, 16000),
        ("b.wav", None, None, 44100),
        ("a.flac", "flac", None, 16000),
        ("a.mp3", "libmp3lame", None, 44100),
        ("a.m4a", "aac", "ipod", 22050),
        ("a.opus", "libopus", "ogg", 48000),
    ],
)
def test_audio_shorter_than_a_frame_is_one_sentence(
    tmp_path: Path, samples: int, name: str, codec: str | None, container_format: str | None, rate: int
) -> None:
    """`samples` counted at 16 kHz: 200 or fewer broke the bundled model's STFT, fewer than 400
    the release's wav2vec2; anything under one video frame (640) is refused in one sentence (a
    lossy file's decoder may find no samples at all in the shortest ones)."""
    n = max(1, round(samples * rate / SAMPLE_RATE))
    tone = _tone(rate, n / rate, 1)
    if codec is None:
        soundfile.write(tmp_path / name, tone[0], rate, subtype="PCM_16")
    else:
        _write_audio_av(tmp_path / name, tone, rate, codec, container_format)
    too_short = r"lasts [\d.]+ ms \(\d+ samples? at 16000 Hz\); speech must last at least 40 ms \(one video frame\)\.$"
    with pytest.raises(UserInputError, match=f"{too_short}|it contains no audio samples\\.$") as info:
        load_audio(tmp_path / name)
    assert str(tmp_path / name) in str(info.value)


def test_audio_of_one_frame_is_accepted_and_a_sample_less_is_not(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "frame.wav", _tone(16000, 0.04, 1)[0], 16000, subtype="PCM_16")
    assert load_audio(tmp_path / "frame.wav").shape == (640,)
    soundfile.write(tmp_path / "less.wav", _tone(16000, 0.04, 1)[0, :639], 16000, subtype="PCM_16")
    with pytest.raises(UserInputError, match=r"lasts 39.9 ms \(639 samples at 16000 Hz\)"):
        load_audio(tmp_path / "less.wav")


@pytest.mark.parametrize("samples", [1, 200, 399, 639])
def test_short_audio_arrays_are_one_sentence(samples: int) -> None:
    for array in (np.zeros(samples, np.float32), np.zeros((samples, 2), np.int16)):
        with pytest.raises(UserInputError, match=f"Audio array lasts .* \\({samples} samples? at 16000 Hz\\)"):
            load_audio(array)


def test_one_frame_of_audio_is_enough_for_both_kinds_of_model(bundled_pipe, tiny_model) -> None:
    """The shortest accepted recording runs through the bundled (log-mel) model and a wav2vec2
    model with the emotion predicted; a sample less was a traceback inside torch for both."""
    from floatalk import FloatPipeline
    from floatalk.io.audio import MIN_AUDIO_SECONDS
    from floatalk.models.audio_encoder import conv_geometry
    from floatalk.models.logmel import WIN

    shortest = round(MIN_AUDIO_SECONDS * SAMPLE_RATE)
    assert shortest == 640
    wav2vec2 = FloatPipeline(tiny_model)
    _, field = conv_geometry(wav2vec2.model.emotion_encoder.wav2vec2_for_emotion.wav2vec2)
    assert WIN // 2 + 1 <= field <= shortest  # the models' own minima: 201 and 400 samples
    wave = 0.1 * np.random.default_rng(0).standard_normal(shortest).astype(np.float32)
    for pipe in (bundled_pipe, wav2vec2):
        size = pipe.image_size
        out = pipe(image=np.full((size, size, 3), 128, np.uint8), audio=wave, crop=False, nfe=2)
        assert len(out.frames) == 1
        with pytest.raises(UserInputError, match="speech must last at least 40 ms"):
            pipe(image=np.full((size, size, 3), 128, np.uint8), audio=wave[:-1], crop=False, nfe=2)


# ----------------------------------------------------------------------------------------------
# faces


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


def test_no_face_raises(portrait: np.ndarray) -> None:
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


_LETTERBOX = """
import re, sys
import numpy as np
from floatalk.io.face import crop_image, letterbox_box
height, width = int(sys.argv[1]), int(sys.argv[2])
strip = np.zeros((height, width, 3), np.uint8)
strip[:, ::7] = 200
out = crop_image(strip, letterbox_box(height, width), 128)
# VmHWM, this program's own peak (ru_maxrss would include pytest's size at the fork)
peak_kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(out.shape, peak_kib // 1024)
"""


@pytest.mark.parametrize(("height", "width"), [(16, 1_000_000), (1_000_000, 16)])
def test_letterboxing_memory_is_linear_in_the_image(height: int, width: int) -> None:
    """A 16 x 1,000,000 strip (48 MB of pixels) letterboxed to 128 px: padding it to whole blocks
    asked for 11.8 GB; the child has 3 GB of address space, and peaks under 400 MiB."""
    import resource

    if not Path("/proc/self/status").is_file():
        pytest.skip("the peak is read from /proc/self/status (Linux)")
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
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


# ----------------------------------------------------------------------------------------------
# video


def _frames(n: int, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        frames[i, ..., 0] = (xx * 255 // max(1, width - 1) + 8 * i) % 256
        frames[i, ..., 1] = yy * 255 // max(1, height - 1)
        frames[i, ..., 2] = 128
    return frames


def test_video_with_audio_is_trimmed(tmp_path: Path) -> None:
    frames = _frames(30, 64, 96)
    audio = _tone(16000, 1.5, 1)[0]  # 1.5 s of audio for 1.2 s of video
    path = tmp_path / "out.mp4"
    with VideoWriter(path, fps=25, audio=audio, sample_rate=16000) as writer:
        writer.write(frames[:10])
        for frame in frames[10:]:
            writer.write(frame)
    info = probe_video(path)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert (info["width"], info["height"], info["n_frames"]) == (96, 64, 30)
    assert info["fps"] == pytest.approx(25.0)
    assert info["duration"] == pytest.approx(1.2, abs=1e-6)
    assert abs(info["audio_duration"] - 1.2) <= 0.04 + 0.05
    decoded = read_video_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames).mean() < 3
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_video_odd_size_is_padded(tmp_path: Path) -> None:
    frames = _frames(5, 51, 77)
    with VideoWriter(tmp_path / "odd.mp4", fps=10) as writer:
        writer.write(frames)
    info = probe_video(tmp_path / "odd.mp4")
    assert (info["width"], info["height"], info["n_frames"]) == (78, 52, 5)
    assert info["audio_codec"] is None and info["audio_duration"] is None
    decoded = read_video_frames(tmp_path / "odd.mp4")
    assert np.abs(decoded[:, :51, :77].astype(int) - frames).mean() < 3
    # the padding replicates the edge
    assert np.abs(decoded[:, 51, :77].astype(int) - frames[:, 50]).mean() < 6


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_video_failure_leaves_nothing_behind(tmp_path: Path, error: type[BaseException]) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(error), VideoWriter(path, fps=25, audio=np.zeros(16000, np.float32)) as writer:
        writer.write(_frames(3, 32, 32))
        assert len(list(tmp_path.iterdir())) == 1  # the hidden partial file
        raise error("stop")
    assert list(tmp_path.iterdir()) == []

    path.write_bytes(b"previous video")
    with pytest.raises(error), VideoWriter(path, fps=25) as writer:
        writer.write(_frames(3, 32, 32))
        raise error("stop")
    assert path.read_bytes() == b"previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_video_replaces_existing_file_on_success(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous video")
    with VideoWriter(path, fps=25) as writer:
        writer.write(_frames(2, 32, 32))
    assert probe_video(path)["n_frames"] == 2
    assert path.stat().st_mode & 0o044  # readable by others like any normal file, not 0600


def test_video_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist") as info:
        VideoWriter(tmp_path / "nope" / "x.mp4")
    assert (
        str(info.value) == f"Cannot write '{tmp_path / 'nope' / 'x.mp4'}': folder '{tmp_path / 'nope'}' does not exist."
    )
    with pytest.raises(UserInputError), VideoWriter(tmp_path / "x.mp4") as writer:
        writer.write(np.zeros((32, 32), np.uint8))
    with pytest.raises(UserInputError), VideoWriter(tmp_path / "x.mp4") as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))
        writer.write(np.zeros((34, 32, 3), np.uint8))
    with pytest.raises(UserInputError), VideoWriter(tmp_path / "x.mp4"):
        pass  # no frames
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserInputError, match="no video stream"):
        probe_video(_write_wav(tmp_path / "a.wav"))


def _write_wav(path: Path) -> Path:
    soundfile.write(path, np.zeros(1600, np.int16), 16000)
    return path


def test_video_fraction_free_timestamps(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "v.mp4", fps=30) as writer:
        writer.write(_frames(9, 32, 32))
    with av.open(str(tmp_path / "v.mp4")) as container:
        stream = container.streams.video[0]
        pts = [frame.pts * stream.time_base for frame in container.decode(stream)]
    assert pts == [Fraction(i, 30) for i in range(9)]

"""Tests of floatalk.io.audio: recordings of every format, rate and channel count, and bad files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

from floatalk.errors import UserInputError
from floatalk.io import (
    SAMPLE_RATE,
    VideoWriter,
    load_audio,
)


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

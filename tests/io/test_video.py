"""Tests of floatalk.io.video: the atomic mp4 writer, trimming, odd sizes and timestamps."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from floatalk.errors import UserInputError
from floatalk.io import (
    VideoWriter,
    probe_video,
    read_video_frames,
)


def _tone(rate: int, seconds: float, channels: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.stack([0.4 * np.sin(2 * np.pi * freq * t)] * channels).astype(np.float32)


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

"""The lip-sync meter and expression measures on videos of the synthetic world (no ground truth read)."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from floatalk.cli.main import main
from floatalk.evaluation import audio_opening, measure_expression, mouth_opening, pearson, psnr, score_lipsync
from floatalk.io.audio import load_audio
from floatalk.io.video import read_video_frames
from floatalk.synth import ClipSpec, generate_world, make_clip

N_CLIPS = 20
SHIFT = 6400  # 0.4 s at 16 kHz


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lipsync") / "world"
    generate_world(out, clips=N_CLIPS, seconds=3.0, size=80, seed=2024, workers=2)
    return out


@pytest.fixture(scope="module")
def decoded(world) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frames, audio from the mp4's own soundtrack) per clip."""
    return [
        (read_video_frames(world / f"clip_{i:05d}.mp4"), load_audio(world / f"clip_{i:05d}.mp4"))
        for i in range(N_CLIPS)
    ]


@pytest.fixture(scope="module")
def scores(decoded) -> list[dict]:
    return [score_lipsync(frames, audio) for frames, audio in decoded]


@pytest.mark.slow
def test_ground_truth_clips_are_in_sync(scores):
    corr = np.array([s["correlation"] for s in scores])
    offsets = np.array([s["best_offset"] for s in scores])
    assert corr.mean() >= 0.9, corr
    assert np.mean(offsets == 0) >= 0.8, offsets
    assert all(s["face_detected"] for s in scores[:5])


@pytest.mark.slow
def test_meter_agrees_with_the_hidden_ground_truth(world, decoded):
    # Only the test reads the JSON: the meter's mouth curve tracks the true opening.
    r = [
        pearson(mouth_opening(frames), json.loads((world / f"clip_{i:05d}.json").read_text())["mouth_open"])
        for i, (frames, _) in enumerate(decoded[:6])
    ]
    assert np.mean(r) >= 0.9


@pytest.mark.slow
def test_shifted_or_foreign_audio_scores_low(decoded):
    shifted, foreign = [], []
    for i, (frames, audio) in enumerate(decoded):
        late = np.concatenate([np.zeros(SHIFT, np.float32), audio[:-SHIFT]])
        shifted.append(score_lipsync(frames, late)["correlation"])
        foreign.append(score_lipsync(frames, decoded[(i + 7) % N_CLIPS][1])["correlation"])
    assert np.mean(shifted) <= 0.3 and np.mean(foreign) <= 0.3, (shifted, foreign)
    # The delayed audio is found at the edge of the window: audio late by 10 frames.
    late = score_lipsync(decoded[0][0], np.concatenate([np.zeros(SHIFT, np.float32), decoded[0][1]]))
    assert late["best_offset"] == 10 and late["correlation_best"] > 0.8


def _reencode(src: Path, dst: Path, size: int, crf: int) -> None:
    """Decode with PyAV, resize, and write H.264 (given crf) + AAC 48 kHz into another container."""
    frames = read_video_frames(src)
    audio = load_audio(src, sample_rate=48000)
    with av.open(str(dst), "w") as box:
        video = box.add_stream("libx264", rate=25)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"}
        sound = box.add_stream("aac", rate=48000, layout="mono")
        for k, frame in enumerate(frames):
            resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_CUBIC)
            vf = av.VideoFrame.from_ndarray(resized, format="rgb24")
            vf.pts = k
            vf.time_base = Fraction(1, 25)
            for packet in video.encode(vf):
                box.mux(packet)
        for start in range(0, len(audio), 1024):
            af = av.AudioFrame.from_ndarray(audio[None, start : start + 1024].copy(), format="fltp", layout="mono")
            af.sample_rate = 48000
            af.pts = start
            af.time_base = Fraction(1, 48000)
            for packet in sound.encode(af):
                box.mux(packet)
        for stream in (video, sound):
            for packet in stream.encode(None):
                box.mux(packet)


def _cli_json(capsys, *args: str) -> dict:
    assert main(["eval-lipsync", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_meter_runs_on_reencoded_videos_via_cli(world, tmp_path, capsys):
    other = tmp_path / "elsewhere"
    other.mkdir()
    results = []
    # Moderate crf: at crf >= 32 and <= 96 px x264 skips the mouth blocks of many frames (the motion is gone).
    for i, (ext, size, crf) in enumerate(((".mkv", 112, 26), (".mov", 64, 22), (".mp4", 144, 24))):
        dst = other / f"again{ext}"
        _reencode(world / f"clip_{i:05d}.mp4", dst, size, crf)
        results.append(_cli_json(capsys, str(dst), "--meter", "synthetic"))  # a re-encoded clip is unmarked
    assert all(r["correlation"] >= 0.85 and r["best_offset"] == 0 for r in results), results
    assert {r["n_frames"] for r in results} == {75}


@pytest.mark.slow
def test_cli_audio_override(world, capsys):
    video = str(world / "clip_00003.mp4")
    own = _cli_json(capsys, video, "--audio", str(world / "clip_00003.wav"), "--max-offset", "5")
    assert own["correlation"] >= 0.9 and own["offsets"] == list(range(-5, 6))
    foreign = _cli_json(capsys, video, "--audio", str(world / "clip_00009.wav"))
    assert foreign["correlation"] < 0.5 and foreign["audio"].endswith("clip_00009.wav")
    report = _cli_json(capsys, video, "--expression")
    assert set(report["expression"]) == {"mouth_corner", "brow_height"}


@pytest.mark.slow
def test_meter_is_robust_to_blur_noise_and_scale(decoded):
    rng = np.random.default_rng(0)
    corr = []
    for frames, audio in decoded[:4]:
        degraded = np.stack(
            [cv2.resize(cv2.GaussianBlur(f, (0, 0), 1.5), (160, 160), interpolation=cv2.INTER_LINEAR) for f in frames]
        ).astype(np.float64)
        degraded = np.clip(degraded + rng.normal(0, 10, degraded.shape), 0, 255).astype(np.uint8)
        corr.append(score_lipsync(degraded, audio)["correlation"])
    assert np.mean(corr) >= 0.85, corr


@pytest.mark.slow
def test_static_face_scores_zero(decoded):
    frames, audio = decoded[0]
    still = np.repeat(frames[:1], len(frames), axis=0)
    result = score_lipsync(still, audio)
    assert abs(result["correlation"]) < 0.05


def test_cli_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval-lipsync", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("VIDEO", "--audio", "--max-offset", "--expression"):
        assert flag in text


def _silent_video(path: Path) -> None:
    with av.open(str(path), "w") as box:
        stream = box.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for k in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 120, np.uint8), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)


@pytest.mark.parametrize("case", ["missing", "text", "json", "silent", "bad_audio", "bad_offset"])
@pytest.mark.slow
def test_cli_bad_input_is_one_line_exit_2(world, tmp_path, capsys, case):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    silent = tmp_path / "silent.mp4"
    _silent_video(silent)
    args = {
        "missing": [str(tmp_path / "nope.mp4")],
        "text": [str(text)],
        "json": [str(world / "clip_00000.json")],
        "silent": [str(silent)],
        "bad_audio": [str(world / "clip_00000.mp4"), "--audio", str(text)],
        "bad_offset": [str(world / "clip_00000.mp4"), "--max-offset", "-1"],
    }[case]
    assert main(["eval-lipsync", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("floatalk eval-lipsync: error:")


def test_api_shapes_and_edge_cases():
    curve = audio_opening(np.zeros(100, np.float32), 10)
    assert curve.shape == (10,) and not curve.any()  # audio shorter than the video counts as silence
    assert pearson(np.ones(5), np.arange(5)) == 0.0
    frames = np.full((3, 48, 48, 3), 200, np.uint8)
    assert mouth_opening(frames).shape == (3,)
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 255) == pytest.approx(0.0) and psnr(a, a + 1) == pytest.approx(48.1308, abs=1e-3)


def test_expression_shows_emotion():
    corner, brow = {}, {}
    for emotion in ("happy", "neutral", "sad", "surprise", "angry"):
        values = []
        for identity in (7, 8):
            clip = make_clip(
                ClipSpec(name="x", identity=identity, emotion=emotion, seed=identity, seconds=1.6, size=96)
            )
            values.append(measure_expression(clip.frames)["summary"])
        corner[emotion] = np.mean([v["mouth_corner"] for v in values])
        brow[emotion] = np.mean([v["brow_height"] for v in values])
    assert corner["happy"] > corner["neutral"] > corner["sad"], corner
    assert brow["surprise"] > brow["neutral"] > brow["angry"], brow

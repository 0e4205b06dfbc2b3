"""The synthetic talking-portrait world: files, determinism, identities, physics, faces, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from floatalk.cli.main import main
from floatalk.config import EMOTIONS
from floatalk.io.face import detect_face
from floatalk.io.video import probe_video, read_video_frames
from floatalk.synth import ClipSpec, generate_world, make_clip, make_contact_sheet
from floatalk.synth.speech import PROSODY, VOWELS, frame_means, openness, voice_envelope

REPO = Path(__file__).resolve().parents[2]
PER_FRAME = ("mouth_open", "lip_round", "blink", "head_tx", "head_ty", "head_rot", "head_scale", "face_box")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "a"
    generate_world(out, clips=3, seconds=1.2, size=64, seed=5, workers=1)
    return out


def test_folder_layout_and_formats(world):
    manifest = json.loads((world / "manifest.json").read_text())
    assert [c["name"] for c in manifest["clips"]] == ["clip_00000", "clip_00001", "clip_00002"]
    assert manifest["fps"] == 25 and manifest["sample_rate"] == 16000 and manifest["size"] == 64
    for clip in manifest["clips"]:
        assert clip["emotion"] in EMOTIONS and clip["seconds"] == 1.2 and clip["size"] == 64
        info = probe_video(world / clip["video"])
        assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
        assert (info["width"], info["height"], info["n_frames"], info["fps"]) == (64, 64, 30, 25.0)
        wav = sf.info(str(world / clip["audio"]))
        assert (wav.samplerate, wav.channels, wav.subtype, wav.frames) == (16000, 1, "PCM_16", 30 * 640)
        truth = json.loads((world / clip["truth"]).read_text())
        assert truth["identity"] == clip["identity"] and truth["emotion"] == clip["emotion"]
        assert truth["n_frames"] == 30
        for key in PER_FRAME:
            assert len(truth[key]) == 30, key
        assert all(len(box) == 4 for box in truth["face_box"])
        x, y, w, h = truth["face_box"][0]
        assert 0.55 * 64 < w < 0.7 * 64 and abs(x + w / 2 - 32) < 5 and abs(y + h / 2 - 32) < 5
        assert min(truth["mouth_open"]) >= 0 and max(truth["mouth_open"]) <= 1


def test_same_seed_same_files_any_worker_count(world, tmp_path):
    again = tmp_path / "b"
    generate_world(again, clips=3, seconds=1.2, size=64, seed=5, workers=2)
    for name in ("clip_00000", "clip_00002"):
        for ext in (".wav", ".json"):
            assert (world / f"{name}{ext}").read_bytes() == (again / f"{name}{ext}").read_bytes()
        assert np.array_equal(read_video_frames(world / f"{name}.mp4"), read_video_frames(again / f"{name}.mp4"))
    assert (world / "manifest.json").read_bytes() == (again / "manifest.json").read_bytes()


def test_identities_differ_between_clips_and_seeds(world, tmp_path):
    other = tmp_path / "c"
    generate_world(other, clips=3, seconds=1.2, size=64, seed=6, workers=1)
    ids = [json.loads((d / "manifest.json").read_text())["clips"] for d in (world, other)]
    identities = [c["identity"] for run in ids for c in run]
    assert len(set(identities)) == 6
    first = [read_video_frames(d / "clip_00000.mp4")[0].astype(float) for d in (world, other)]
    second = read_video_frames(world / "clip_00001.mp4")[0].astype(float)
    assert np.abs(first[0] - first[1]).mean() > 10 and np.abs(first[0] - second).mean() > 10
    assert (world / "clip_00000.wav").read_bytes() != (other / "clip_00000.wav").read_bytes()


def test_jaw_follows_voice_band_loudness_with_at_most_a_frame_of_lag():
    clip = make_clip(ClipSpec(name="x", identity=11, emotion="neutral", seed=3, seconds=3.0, size=48))
    truth = np.asarray(clip.truth["mouth_open"])
    implied = frame_means(voice_envelope(clip.audio), len(truth))
    lags = {d: np.corrcoef(truth[2:-2], implied[2 + d : len(truth) - 2 + d])[0, 1] for d in (-2, -1, 0, 1, 2)}
    assert max(lags, key=lags.get) == 0 and lags[0] > 0.95
    # Open vowels open the jaw more (the vowel law follows F1).
    assert openness(VOWELS["a"][0][0]) == 1.0 > openness(VOWELS["e"][0][0]) > openness(VOWELS["i"][0][0])


def _pitch(audio: np.ndarray, rate: int = 16000) -> float:
    """Median f0 (Hz) of the loud 40 ms frames by autocorrelation."""
    f0s = []
    n = 640
    level = np.sqrt(np.mean(audio.astype(np.float64) ** 2))
    for k in range(0, len(audio) - n, n):
        x = audio[k : k + n].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 0.6 * level:
            continue
        ac = np.correlate(x, x, "full")[n - 1 :]
        lo, hi = rate // 400, rate // 70
        f0s.append(rate / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0s))


def test_emotion_is_audible_in_prosody():
    kw = {"name": "x", "identity": 21, "seed": 4, "seconds": 3.0, "size": 32}
    sad, angry, fear = (make_clip(ClipSpec(emotion=e, **kw)) for e in ("sad", "angry", "fear"))
    loud = {name: float(np.sqrt(np.mean(c.audio**2))) for name, c in (("sad", sad), ("angry", angry))}
    assert loud["angry"] > 1.5 * loud["sad"]
    assert _pitch(fear.audio) > 1.2 * _pitch(sad.audio)
    assert PROSODY["sad"].tempo < PROSODY["neutral"].tempo < PROSODY["fear"].tempo


def test_haar_cascade_finds_most_faces_at_128px():
    found = []
    for i, emotion in enumerate(("neutral", "happy", "surprise", "sad")):
        clip = make_clip(ClipSpec(name="x", identity=100 + i, emotion=emotion, seed=i, seconds=1.0, size=128))
        found += [detect_face(frame) is not None for frame in clip.frames[::5]]
    assert np.mean(found) >= 0.8


def test_contact_sheet(world, tmp_path):
    out = tmp_path / "sheet.png"
    image = make_contact_sheet(world / "clip_00001.mp4", out, n_frames=4, tile=64)
    assert out.is_file() and image.size[0] == 4 * 64 + 24
    from floatalk.synth.contact_sheet import main as sheet_main

    assert sheet_main([str(world / "clip_00000.mp4"), "--out", str(tmp_path / "b.png"), "--frames", "3"]) == 0
    assert sheet_main([str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "c.png")]) == 2


def test_docs_picture_is_small():
    picture = REPO / "docs" / "synth_contact_sheet.png"
    assert picture.is_file() and picture.stat().st_size < 300_000


def test_cli_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth-data", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--clips", "--seconds", "--size", "--seed", "--workers", "--quiet"):
        assert flag in text


def test_cli_writes_a_world(tmp_path):
    out = tmp_path / "cli"
    assert main(["synth-data", "--out", str(out), "--clips", "2", "--seconds", "0.6", "--size", "48", "--quiet"]) == 0
    assert len(json.loads((out / "manifest.json").read_text())["clips"]) == 2
    assert sorted(p.suffix for p in out.glob("clip_00001.*")) == [".json", ".mp4", ".wav"]


@pytest.mark.parametrize(
    "args",
    [
        ["--clips", "0"],
        ["--size", "8"],
        ["--seconds", "-1"],
        ["--workers", "0"],
        ["--clips", "many"],
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        code = main(["synth-data", "--out", str(tmp_path / "o"), "--quiet", *args])
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_cli_out_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["synth-data", "--out", str(blocker), "--clips", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file" in err


def test_emotion_onset_starts_neutral_then_holds_the_expression():
    import dataclasses

    from floatalk.synth.world import clip_specs

    spec = dataclasses.replace(clip_specs(1, 2.0, 64, 31)[0], emotion="happy")
    held, onset = make_clip(spec), make_clip(dataclasses.replace(spec, onset=0.8))
    neutral = make_clip(dataclasses.replace(spec, emotion="neutral"))
    diff = lambda a, b: np.abs(a.astype(np.int16) - b).mean()  # noqa: E731
    # Before the onset the face is the neutral one (same speech, pose and blinks); after the 0.5 s
    # ease-in it is the held expression's.
    assert diff(onset.frames[0], neutral.frames[0]) < 0.05 * diff(held.frames[0], neutral.frames[0])
    assert np.array_equal(onset.frames[-1], held.frames[-1])
    assert onset.truth["emotion_onset"] == 0.8 and held.truth["emotion_onset"] == 0.0
    # The per-frame expression truth follows the same ramp: zero (neutral) before the onset, the
    # held expression's departure from neutral after it.
    from floatalk.synth.world import EXPRESSION_KEYS

    rows, full = np.array(onset.truth["expression_frames"]), np.array(held.truth["expression_frames"])
    assert rows.shape == (onset.truth["n_frames"], len(EXPRESSION_KEYS))
    assert np.all(rows[: int(0.8 * 25)] == 0) and np.allclose(rows[-1], full[-1]) and np.allclose(full, full[0])
    corner = EXPRESSION_KEYS.index("corner")
    assert full[0, corner] == pytest.approx(held.truth["expression"]["corner"], abs=1e-5) and full[0, corner] > 0


def test_expression_scale_multiplies_the_departure_from_neutral(tmp_path, capsys):
    import dataclasses

    from floatalk.synth.world import EXPRESSION_KEYS, clip_specs

    spec = dataclasses.replace(clip_specs(1, 0.4, 64, 31)[0], emotion="surprise")
    plain, strong = make_clip(spec), make_clip(dataclasses.replace(spec, expression_scale=1.6))
    flat = make_clip(dataclasses.replace(spec, expression_scale=0.0))
    neutral = make_clip(dataclasses.replace(spec, emotion="neutral"))
    rows = {k: np.array(c.truth["expression_frames"][0]) for k, c in (("1", plain), ("1.6", strong), ("0", flat))}
    assert np.allclose(rows["1.6"], 1.6 * rows["1"], atol=2e-5) and np.all(rows["0"] == 0)
    assert rows["1"][EXPRESSION_KEYS.index("brow_raise")] > 0
    # Scale 0 draws the neutral face (only surprise's resting jaw opening stays).
    diff = lambda a, b: np.abs(a.astype(np.int16) - b).mean()  # noqa: E731
    assert diff(flat.frames[0], neutral.frames[0]) < 0.5 * diff(plain.frames[0], neutral.frames[0])
    assert diff(strong.frames[0], neutral.frames[0]) > diff(plain.frames[0], neutral.frames[0])
    assert strong.truth["expression_scale"] == 1.6
    code = main(["synth-data", "--out", str(tmp_path / "w"), "--clips", "1", "--expression-scale", "3", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--expression-scale" in err


def test_landmarks_sit_on_the_drawn_face_and_follow_pose_and_expression():
    """The world's per-frame landmarks are where render_frame draws those features: the pupil is the
    darkest spot of the eye, the points move with the head pose and with the expression."""
    import dataclasses

    from floatalk.synth.face import LANDMARK_NAMES, FaceState, Identity, landmarks, render_background, render_frame
    from floatalk.synth.world import clip_specs

    idt, size = Identity.sample(11), 128
    state = FaceState(rot=6.0, tx=0.02, scale=1.04)
    frame = render_frame(idt, state, render_background(idt, size * 2), size).astype(float).mean(axis=2)
    pts = landmarks(idt, state, size)
    assert pts.shape == (len(LANDMARK_NAMES), 2)
    for side in ("left", "right"):
        x, y = pts[LANDMARK_NAMES.index(f"eye_{side}_centre")]
        pupil = frame[int(y), int(x)]
        ring = [frame[int(y), int(x + dx)] for dx in (-3, 3)]  # the white of the eye either side
        assert pupil < min(ring) - 20
    moved = landmarks(idt, dataclasses.replace(state, tx=0.12, ty=-0.05), size)
    assert np.allclose(moved - pts, [0.1 * size, -0.05 * size], atol=1e-9)
    smile = landmarks(idt, dataclasses.replace(state, rot=0.0, corner=0.09), size)
    rest = landmarks(idt, dataclasses.replace(state, rot=0.0), size)
    for name in ("mouth_left", "mouth_right"):
        assert smile[LANDMARK_NAMES.index(name), 1] < rest[LANDMARK_NAMES.index(name), 1] - 2  # corners up
    # The clip's truth carries them per frame.
    clip = make_clip(dataclasses.replace(clip_specs(1, 0.2, 64, 7)[0], emotion="happy"))
    marks = np.array(clip.truth["landmarks"])
    assert marks.shape == (clip.truth["n_frames"], len(LANDMARK_NAMES), 2) and clip.truth["landmark_names"][0]


def test_drawing_only_the_first_frames_keeps_them_and_the_audio():
    spec = ClipSpec(name="x", identity=5, emotion="happy", seed=9, seconds=2.0, size=48)
    whole, first = make_clip(spec), make_clip(spec, draw=1)
    assert first.frames.shape == (1, 48, 48, 3)
    assert np.array_equal(first.frames[0], whole.frames[0]) and np.array_equal(first.audio, whole.audio)

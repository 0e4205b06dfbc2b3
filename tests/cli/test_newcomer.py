"""What a new user runs into first: the bundled model on a real photo, output names, Ctrl-C,
what `generate` reports, `eval-lipsync` on a photo, and the Python API around one call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from floatalk.cli.main import main
from floatalk.io.video import probe_video


@pytest.fixture(scope="module")
def photo(parity_dir) -> Path:
    return parity_dir / "inputs_a" / "image.png"  # a real face


@pytest.fixture(scope="module")
def speech(parity_dir, tmp_path_factory) -> Path:
    """The first 1.2 s of the parity recording (real speech), to keep each run short."""
    import soundfile as sf

    wave, rate = sf.read(parity_dir / "inputs_a" / "audio.wav", dtype="float32")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(path, wave[: int(1.2 * rate)], rate)
    return path


def generate(*args: object) -> int:
    return main(["generate", *map(str, args)])


def test_bundled_model_on_a_photo_says_so_and_reports_what_it_did(tiny_bundle, photo, speech, tmp_path, capsys):
    out = tmp_path / "talk.mp4"
    assert generate("--image", photo, "--audio", speech, "--out", out, "--nfe", 3) == 0
    err = capsys.readouterr().err
    note = [line for line in err.splitlines() if "bundled demo model" in line]
    assert len(note) == 1 and "--checkpoint" in note[0] and "release" in note[0]
    lines = err.splitlines()
    face = next(line for line in lines if line.startswith("face:"))
    assert "in the 512x512 photo" in face and "cropped" in face
    emotion = next(line for line in lines if line.startswith("emotion:"))
    assert "predicted from the speech" in emotion and emotion.count(".") >= 2  # two names with probabilities
    wrote = next(line for line in lines if line.startswith("wrote"))
    info = probe_video(out)
    assert f"{info['n_frames']} frames at 25 fps" in wrote and "64x64" in wrote and " s" in wrote


def test_forced_emotion_is_reported_as_forced(tiny_bundle, photo, speech, tmp_path, capsys):
    assert (
        generate("--image", photo, "--audio", speech, "--out", tmp_path / "a.mp4", "--emotion", "Sad", "--nfe", 2) == 0
    )
    assert "emotion: sad (forced)" in capsys.readouterr().err


def test_emotion_from_a_timeline_is_reported_as_the_timeline_s(tiny_bundle, photo, speech, tmp_path, capsys):
    timeline = tmp_path / "timeline.json"
    timeline.write_text(
        '{"segments": [{"start": 0, "end": 0.2, "emotion": "happy"}, {"start": 0.2, "end": 9, "emotion": "sad"}]}'
    )
    out = tmp_path / "a.mp4"
    assert generate("--image", photo, "--audio", speech, "--out", out, "--timeline", timeline, "--nfe", 2) == 0
    emotion = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("emotion:"))
    assert "set by the timeline" in emotion and "sad" in emotion and "happy" in emotion


def test_quiet_prints_only_the_note(tiny_bundle, photo, speech, tmp_path, capsys):
    assert generate("--image", photo, "--audio", speech, "--out", tmp_path / "a.mp4", "--nfe", 2, "--quiet") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled demo model" in err[0]


def test_another_model_gets_no_note(tiny_dir, photo, speech, tmp_path, capsys):
    args = ("--image", photo, "--audio", speech, "--out", tmp_path / "a.mp4", "--nfe", 2, "--quiet")
    assert generate("--checkpoint", tiny_dir, *args) == 0
    assert capsys.readouterr().err.strip() == ""


@pytest.mark.parametrize("name", ["noext", "x.avi", "x.gif", "x.MP4.tmp"])
def test_unknown_output_extensions_are_refused_in_one_sentence(name, tiny_dir, photo, speech, tmp_path, capsys):
    code = generate("--checkpoint", tiny_dir, "--image", photo, "--audio", speech, "--out", tmp_path / name)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and ".mp4, .mov or .mkv" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "format_name"), [("x.mov", "mov"), ("x.MKV", "matroska"), ("x.mp4", "mp4")])
def test_container_follows_the_extension(name, format_name, tiny_dir, photo, speech, tmp_path):
    import av

    out = tmp_path / name
    assert (
        generate("--checkpoint", tiny_dir, "--image", photo, "--audio", speech, "--out", out, "--nfe", 2, "--quiet")
        == 0
    )
    with av.open(str(out)) as box:
        assert format_name in box.format.name.split(",")
    info = probe_video(out)
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def _console() -> list[str]:
    script = Path(sys.executable).parent / "floatalk"
    return [str(script)] if script.exists() else [sys.executable, "-m", "floatalk.cli.main"]


@pytest.mark.slow
@pytest.mark.parametrize("when", ["imports", "loading", "generating"])
def test_ctrl_c_exits_130_with_one_line_and_writes_nothing(when, tiny_dir, photo, tmp_path):
    """SIGINT while Python imports torch, while the model loads and while frames are encoded."""
    import soundfile as sf

    long_speech = tmp_path / "long.wav"
    t = np.arange(16000 * 20) / 16000
    sf.write(long_speech, (0.3 * np.sin(2 * np.pi * 200 * t) * (0.5 + 0.5 * np.sin(6 * t))).astype(np.float32), 16000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cmd = [*_console(), "generate", "--checkpoint", str(tiny_dir), "--image", str(photo), "--audio", str(long_speech)]
    cmd += ["--out", str(out_dir / "x.mp4"), "--nfe", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if when == "imports":
        time.sleep(0.4)
    elif when == "loading":
        time.sleep(2.0)
    else:  # wait for the temporary video file: frames are being encoded
        deadline = time.time() + 120
        while not any(out_dir.iterdir()) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert any(out_dir.iterdir()), "no temporary file appeared"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip() and "bundled" not in line]
    lines = [line for line in lines if "\r" not in line and "%|" not in line]  # the progress bar
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(lines) == 1 and "interrupted" in lines[0], err
    assert list(out_dir.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_in_synth_data_with_workers_is_one_line(tmp_path):
    cmd = [*_console(), "synth-data", "--out", str(tmp_path / "w"), "--clips", "40", "--seconds", "2"]
    proc = subprocess.Popen([*cmd, "--size", "64", "--workers", "2"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list((tmp_path / "w").glob("*.json")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line and "\r" not in line]
    assert proc.returncode == 130 and "Traceback" not in err and len(lines) == 1, err


def test_eval_lipsync_refuses_a_photo_and_a_too_short_video(photo, tmp_path, capsys):
    from floatalk.io.video import VideoWriter

    assert main(["eval-lipsync", str(photo)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "still image" in err
    short = tmp_path / "short.mp4"
    with VideoWriter(short, fps=25, audio=np.zeros(16000 // 5, np.float32), sample_rate=16000) as w:
        w.write(np.full((5, 64, 64, 3), 120, np.uint8))
    assert main(["eval-lipsync", str(short)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "at least 10 frames" in err


def test_building_the_parser_imports_no_heavy_module():
    code = (
        "import sys; from floatalk.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'cv2', 'av', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------- Python API


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    from floatalk import FloatPipeline

    return FloatPipeline.from_pretrained(tiny_dir)


def test_bundled_by_name(tiny_bundle):
    from floatalk import FloatPipeline

    pipe = FloatPipeline.from_pretrained("bundled")
    assert pipe.is_bundled and pipe.image_size == 64
    assert not FloatPipeline(pipe.model).is_bundled


def test_generator_options_and_overrides_are_one_signature(pipe, photo):
    from floatalk import GenerateOptions

    audio = (0.2 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 180)).astype(np.float32)
    base = pipe(photo, audio, nfe=3)
    same = pipe(photo, audio, GenerateOptions(nfe=3, seed=15))
    explicit = pipe(photo, audio, GenerateOptions(nfe=3), generator=torch.Generator().manual_seed(15))
    other = pipe(photo, audio, GenerateOptions(nfe=3), generator=torch.Generator().manual_seed(16))
    np.testing.assert_array_equal(base.frames, same.frames)
    np.testing.assert_array_equal(base.frames, explicit.frames)
    assert not np.array_equal(base.motion.numpy(), other.motion.numpy())
    streamed = np.concatenate([f for _, f in pipe.stream(photo, audio, GenerateOptions(seed=15), nfe=3)])
    np.testing.assert_array_equal(base.frames, streamed)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"nfe": 1}, "nfe must be"),
        ({"emotion": "bored"}, "emotion must be"),
        ({"a_cfg_scale": float("nan")}, "a_cfg_scale must be a finite"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"steps": 3}, "Unknown generation option 'steps'"),
        ({"generator": "seed"}, "generator must be a torch.Generator"),
    ],
)
def test_the_library_checks_its_inputs(pipe, photo, kwargs, needle):
    from floatalk.errors import UserInputError

    with pytest.raises(UserInputError, match=needle):
        pipe(photo, np.zeros(16000, np.float32), **kwargs)


def test_render_video_is_the_library_path(pipe, photo, speech, tmp_path):
    from floatalk import GenerateOptions, render_video

    out = tmp_path / "v.mkv"
    report = render_video(pipe, photo, speech, out, GenerateOptions(nfe=2), paste_back=True, fps=10)
    info = probe_video(out)
    assert (info["width"], info["height"]) == (512, 512) == (report.width, report.height)
    assert info["n_frames"] == report.frames and report.fps == 10
    assert report.face_box is not None and abs(sum(report.probabilities.values()) - 1) < 1e-4
    assert os.listdir(tmp_path) == ["v.mkv"]


def test_bundle_of_a_wrong_folder_is_one_sentence(tmp_path, capsys):
    from floatalk.training.bundle import main as bundle

    assert bundle([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err
    assert not (tmp_path / "out").exists()

"""Bad inputs at the command line: one sentence, exit 2, found before anything heavy (torch is
never imported); which faces get the bundled model's note; which lip-sync meter a video gets.

Every command runs in a real child process, with `-X importtime` to see what it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

# whole commands or servers in child processes: the full suite (CI) runs them, the fast tier does not
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
NOTE = "note: the bundled demo model only knows floatalk's synthetic drawn faces"


def floatalk(*args: str, importtime: bool = False) -> subprocess.CompletedProcess:
    flags = ["-X", "importtime"] if importtime else []
    cmd = [sys.executable, *flags, "-m", "floatalk.cli.main", *args]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)


def user_lines(stderr: str) -> list[str]:
    """stderr without -X importtime's lines."""
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example (a marked synthetic portrait and speech), a real photo, short audio, a synth-data clip."""
    from PIL import Image

    from floatalk.apps.examples import write_example

    root = tmp_path_factory.mktemp("media")
    example = write_example(root / "example", seconds=1.0)
    real = root / "astronaut.png"
    parity = REPO / "tests" / "data" / "parity" / "inputs_a" / "image.png"
    Image.open(parity).convert("RGB").save(real)
    short = root / "short.wav"
    soundfile.write(short, np.zeros(200, np.int16), 16000)
    world = root / "world"
    done = floatalk("synth-data", "--out", str(world), "--clips", "1", "--seconds", "2", "--size", "128", "--quiet")
    assert done.returncode == 0, done.stderr
    strip = root / "strip.png"
    Image.fromarray(np.zeros((16, 1_000_000, 3), np.uint8)).save(strip, optimize=True)
    return {
        "image": example.image,
        "audio": example.audio,
        "real": real,
        "short": short,
        "clip": world / "clip_00000.mp4",
        "world": world,
        "strip": strip,
        "root": root,
    }


def _cases(m: dict[str, Path]) -> dict[str, tuple[list[str], str]]:
    out, nope = m["root"] / "out", "/nonexistent/x"
    image, audio = str(m["image"]), str(m["audio"])
    return {
        "generate, no photo": (["generate", "--image", nope + ".png", "--audio", audio, "--out", f"{out}.mp4"], nope),
        "generate, no speech": (["generate", "--image", image, "--audio", nope + ".wav", "--out", f"{out}.mp4"], nope),
        "generate, 200 samples": (
            ["generate", "--image", image, "--audio", str(m["short"]), "--out", f"{out}.mp4"],
            "lasts 12.5 ms (200 samples at 16000 Hz); speech must last at least 40 ms (one video frame).",
        ),
        "generate, a 16 x 1,000,000 strip": (
            ["generate", "--image", str(m["strip"]), "--audio", audio, "--out", f"{out}.mp4", "--no-crop"],
            "its long side 62500 times its short side",
        ),
        "generate, no output folder": (["generate", "--image", image, "--audio", audio, "--out", nope + ".mp4"], nope),
        "reenact, no photo": (
            ["reenact", "--image", nope + ".png", "--video", str(m["clip"]), "--out", f"{out}.mp4"],
            nope,
        ),
        "reenact, no video": (["reenact", "--image", image, "--video", nope + ".mp4", "--out", f"{out}.mp4"], nope),
        "batch, no jobs file": (["batch", nope + ".jsonl", "--out", str(out)], nope),
        "evaluate, no video": (["evaluate", nope + ".mp4", "--out", f"{out}.json"], nope),
        "evaluate, no report folder": (["evaluate", str(m["clip"]), "--out", nope + ".json"], nope),
        "evaluate, fid without weights": (
            ["evaluate", str(m["clip"]), "--reference", str(m["clip"]), "--metrics", "fid", "--out", f"{out}.json"],
            "needs pytorch-fid's InceptionV3 weights",
        ),
        "eval-lipsync, no video": (["eval-lipsync", nope + ".mp4"], nope),
        "preprocess, no videos": (["preprocess", "--videos", nope, "--out", str(out)], nope),
        "train, no data": (["train", "motion-ae", "--data", nope, "--out", str(out), "--config", "tiny"], nope),
        "train, videos instead of data": (
            ["train", "motion-ae", "--data", str(m["world"]), "--out", str(out), "--config", "tiny"],
            "is not the manifest of a preprocessed data folder",
        ),
        "demo, no output folder": (["demo", "--out", nope + ".mp4"], nope),
        "synth-data, output is a file": (["synth-data", "--out", image, "--clips", "1"], "is a file, not a folder"),
    }


CASES = list(_cases({k: Path(k) for k in ("image", "audio", "real", "short", "clip", "world", "strip", "root")}))


@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_is_one_sentence_before_torch_is_imported(media, case: str) -> None:
    args, words = _cases(media)[case]
    done = floatalk(*args, importtime=True)
    lines = user_lines(done.stderr)
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"floatalk {args[0]}: error: ") and words in lines[0], lines
    assert "torch" not in imported(done.stderr), f"{case}: torch was imported before the mistake was found"
    assert not (media["root"] / "out").exists()


def test_face_help_says_it_counts_from_one() -> None:
    done = floatalk("generate", "--help")
    text = " ".join(done.stdout.split())
    assert "--face N which face to animate when the photo holds several, numbered 1, 2, ... from the left" in text


# -- the bundled model's note -------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
def test_generate_notes_a_real_photo_even_when_quiet(media, tmp_path: Path, quiet: list[str]) -> None:
    out = tmp_path / "real.mp4"
    done = floatalk(
        "generate", "--image", str(media["real"]), "--audio", str(media["audio"]), "--out", str(out), *quiet
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(NOTE) == 1


def test_generate_on_the_worlds_portrait_has_no_note_and_marks_its_video(media, tmp_path: Path) -> None:
    from floatalk.io.provenance import is_synthetic

    out = tmp_path / "drawn.mp4"
    args = ["--image", str(media["image"]), "--audio", str(media["audio"]), "--out", str(out), "--no-crop"]
    done = floatalk("generate", *args)
    assert done.returncode == 0, done.stderr
    assert NOTE not in done.stderr
    assert is_synthetic(out) and is_synthetic(media["image"]) and not is_synthetic(media["real"])


def test_reenact_notes_a_real_photo(media, tmp_path: Path) -> None:
    out = tmp_path / "reenact.mp4"
    done = floatalk(
        "reenact", "--image", str(media["real"]), "--video", str(media["clip"]), "--out", str(out), "--quiet"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(NOTE) == 1


def test_batch_notes_a_real_photo_once(media, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    lines = [{"image": str(media["real"]), "audio": str(media["audio"]), "name": f"v{i}.mp4"} for i in range(2)]
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = floatalk("batch", str(jobs), "--out", str(tmp_path / "renders"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(NOTE) == 1
    drawn = tmp_path / "drawn.jsonl"
    drawn.write_text(json.dumps({"image": str(media["image"]), "audio": str(media["audio"]), "crop": False}) + "\n")
    done = floatalk("batch", str(drawn), "--out", str(tmp_path / "drawn"), "--quiet")
    assert done.returncode == 0 and NOTE not in done.stderr, done.stderr


# -- which lip-sync meter -----------------------------------------------------------------------


def _meter(*args: str) -> dict:
    done = floatalk("eval-lipsync", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_eval_lipsync_reads_a_real_face_with_the_landmarks(media, tmp_path: Path) -> None:
    from floatalk.io.image import load_image
    from floatalk.io.video import VideoWriter
    from floatalk.pipeline import prepare_image

    face = prepare_image(load_image(media["real"]), 256).pixels  # a real face, as a generated crop would show it
    wave, rate = soundfile.read(media["audio"], dtype="float32")
    with VideoWriter(tmp_path / "real.mp4", fps=25, audio=wave, sample_rate=rate) as writer:
        writer.write(np.repeat(face[None], 25, axis=0))
    result = _meter(str(tmp_path / "real.mp4"))
    assert result["meter"] == "landmarks" and "face_found_fraction" in result
    assert _meter(str(tmp_path / "real.mp4"), "--meter", "synthetic")["meter"] == "synthetic"  # asked for


def test_eval_lipsync_reads_the_worlds_clips_with_its_own_meter(media, tmp_path: Path) -> None:
    result = _meter(str(media["clip"]))
    assert result["meter"] == "synthetic" and "face_found_fraction" not in result
    assert result["correlation"] > 0.8
    # the same clip re-encoded by another tool carries no mark: the landmarks, which read any face
    import av

    copy = tmp_path / "copy.mp4"
    with av.open(str(media["clip"])) as source, av.open(str(copy), "w") as target:
        streams = {s.index: target.add_stream_from_template(s) for s in source.streams if s.type in ("video", "audio")}
        for packet in source.demux(*[source.streams[i] for i in streams]):
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                target.mux(packet)
    assert _meter(str(copy))["meter"] == "landmarks"

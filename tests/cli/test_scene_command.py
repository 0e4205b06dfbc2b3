"""`floatalk scene` end to end on a tiny model: both ways of giving voices, a speaker's own options,
every mistake in one line with exit 2."""

from __future__ import annotations

import json

import pytest

from floatalk.cli.main import main
from floatalk.io.video import probe_video


def run_cli(*args) -> int:
    return main(["scene", *map(str, args)])


def test_one_recording_per_speaker_with_a_speakers_own_option(tiny_dir, scene_files, tmp_path, capsys):
    out = tmp_path / "talk.mp4"
    f = scene_files
    code = run_cli(
        "--checkpoint", tiny_dir, "--image", f / "photo.png", "--speaker", f"1={f / 'ann.wav'}",
        "--speaker", f"2={f / 'bob.wav'}", "--speaker-option", "2:emotion=happy", "--nfe", "2",
        "--detector", "haar", "--out", out,
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    info = probe_video(out)
    assert (info["width"], info["height"]) == (212, 136) and info["n_frames"] == 30
    assert "face 1 (60x60 at 37, 40): speaks 0.5 s (ann.wav), emotion auto" in err
    assert "face 2 (57x57 at 118, 42): speaks 0.6 s (bob.wav), emotion happy" in err


def test_a_mixed_recording_with_turns_and_idle_others(tiny_dir, scene_files, tmp_path, capsys):
    out = tmp_path / "mix.mp4"
    f = scene_files
    turns = tmp_path / "turns.yaml"
    turns.write_text("- {start: 0.0, end: 1.0, face: 2}\n")
    code = run_cli(
        "--checkpoint", tiny_dir, "--image", f / "photo.png", "--audio", f / "mix.wav", "--turns", turns,
        "--others", "idle", "--speaker-option", "2:mouth_scale=1.5", "--nfe", "2", "--detector", "haar",
        "--fps", "10", "--out", out, "--quiet",
    )  # fmt: skip
    assert code == 0 and capsys.readouterr().err == ""
    assert probe_video(out)["n_frames"] == 12


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--speaker", "1:ann.wav"], "--speaker must read FACE=AUDIO"),
        (["--speaker", "3=ann.wav"], "The photo has 2 faces (numbered from the left); there is no face 3."),
        (["--speaker", "1=ann.wav", "--speaker", "1=bob.wav"], "names face 1 twice"),
        (["--speaker", "1=quiet.wav"], "The recording of face 1 (quiet.wav) has no sound."),
        (["--speaker", "1=ann.wav", "--speaker-option", "2:emotion=happy"], "names a face that no --speaker gives"),
        (["--speaker", "1=ann.wav", "--speaker-option", "1:emotion=bored"], "emotion for face 1 must be one of"),
        (["--speaker", "0,0,0,10=ann.wav"], "needs a positive width and height"),
        (["--speaker", "900,10,40,40=ann.wav"], "lies outside the 212x136 photo"),
        (["--speaker", "1=ann.wav", "--audio", "mix.wav"], "not both"),
        ([], "Give each speaker's recording"),
        (["--audio", "mix.wav", "--turns", "late.json"], "passes the end of the 1.20 s recording"),
        (["--audio", "mix.wav", "--turns", "overlap.json"], "Turns overlap: face 1 speaks until 0.8 s"),
        (["--audio", "mix.wav", "--turns", "missing.json"], "missing.json"),
        (["--speaker", "1=ann.wav", "--max-side", "8"], "--max-side must be a whole number of pixels, at least 16"),
        (["--speaker", "1=ann.wav", "--nfe", "1"], "--nfe must be a whole number from 2 to 200"),
        (["--speaker", "1=ann.wav", "--fps", "0"], "--fps must be a whole number from 1 to 120"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(tiny_dir, scene_files, tmp_path, capsys, args, needle):
    (tmp_path / "late.json").write_text(json.dumps([{"start": 0, "end": 2.5, "face": 1}]))
    overlap = [{"start": 0, "end": 0.8, "face": 1}, {"start": 0.5, "end": 1, "face": 2}]
    (tmp_path / "overlap.json").write_text(json.dumps(overlap))
    given = []
    for a in args:
        if a.endswith((".wav",)) and "=" in a:
            face, _, name = a.partition("=")
            a = f"{face}={scene_files / name}"
        elif a.endswith(".wav"):
            a = str(scene_files / a)
        elif a.endswith(".json"):
            a = str(tmp_path / a)
        given.append(a)
    out = tmp_path / "o.mp4"
    code = run_cli(
        "--checkpoint", tiny_dir, "--image", scene_files / "photo.png", "--detector", "haar", *given, "--out", out
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_help_explains_faces_turns_and_speaker_options(capsys):
    with pytest.raises(SystemExit):
        main(["scene", "--help"])
    text = capsys.readouterr().out
    for needle in ("--speaker FACE=AUDIO", "--audio MIX --turns FILE", "FACE:NAME=VALUE", '"face": 1', "--others"):
        assert needle in text

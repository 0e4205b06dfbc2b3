"""Scene jobs in `floatalk batch`: speakers with their own recordings or a mixed recording with
turns, read and checked per line, rendered by the batch runner on a tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from floatalk.apps.batch import read_jobs, run_batch, run_local
from floatalk.apps.scene_jobs import parse_scene
from floatalk.errors import UserInputError
from floatalk.scene import FaceBox


@pytest.fixture()
def folder(scene_files: Path, tmp_path: Path) -> Path:
    for name in ("photo.png", "ann.wav", "bob.wav", "mix.wav", "turns.json"):
        shutil.copy(scene_files / name, tmp_path / name)
    return tmp_path


def _jobs(folder: Path, lines: list[dict | str]) -> Path:
    path = folder / "jobs.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


SEPARATE = {
    "image": "photo.png",
    "name": "two",
    "speakers": [{"face": 1, "audio": "ann.wav"}, {"face": 2, "audio": "bob.wav", "emotion": "happy"}],
    "nfe": 2,
    "detector": "haar",
}
MIXED = {
    "image": "photo.png",
    "audio": "mix.wav",
    "turns": "turns.json",
    "others": "idle",
    "nfe": 2,
    "detector": "haar",
}


def test_scene_lines_are_read_with_their_speakers_and_turns(folder):
    boxed = {"image": "photo.png", "speakers": [{"face": [10, 20, 40, 40], "audio": "ann.wav", "mouth-scale": 0.5}]}
    inline = {**MIXED, "turns": [{"start": 0, "end": 1, "face": 2}], "speakers": [{"face": 2, "seed": 3}]}
    two, mixed, box, turns_inline = read_jobs(_jobs(folder, [SEPARATE, MIXED, boxed, inline]))
    assert two.error is None and two.audio is None and two.scene.others == "still"
    assert [(s.face, s.audio, s.options) for s in two.scene.speakers] == [
        (1, folder / "ann.wav", {}),
        (2, folder / "bob.wav", {"emotion": "happy"}),
    ]
    assert two.job.generate.nfe == 2 and two.job.generate.detector == "haar"
    assert mixed.error is None and mixed.audio == folder / "mix.wav" and mixed.scene.mixed
    assert mixed.scene.turns.spans(1) == [(0.0, 0.5)] and mixed.scene.others == "idle"
    assert box.scene.speakers[0].face == FaceBox(10, 20, 40, 40) and box.scene.speakers[0].options == {
        "mouth_scale": 0.5
    }
    assert turns_inline.scene.turns.faces() == [2] and turns_inline.scene.speakers[0].options == {"seed": 3}


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ({"image": "photo.png", "speakers": [{"face": 1}]}, "Each speaker needs its own 'audio'"),
        ({"image": "photo.png", "speakers": [{"face": 1, "audio": "gone.wav"}]}, "gone.wav"),
        (
            {"image": "photo.png", "speakers": [{"face": 0, "audio": "ann.wav"}]},
            "Speaker 1's face 0 is not a face number",
        ),
        ({"image": "photo.png", "speakers": [{"face": 1, "audio": "ann.wav", "nfe": 1}]}, "nfe for face 1 must be"),
        (
            {"image": "photo.png", "speakers": [{"face": 1, "audio": "ann.wav", "colour": 1}]},
            "'colour' is not an option",
        ),
        ({"image": "photo.png", "speakers": {"face": 1}}, "'speakers' must be a list"),
        ({"image": "photo.png", "audio": "mix.wav", "speakers": [{"face": 1}]}, "needs 'turns'"),
        ({**MIXED, "speakers": [{"face": 1, "audio": "ann.wav"}]}, "not both"),
        ({**MIXED, "turns": [{"start": 0, "end": 1, "face": 1}, {"start": 0.5, "end": 1, "face": 2}]}, "Turns overlap"),
        ({**MIXED, "others": "gone"}, "'others' must be 'still' or 'idle'"),
    ],
)
def test_a_bad_scene_line_is_a_failed_entry_with_its_reason(folder, line, words):
    (entry,) = read_jobs(_jobs(folder, [line]))
    assert entry.error is not None and words in entry.error and "\n" not in entry.error


def test_paths_are_refused_where_files_may_not_be_named():
    with pytest.raises(UserInputError, match="file paths are not accepted here"):
        parse_scene({"speakers": [{"face": 1, "audio": "/etc/passwd"}]}, mixed_audio=False)


@pytest.mark.slow
def test_a_batch_renders_scene_lines_and_reports_each(folder, tiny_dir):
    late = {**MIXED, "name": "late", "turns": [{"start": 0, "end": 5, "face": 1}]}
    jobs = _jobs(folder, [SEPARATE, MIXED, late])
    result = run_batch(jobs, folder / "out", run_local(str(tiny_dir)))
    statuses = {row.name: (row.status, row.reason) for row in result.outcomes}
    assert statuses["two.mp4"] == ("done", None) and statuses["photo-2.mp4"] == ("done", None)
    assert statuses["late.mp4"][0] == "failed" and "passes the end of the 1.20 s recording" in statuses["late.mp4"][1]
    videos = sorted(p.name for p in (folder / "out").iterdir() if p.suffix == ".mp4")
    assert videos == ["photo-2.mp4", "two.mp4"]

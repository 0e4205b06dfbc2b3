"""The page's Scene tab without a browser: the photo's faces framed and numbered as `face` counts
them, the voice rows and the turns table become the API's scene options with the recordings by
part, the tab queues the scene the API would (same checks, same sentences in the page's words),
and its handler follows the job to its end."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from floatalk.apps.queue import JobQueue
from floatalk.apps.ui.actions import submit_scene
from floatalk.apps.ui.scene_convert import PAGE_VOICES, face_value, scene_from_controls, turns_from_rows
from floatalk.apps.ui.scene_preview import faces_preview
from floatalk.apps.uploads import Limits
from floatalk.errors import UserInputError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before any test imports gradio

NO_VOICE = (None, "", "auto")


def test_voice_rows_become_speakers_with_their_parts() -> None:
    rows = [("a.wav", "2", "Happy"), NO_VOICE, ("b.wav", 1.0, "auto"), (None, "3", "sad")]
    options, files = scene_from_controls(rows, others="idle", detector="haar", seed=7.0)
    assert options == {
        "others": "idle",
        "detector": "haar",
        "speakers": [{"face": 2, "audio": "voice1", "emotion": "happy"}, {"face": 1, "audio": "voice3"}],
        "seed": 7,
    }  # a row without a recording says nothing when every speaker brings one
    assert files == {"voice1": "a.wav", "voice3": "b.wav"}  # each row's part is its number: errors name the row


def test_a_mixed_recording_takes_the_turns_table_and_the_rows_emotions() -> None:
    turns = [["0", "1.5", "1"], ["", "", ""], [1.5, 3, "10,20,40,40"]]
    options, files = scene_from_controls([(None, "2", "sad"), NO_VOICE], mixed="mix.wav", turns=turns)
    assert files == {} and options["speakers"] == [{"face": 2, "emotion": "sad"}]
    assert options["turns"] == [
        {"start": 0.0, "end": 1.5, "face": 1},
        {"start": 1.5, "end": 3.0, "face": [10.0, 20.0, 40.0, 40.0]},
    ]
    assert turns_from_rows([["", "", ""]]) is None and turns_from_rows(None) is None


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: scene_from_controls([NO_VOICE]), "Add a recording to a voice row"),
        (lambda: scene_from_controls([("a.wav", "", "auto")]), "Voice 1 needs a face number"),
        (lambda: turns_from_rows([["0", "", "1"]]), "Turns row 1 needs its end"),
        (lambda: turns_from_rows([["", "", ""], ["x", "1", "1"]]), "Turns row 2: start must be a number"),
        (lambda: turns_from_rows("0-1"), "The turns table must be a table of rows"),
    ],
)
def test_a_bad_row_is_one_sentence_naming_it(call, words) -> None:
    with pytest.raises(UserInputError) as err:
        call()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_face_fields_read_as_the_api_writes_faces() -> None:
    assert face_value("3", "Voice 1") == 3 and face_value(2.0, "Voice 1") == 2
    assert face_value(" 1,2,30,40 ", "Voice 1") == [1.0, 2.0, 30.0, 40.0]
    assert face_value("left", "Voice 1") == "left"  # parse_face refuses it in the scene's words


def test_the_preview_frames_and_numbers_the_faces_from_the_left(scene_files: Path, tmp_path: Path) -> None:
    framed, line = faces_preview(str(scene_files / "photo.png"), "haar")
    photo = np.asarray(Image.open(scene_files / "photo.png").convert("RGB"))
    assert framed.shape == photo.shape and not np.array_equal(framed, photo)
    assert line.startswith("Found 2 faces, numbered from the left")
    assert faces_preview(None) == (None, "")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(blank)
    assert faces_preview(str(blank), "haar")[1].startswith("No face was found")
    not_photo, reason = faces_preview(str(scene_files / "ann.wav"), "haar")
    assert not_photo is None and reason and "\n" not in reason


def test_the_tab_queues_the_scene_the_api_would(scene_files: Path, tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "data")
    rows = [(str(scene_files / "ann.wav"), "1", "auto"), (str(scene_files / "bob.wav"), "2", "happy")]
    options, files = scene_from_controls(rows, detector="haar")
    record = submit_scene(queue, str(scene_files / "photo.png"), None, files, options)
    assert (scene_files / "ann.wav").is_file()  # Gradio's upload stays where it was
    assert record.options["speakers"][1] == {"face": 2, "audio": "voice2", "emotion": "happy"}
    folder = queue.jobs_dir / record.id
    assert sorted(p.name for p in folder.iterdir()) == ["image.png", "speaker1.wav", "speaker2.wav"]
    assert [s.face for s in queue.job_scene(record.id).speakers] == [1, 2]
    mixed, _ = scene_from_controls([NO_VOICE], mixed="mix", turns=[["0", "0.5", "1"], ["0.6", "1.2", "2"]])
    mixed["detector"] = "haar"
    record = submit_scene(queue, str(scene_files / "photo.png"), str(scene_files / "mix.wav"), {}, mixed)
    assert queue.job_scene(record.id).mixed and queue.list()[1] == 2


@pytest.mark.parametrize(
    ("rows", "mixed", "words"),
    [
        ([("ann", "3", "auto")], None, "The photo has 2 faces (numbered from the left); there is no face 3."),
        ([("ann", "1", "auto"), ("bob", "1", "auto")], None, "Two speakers were given for face 1"),
        ([("quiet", "1", "auto")], None, "has no sound"),
        ([("ann", "1", "auto")], "mix", "not both"),
        ([("ann", "1", "auto")], "long", "longer than 1 s"),
    ],
)
def test_the_tab_refuses_what_the_api_would_refuse(scene_files: Path, tmp_path: Path, rows, mixed, words) -> None:
    queue = JobQueue(tmp_path / "data")
    voices = [(str(scene_files / f"{a}.wav"), face, emotion) for a, face, emotion in rows]
    limits = Limits(max_audio_seconds=1) if mixed == "long" else Limits()  # the limits of the page's server
    mixed = None if mixed == "long" else mixed
    turns = None if mixed is None else [["0", "1", "1"]]
    options, files = scene_from_controls(voices, mixed=mixed, turns=turns, detector="haar")
    audio = None if mixed is None else str(scene_files / f"{mixed}.wav")
    with pytest.raises(UserInputError) as err:
        submit_scene(queue, str(scene_files / "photo.png"), audio, files, options, limits)
    assert words in str(err.value) and "\n" not in str(err.value) and "upload-" not in str(err.value)
    assert queue.list()[1] == 0
    with pytest.raises(UserInputError, match="Add a group photo first"):
        submit_scene(queue, None, None, files, options)


@pytest.mark.slow  # Gradio's import and the page's build: about 4 s
def test_the_tab_is_built_and_its_handler_follows_the_job(scene_files: Path, tmp_path: Path) -> None:
    import gradio as gr

    from floatalk.apps.ui import build_ui
    from floatalk.apps.ui.scene_tab import scene_handler

    queue = JobQueue(tmp_path / "data")
    page = build_ui(queue, example_dir=tmp_path / "example", example_seconds=1.0)
    ids = {getattr(block, "elem_id", None) for block in page.blocks.values()}
    wanted = {"scene_photo", "scene_faces", "scene_mixed", "scene_turns", "scene_generate", "scene_video"}
    assert wanted | {f"scene_voice{PAGE_VOICES}", "photo", "generate"} <= ids
    handler = scene_handler(gr, queue, Limits(), tmp_path / "videos")
    rows = [str(scene_files / "ann.wav"), "1", "auto", str(scene_files / "bob.wav"), "2", "auto"]
    rows += [None, "", "auto"] * (PAGE_VOICES - 2)
    steps = handler(str(scene_files / "photo.png"), "haar", "still", None, None, None, *rows)
    job_id, line, video = next(steps)
    assert line == f"Job {job_id}: waiting in the queue." and video is None
    queue.cancel(job_id)  # no worker runs here: the job ends cancelled, without a video
    assert list(steps)[-1] == (job_id, f"Job {job_id}: cancelled.", None)
    with pytest.raises(gr.Error, match="Add a recording to a voice row"):
        next(handler(str(scene_files / "photo.png"), "haar", "still", None, None, None, *[None, "", "auto"] * 6))

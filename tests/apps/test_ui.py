"""The web page's own logic, without a browser: the timeline table becomes the segments object,
the controls become the API's options, a bad row or value is one sentence naming it, the page
queues copies of its files in the shared queue and reports a job's end (video or error)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from floatalk.apps.examples import EXAMPLE_OPTIONS
from floatalk.apps.jobs import parse_options
from floatalk.apps.queue import JobQueue, Workers
from floatalk.apps.ui import (
    TIMELINE_COLUMNS,
    cancel_job,
    describe,
    follow_job,
    options_from_controls,
    page_words,
    submit_files,
    timeline_from_rows,
)
from floatalk.cli.main import main
from floatalk.errors import UserInputError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before any test imports gradio

BLANK = [""] * len(TIMELINE_COLUMNS)


def test_table_rows_become_segments_and_empty_cells_keep_the_controls() -> None:
    rows = [
        ["0", "1.5", "Happy", "", "", "", "", ""],
        BLANK,  # an empty row anywhere is skipped
        [1.5, 3, "sad", 2, 0.5, None, math.nan, "no"],
    ]
    assert timeline_from_rows(rows) == {
        "segments": [
            {"start": 0.0, "end": 1.5, "emotion": "happy"},
            {"start": 1.5, "end": 3.0, "emotion": "sad", "e_cfg_scale": 2.0, "head_motion": 0.5, "blink": False},
        ]
    }
    assert timeline_from_rows([BLANK, BLANK]) is None
    assert timeline_from_rows(None) is None
    assert timeline_from_rows({"headers": list(TIMELINE_COLUMNS), "data": [["0", "1", "", "", "", "", "", "yes"]]}) == {
        "segments": [{"start": 0.0, "end": 1.0, "blink": True}]
    }


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([["", "1", "happy", "", "", "", "", ""]], "row 1 needs a start"),
        ([BLANK, ["0", "x", "", "", "", "", "", ""]], "row 2: end must be a number (got 'x')"),
        ([["0", "1", "grumpy", "", "", "", "", ""]], "row 1: emotion must be 'auto' or one of"),
        ([["0", "1", "", "", "", "", "", "maybe"]], "row 1: blink must be yes or no"),
        ([["0", "1", "", "", "11", "", "", ""]], "row 1.head_motion must be between 0 and 10"),
        ([["1", "0.5", "", "", "", "", "", ""]], "row 1 ends (0.5 s) before it starts"),
        ([["0", "2", "", "", "", "", "", ""], ["1", "3", "", "", "", "", "", ""]], "segments overlap"),
        ([["0", "1", "", "", "", "", "", "", "extra"]], "row 1 has 9 cells"),
    ],
)
def test_a_bad_row_is_one_sentence_naming_it(rows, words) -> None:
    with pytest.raises(UserInputError) as err:
        timeline_from_rows(rows)
    message = str(err.value)
    assert words in message and "\n" not in message and "segments[" not in message


def test_controls_become_the_apis_options() -> None:
    options = options_from_controls(
        emotion="Sad",
        head_motion=0.5,
        mouth_scale=1.2,
        expression_scale=0,
        blink=False,
        a_cfg_scale=2.5,
        e_cfg_scale=1.5,
        seed=7.0,
        crop=False,
        timeline=[["0", "1", "happy", "", "", "", "", ""]],
    )
    assert options.given == {
        "emotion": "sad",
        "head_motion": 0.5,
        "mouth_scale": 1.2,
        "expression_scale": 0,
        "blink": False,
        "a_cfg_scale": 2.5,
        "e_cfg_scale": 1.5,
        "crop": False,
        "seed": 7.0,
        "timeline": {"segments": [{"start": 0.0, "end": 1.0, "emotion": "happy"}]},
    }
    job = parse_options(options.given)  # what the API reads from the same mapping
    assert job == options and options.generate.checked
    assert job.generate.seed == 7 and job.generate.blink is False and job.generate.timeline.segments[0].end == 1.0
    assert "seed" not in options_from_controls(seed=None).given and "timeline" not in options_from_controls().given
    ramp = options_from_controls(timeline=[["0", "1", "sad", "", "", "", "", ""]], transition=0.2).given["timeline"]
    assert ramp["transition"] == 0.2 and parse_options({"timeline": ramp}).generate.timeline.transition == 0.2
    assert "transition" not in options_from_controls(timeline=[["0", "1", "", "", "", "", "", ""]]).given["timeline"]


def test_a_bad_control_value_is_one_sentence() -> None:
    with pytest.raises(UserInputError, match="^'Seed' must be a whole number") as err:
        options_from_controls(seed=1.5)
    assert "\n" not in str(err.value)
    with pytest.raises(UserInputError, match="^'Head motion' must be a number from 0 to 10"):
        options_from_controls(head_motion=12)
    with pytest.raises(UserInputError, match="'transition' must be between 0 and 10"):
        options_from_controls(timeline=[["0", "1", "", "", "", "", "", ""]], transition=11)


def test_the_page_queues_copies_and_missing_files_are_one_sentence(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data")
    record = submit_files(queue, example.image, example.audio, {"crop": False, "emotion": "happy"})
    assert example.image.is_file() and example.audio.is_file()  # Gradio's upload stays where it was
    assert queue.get(record.id).options == {"crop": False, "emotion": "happy"}
    assert sorted(p.name for p in (tmp_path / "data" / "jobs" / record.id).iterdir()) == ["audio.wav", "image.png"]
    assert describe(record) == f"Job {record.id}: waiting in the queue."
    with pytest.raises(UserInputError, match="Add a portrait photo first"):
        submit_files(queue, None, example.audio, {})
    with pytest.raises(UserInputError, match="Add a speech recording first"):
        submit_files(queue, example.image, "", {})
    with pytest.raises(UserInputError, match="uploaded audio file is gone"):
        submit_files(queue, example.image, tmp_path / "gone.wav", {})
    assert queue.list()[1] == 1


def test_the_page_refuses_what_the_api_would_refuse(tmp_path, example) -> None:
    from floatalk.apps.uploads import Limits

    queue = JobQueue(tmp_path / "data")
    with pytest.raises(UserInputError, match=r"The image is 128x128 pixels .* the limit is") as err:
        submit_files(queue, example.image, example.audio, {}, Limits(max_image_pixels=100))
    assert "\n" not in str(err.value)
    with pytest.raises(UserInputError, match="longer than 1 s"):
        submit_files(queue, example.image, example.audio, {}, Limits(max_audio_seconds=1.0))
    with pytest.raises(UserInputError, match="not an image"):
        submit_files(queue, example.audio, example.audio, {}, Limits())
    late = {"timeline": {"segments": [{"start": 5, "end": 6, "emotion": "sad"}]}}  # the example speaks 2 s
    with pytest.raises(UserInputError, match="past the end of the 2.00 s audio"):
        submit_files(queue, example.image, example.audio, late, Limits())
    assert queue.list()[1] == 0 and example.image.is_file()
    assert submit_files(queue, example.image, example.audio, {}, Limits()).state == "queued"


def test_the_page_reads_a_submitted_photo_into_pixels_once(tmp_path, example, monkeypatch) -> None:
    import floatalk.io.image as image_io
    from floatalk.apps.uploads import Limits

    reads: list[object] = []
    read = image_io._read_image_file
    monkeypatch.setattr(image_io, "_read_image_file", lambda path: reads.append(path) or read(path))
    queue = JobQueue(tmp_path / "data")
    assert submit_files(queue, example.image, example.audio, {}, Limits()).state == "queued"
    assert len(reads) == 1  # the upload check's decode; the worker reads the stored file when it runs


@pytest.mark.slow
def test_the_page_sends_a_head_motion_video_beside_its_options(tmp_path, example) -> None:
    from floatalk.apps.uploads import Limits
    from floatalk.io.video import VideoWriter

    mover = tmp_path / "mover.mp4"  # the portrait sliding right
    with VideoWriter(mover, fps=25) as w:
        frame = np.asarray(Image.open(example.image).convert("RGB"))
        for dx in range(0, 20, 2):
            w.write(np.roll(frame, dx, axis=1))
    with pytest.raises(UserInputError, match="Blinks from the video need a head-motion video"):
        options_from_controls(blink_from_video=True)
    options = options_from_controls(crop=False, blink_from_video=True, pose_video=True)
    assert options.given["blink_from_video"] is True and options.generate.blink_from_video
    queue = JobQueue(tmp_path / "data")
    with pytest.raises(UserInputError, match="^The head-motion video is not a video") as err:
        submit_files(queue, example.image, example.audio, options, Limits(), pose_video=example.image)
    assert "pose_video" not in str(err.value)
    record = submit_files(queue, example.image, example.audio, options, Limits(), pose_video=mover)
    assert mover.is_file() and record.options["pose_video"].startswith("pose_video.")
    folder = tmp_path / "data" / "jobs" / record.id
    assert sorted(p.name for p in folder.iterdir()) == ["audio.wav", "image.png", record.options["pose_video"]]
    workers = Workers(queue)
    workers.start()
    try:
        done, video = follow_job(queue, record.id, poll=120.0)
    finally:
        workers.stop()
    assert done.state == "done" and video is not None and video.stat().st_size > 0


def test_following_a_job_gives_its_video_or_its_error_sentence(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(blank)
    good = submit_files(queue, example.image, example.audio, dict(EXAMPLE_OPTIONS))
    faceless = submit_files(queue, blank, example.audio, {"crop": True, "detector": "haar"})
    workers = Workers(queue)
    workers.start()
    try:
        seen: list[float] = []
        record, video = follow_job(queue, good.id, lambda r: seen.append(r.progress), poll=120.0)
        assert record.state == "done" and video is not None and video.stat().st_size > 0
        assert seen == sorted(seen) and describe(record).startswith(f"Job {good.id}: done in ")
        with pytest.raises(UserInputError) as err:
            follow_job(queue, faceless.id, poll=120.0)
        assert "face" in str(err.value) and "\n" not in str(err.value)
        assert "--no-crop" in str(err.value) and "--" not in page_words(str(err.value))
        assert "turn off 'Crop to the face'" in page_words(str(err.value))
    finally:
        workers.stop()
    with pytest.raises(UserInputError, match="no longer in the queue"):
        follow_job(queue, "nope")


def test_a_cancelled_job_has_no_video(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data")
    record = submit_files(queue, example.image, example.audio, dict(EXAMPLE_OPTIONS))
    assert cancel_job(queue, f" {record.id} ") == f"Job {record.id}: cancelled."
    assert cancel_job(queue, "") == "There is no job to cancel yet."
    assert cancel_job(queue, "nope") == "Job nope is not in the queue."
    start = time.monotonic()
    record, video = follow_job(queue, record.id)
    assert record.state == "cancelled" and video is None and time.monotonic() - start < 60
    assert describe(record) == f"Job {record.id}: cancelled."


def test_floatalk_ui_refuses_bad_flags_in_one_sentence(capsys) -> None:
    assert main(["ui", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "floatalk ui: error: --port must be from 0 to 65535 (got 70000)."
    assert main(["ui", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["ui", "--max-upload-mb", "0"]) == 2
    assert "limits must be positive" in capsys.readouterr().err


def test_the_ui_command_imports_no_web_or_model_module_for_its_parser() -> None:
    code = (
        "import sys; from floatalk.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'gradio', 'fastapi', 'uvicorn', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_page_builds_with_its_controls_and_example(tmp_path) -> None:
    from floatalk.apps.ui import build_ui

    queue = JobQueue(tmp_path / "data")
    page = build_ui(queue, example_dir=tmp_path / "example", example_seconds=1.0)
    ids = {getattr(block, "elem_id", None) for block in page.blocks.values()}
    assert {"photo", "speech", "emotion", "crop", "timeline", "example", "generate", "cancel", "video"} <= ids
    files = [tmp_path / "example" / name for name in ("portrait.png", "speech.wav")]
    deadline = time.monotonic() + 120  # the example is written in the background while the page starts
    while not all(f.is_file() for f in files):
        assert time.monotonic() < deadline, "the example files were not written"
        time.sleep(0.1)


def test_the_page_mounts_beside_the_api_on_one_app(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from floatalk.apps.server import create_app
    from floatalk.apps.ui import mount_ui

    queue = JobQueue(tmp_path / "data")
    app = create_app(queue)
    mount_ui(app, queue, "/ui", example_dir=tmp_path / "example")
    with TestClient(app, base_url="http://127.0.0.1") as client:  # the server answers its own names only
        assert client.get("/ui/").status_code == 200
        assert client.get("/ui/config").json()["title"] == "floatalk"
        assert client.get("/v1/health").json()["status"] == "ok"

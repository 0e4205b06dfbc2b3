"""The job spec shared by the API, the web page and batch runs: options by flag name, checked in
one sentence; a cancelled job leaves nothing behind."""

from __future__ import annotations

import pytest

from floatalk.apps.examples import EXAMPLE_OPTIONS
from floatalk.apps.jobs import CancelledError, parse_options, run_job
from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions


def test_options_by_flag_name_with_dashes_or_underscores() -> None:
    job = parse_options({"emotion": "happy", "seed": 3, "a-cfg-scale": 2.5, "no-blink": True, "fps": 30.0})
    assert job.generate == GenerateOptions(emotion="happy", seed=3, a_cfg_scale=2.5, blink=False)
    assert job.fps == 30 and job.paste_back is False
    assert parse_options(None).generate == GenerateOptions()
    timeline = parse_options({"timeline": {"segments": [{"start": 0, "end": 1, "emotion": "sad"}]}}).generate.timeline
    assert timeline.segments[0].emotion == "sad"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"colour": 1}, "Unknown option 'colour'"),
        ({"seed": "x"}, "'seed' must be a whole number"),
        ({"seed": 1.5}, "'seed' must be a whole number"),
        ({"blink": "no"}, "'blink' must be true or false"),
        ({"emotion": "grumpy"}, "Option 'emotion' must be one of auto, angry"),
        ({"head_motion": -1}, "Option 'head_motion' must be a number from 0 to 10 (got -1)"),
        ({"fps": 0}, "Option 'fps' must be a whole number from 1 to 120 (got 0)"),
        ({"nfe": 10**6}, "Option 'nfe' must be a whole number from 2 to 200"),
        ({"seed": 10**20}, "Option 'seed' must be a whole number from 0 to"),
        ({"a_cfg_scale": 1e308}, "Option 'a_cfg_scale' must be a number from 0 to 20"),
        ({"blink_from_video": True}, "Option 'blink_from_video' needs a pose video"),
        ({"timeline": "/etc/passwd"}, "not a file path"),
        ({"pose_video": "../x.mp4"}, "file paths are not accepted"),
        ({"timeline": {"segments": [{"start": 0, "end": 1, "emotion": "meh"}]}}, "segments[0].emotion"),
        ({"seed": 1, "-seed": 2}, "given twice"),
    ],
)
def test_bad_options_are_one_sentence(options: dict, words: str) -> None:
    with pytest.raises(UserInputError) as err:
        parse_options(options)
    message = str(err.value)
    assert words in message and "\n" not in message


def test_paths_are_taken_from_the_jobs_folder_when_allowed(tmp_path) -> None:
    (tmp_path / "t.json").write_text('{"segments": [{"start": 0, "end": 1, "emotion": "sad"}]}')
    job = parse_options({"timeline": "t.json"}, base_dir=tmp_path, allow_paths=True)
    assert job.generate.timeline.segments[0].emotion == "sad"
    with pytest.raises(UserInputError, match="video"):
        parse_options({"pose_video": "missing.mp4"}, base_dir=tmp_path, allow_paths=True)


def test_a_cancelled_job_stops_and_leaves_nothing(bundled_pipe, tmp_path, example) -> None:
    reports: list[tuple] = []
    out = tmp_path / "x.mp4"
    with pytest.raises(CancelledError):
        run_job(
            bundled_pipe,
            example.image,
            example.audio,
            out,
            parse_options(EXAMPLE_OPTIONS),
            progress=lambda *r: reports.append(r),
            cancelled=lambda: len(reports) >= 4,
        )
    assert len(reports) == 4
    assert list(tmp_path.iterdir()) == []


def test_a_job_renders_the_example(bundled_pipe, tmp_path, example) -> None:
    stages: list[str] = []
    report = run_job(
        bundled_pipe,
        example.image,
        example.audio,
        tmp_path / "x.mp4",
        parse_options(EXAMPLE_OPTIONS),
        progress=lambda stage, done, total: stages.append(stage),
    )
    assert report.frames == 50 and (tmp_path / "x.mp4").stat().st_size > 0
    assert {"motion", "frames"} <= set(stages)


def test_client_options_never_name_files_and_blinks_need_a_pose_video_file() -> None:
    job = parse_options({"blink_from_video": True}, pose_video=True)  # the video comes as a file
    assert job.generate.blink_from_video and job.generate.pose_video is None and job.generate.checked
    job = parse_options({"no-blink-from-video": False}, pose_video=True)  # the same, spelt as the off flag
    assert job.generate.blink_from_video
    with pytest.raises(UserInputError, match="needs a pose video"):
        parse_options({"blink-from-video": True})
    with pytest.raises(UserInputError, match="must be true or false"):
        parse_options({"blink_from_video": "yes"}, pose_video=True)
    with pytest.raises(UserInputError, match="file paths are not accepted"):
        parse_options({"pose_video": "/etc/hosts"}, pose_video=True)
    with pytest.raises(UserInputError, match="not a file path"):
        parse_options({"timeline": "t.json"})

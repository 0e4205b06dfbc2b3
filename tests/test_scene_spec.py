"""floatalk.scene: faces by number or box, speakers' own options, turns files and the listening timeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from floatalk.errors import UserInputError
from floatalk.scene import (
    FaceBox,
    Speaker,
    Turns,
    listening_timeline,
    option_text,
    parse_face,
    speaker_options,
)
from floatalk.timeline import Timeline


def test_faces_are_numbers_from_one_or_boxes():
    assert parse_face("2") == 2 and parse_face(3) == 3 and parse_face(4.0) == 4
    assert parse_face("10, 20,30.5,40") == FaceBox(10, 20, 30.5, 40) == parse_face([10, 20, 30.5, 40])
    assert str(FaceBox(10, 20, 30.5, 40)) == "10,20,30.5,40"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (0, "numbered from 1"),
        ("zero", "face number (1 = leftmost) or a box"),
        ("1,2,3", "four numbers"),
        ("1,2,0,4", "positive width and height"),
        ("1,2,a,4", "of numbers"),
        (True, "face number"),
    ],
)
def test_bad_faces_are_one_sentence(value, needle):
    with pytest.raises(UserInputError) as info:
        parse_face(value)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_speaker_options_are_checked_against_their_fields():
    assert speaker_options({"emotion": "Happy", "mouth_scale": 0.5, "blink": False}, 1) == {
        "emotion": "happy",
        "mouth_scale": 0.5,
        "blink": False,
    }
    with pytest.raises(UserInputError, match="nfe for face 2 must be a whole number from 2 to 200"):
        speaker_options({"nfe": 1}, 2)
    with pytest.raises(UserInputError, match="'timeline' is not an option a speaker can set for face 1"):
        speaker_options({"timeline": "t.json"}, 1)
    assert Speaker("2", "a.wav", {"emotion": "SAD"}).checked() == Speaker(2, "a.wav", {"emotion": "sad"})


def test_option_text_reads_face_name_and_typed_value():
    assert option_text("2:emotion=happy") == (2, "emotion", "happy")
    assert option_text("1:mouth-scale=0.5") == (1, "mouth_scale", 0.5)
    assert option_text("10,20,30,40:blink=no") == (FaceBox(10, 20, 30, 40), "blink", False)
    assert option_text("3:nfe=4") == (3, "nfe", 4)
    for text, needle in [
        ("1emotion=happy", "FACE:NAME=VALUE"),
        ("1:speed=2", "'speed' is not an option"),
        ("1:nfe=lots", "must be a whole number"),
        ("1:blink=maybe", "true or false"),
    ]:
        with pytest.raises(UserInputError, match=needle):
            option_text(text)


def test_turns_files_json_and_yaml(tmp_path):
    turns = [{"start": 2.0, "end": 3.0, "face": 2}, {"start": 0.0, "end": 1.5, "face": [5, 6, 40, 40]}]
    (tmp_path / "t.json").write_text(json.dumps(turns))
    (tmp_path / "t.yaml").write_text(
        "turns:\n  - {start: 2.0, end: 3.0, face: 2}\n  - {start: 0, end: 1.5, face: [5, 6, 40, 40]}\n"
    )
    for name in ("t.json", "t.yaml"):
        loaded = Turns.load(tmp_path / name)
        assert [t.start for t in loaded.turns] == [0.0, 2.0]  # in time order
        assert loaded.faces() == [FaceBox(5, 6, 40, 40), 2] and loaded.spans(2) == [(2.0, 3.0)]
    (tmp_path / "bad.json").write_text('[{"start": 0, "end": 1, "face": 1}\n {"start": 1}]')
    with pytest.raises(UserInputError, match="Turns file .* is not valid JSON: .* at line 2"):
        Turns.load(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (
            [{"start": 0, "end": 2, "face": 1}, {"start": 1.5, "end": 3, "face": 2}],
            "Turns overlap: face 1 speaks until 2 s",
        ),
        ([{"start": 0, "end": 2, "face": 1.5}], "turn 1's face 1.5 must be a face number"),
        ([{"start": 2, "end": 1, "face": 1}], "turn 1 ends (1 s) before it starts (2 s)"),
        ([{"start": 0, "end": 1}], "turn 1 needs 'face'"),
        ([{"start": 0, "end": 1, "face": 1, "who": "ann"}], "unknown field 'who'"),
        ([{"start": -1, "end": 1, "face": 1}], "start must be a number of seconds, at least 0"),
        ([], "non-empty list"),
        ({"speakers": []}, "unknown field 'speakers'"),
    ],
)
def test_bad_turns_are_one_sentence(data, needle):
    with pytest.raises(UserInputError) as info:
        Turns.from_data(data)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_turns_file_that_names_face_0_counts_from_0():
    turns = Turns.from_data([{"start": 0, "end": 1, "face": 0}, {"start": 1, "end": 2, "face": 2}])
    assert turns.faces() == [1, 3]  # the leftmost and the third, in --face's counting
    assert Turns.from_data([{"start": 0, "end": 1, "face": 2}]).faces() == [2]


def test_turns_past_the_recording_end_are_refused():
    turns = Turns.from_data([{"start": 0, "end": 2, "face": 1}, {"start": 2, "end": 5, "face": 2}])
    turns.check_duration(4.99)  # within a frame of the end
    with pytest.raises(UserInputError, match="turn of face 2 from 2 s to 5 s passes the end of the 4.00 s recording"):
        turns.check_duration(4.0)


def _mouth(timeline: Timeline | None, seconds: float) -> np.ndarray:
    T = int(seconds * 25)
    if timeline is None:
        return np.ones(T)
    defaults = {
        "emotion": "auto",
        "e_cfg_scale": 1,
        "head_motion": 1,
        "mouth_scale": 1,
        "expression_scale": 1,
        "blink": 1,
    }
    return timeline.frames(T, 25, defaults, np.full(7, 1 / 7)).mouth_scale


def test_listening_closes_the_mouth_between_turns_and_eases_at_their_edges():
    mouth = _mouth(listening_timeline([(1.0, 2.0), (3.0, 4.0)], 6.0), 6.0)
    t = (np.arange(len(mouth)) + 0.5) / 25
    speaking = ((t >= 1.0) & (t < 2.0)) | ((t >= 3.0) & (t < 4.0))
    assert np.all(mouth[speaking] == 1.0)  # a turn has its whole mouth
    quiet = (t < 0.8) | ((t > 2.2) & (t < 2.8)) | (t > 4.2)  # the mouth opens over the 0.2 s before a turn
    assert np.all(mouth[quiet] == 0.0)
    edge = (t > 2.0) & (t < 2.16)  # after a turn the mouth closes over the 0.2 s ease
    assert np.all((mouth[edge] > 0) & (mouth[edge] < 1)) and np.all(np.diff(mouth[edge]) < 0)
    assert listening_timeline([(0.0, 6.0)], 6.0) is None  # speaks throughout: nothing to change
    assert np.all(_mouth(listening_timeline([], 6.0), 6.0) == 0.0)  # never speaks: closed throughout


def test_listening_is_merged_with_the_users_timeline():
    base = Timeline.from_dict({"transition": 0.4, "segments": [{"start": 0.0, "end": 3.0, "emotion": "happy"}]})
    merged = listening_timeline([(0.0, 1.5)], 4.0, base)
    assert merged.transition == 0.4
    assert all(s.emotion == "happy" for s in merged.segments if s.end <= 3.0)
    # 0 .. 1.7 happy and speaking, 1.7 .. 3 happy and listening, 3 .. 4 listening
    assert [s.mouth_scale for s in merged.segments] == [None, 0.0, 0.0]
    assert merged.segments[1].start == pytest.approx(1.7) and merged.segments[1].emotion == "happy"
    assert merged.segments[2].emotion is None

"""Generation options: every number has a range beside its field, checked by one loop at the
edge; a bad value is one sentence worded the caller's way; checked options are trusted inside
and survive a trip through a job store."""

from __future__ import annotations

import dataclasses
import math

import pytest

from floatalk.cli.main import main
from floatalk.errors import OptionError, UserInputError
from floatalk.options import GenerateOptions, check_value, field_kinds, option_fields
from floatalk.timeline import Timeline

NUMBERS = [f for f in option_fields(GenerateOptions) if field_kinds(GenerateOptions)[f.name][0] in (int, float)]


def test_every_number_has_a_range_that_its_help_states():
    assert {f.name for f in NUMBERS} >= {"nfe", "seed", "a_cfg_scale", "e_cfg_scale", "batch_size", "head_motion"}
    for f in NUMBERS:
        meta = f.metadata["floatalk"]
        assert meta["low"] is not None and meta["high"] is not None, f.name
        assert meta["low"] <= (f.default if f.default is not None else meta["low"]) <= meta["high"]


@pytest.mark.parametrize("field", [f.name for f in NUMBERS])
def test_each_number_outside_its_range_is_refused_naming_the_option(field):
    meta = next(f for f in NUMBERS if f.name == field).metadata["floatalk"]
    kind = field_kinds(GenerateOptions)[field][0]
    for bad in (meta["high"] * 10 + 1, meta["low"] - 1, math.inf, math.nan, "3", True):
        if kind is int and isinstance(bad, float) and math.isfinite(bad):
            bad = int(bad)
        with pytest.raises(OptionError) as err:
            GenerateOptions().replace(**{field: bad}).validate()
        assert err.value.field == field and str(err.value).startswith(field + " ")
        assert "\n" not in str(err.value)
        flags = err.value.as_flags()
        assert str(flags).startswith("--" + field.replace("_", "-") + " ")


def test_values_of_a_huge_cost_are_refused_before_any_work():
    for field, value in (("nfe", 1_000_000), ("seed", 99999999999999999999), ("a_cfg_scale", 1e308), ("seed", -1)):
        with pytest.raises(OptionError, match=field):
            check_value(GenerateOptions, field, value)
    assert check_value(GenerateOptions, "seed", 2**32 - 1) == 2**32 - 1
    assert check_value(GenerateOptions, "nfe", 3.0) == 3  # a whole float from JSON is a whole number


def test_validate_normalises_once_and_a_checked_copy_is_trusted():
    opts = GenerateOptions(emotion=" Happy ", timeline={"segments": [{"start": 0, "end": 1, "emotion": "SAD"}]})
    assert not opts.checked
    checked = opts.validate()
    assert checked.emotion == "happy" and checked.forced_emotion == "happy"
    assert isinstance(checked.timeline, Timeline) and checked.timeline.segments[0].emotion == "sad"
    assert checked.checked and checked.validate() is checked
    assert not checked.replace(nfe=4).checked  # a change makes a copy that is checked again


def test_blink_from_video_needs_a_pose_video_in_each_callers_words():
    with pytest.raises(OptionError) as err:
        GenerateOptions(blink_from_video=True).validate()
    assert str(err.value) == "blink_from_video needs pose_video."
    assert str(err.value.as_flags()) == "--blink-from-video needs --pose-video."


def test_the_json_round_trip_keeps_every_field_and_is_not_checked_again():
    timeline = {"transition": 0.2, "segments": [{"start": 0.5, "end": 2, "emotion": "fear", "head_motion": 0.5}]}
    opts = GenerateOptions(emotion="angry", nfe=4, seed=9, head_motion=0.3, blink=False, timeline=timeline).validate()
    back = GenerateOptions.from_json(opts.to_json())
    assert back == opts and back.checked
    # what the store holds is trusted: a value no check would let through comes back as written
    forged = dict(opts.to_json(), nfe=1)
    assert GenerateOptions.from_json(forged).nfe == 1


def test_an_unknown_option_and_a_bad_choice_are_one_sentence():
    with pytest.raises(UserInputError, match="Unknown generation option 'nfee'"):
        GenerateOptions().replace(nfee=3)
    with pytest.raises(OptionError, match="method must be one of"):
        GenerateOptions(method="leapfrog").validate()
    assert dataclasses.replace(GenerateOptions(), detector="MESH").validate().detector == "mesh"


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--nfe", "1000000", "--nfe must be a whole number from 2 to 200"),
        ("--seed", "99999999999999999999", "--seed must be a whole number from 0 to"),
        ("--a-cfg-scale", "1e308", "--a-cfg-scale must be a number from 0 to 20"),
        ("--batch-size", "0", "--batch-size must be a whole number from 1 to 256"),
        ("--face", "0", "--face must be a whole number from 1 to 1000"),
    ],
)
def test_the_command_line_refuses_a_value_out_of_range_in_one_sentence(flag, value, words, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(["generate", "--image", "missing.png", "--audio", "missing.wav", "--out", str(out), flag, value])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_help_states_each_numbers_range(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("from 2 to 200", "from 0 to 20", "from 1 to 256", "from 0.5 to 4", "1 is the leftmost"):
        assert phrase in text

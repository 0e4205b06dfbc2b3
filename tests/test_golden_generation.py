"""The render path reproduces the frames and motion recorded before it was restructured
(tests/golden/generation.json, written by tests/golden/record_generation.py)."""

from __future__ import annotations

import json

import pytest

from golden_cases import GOLDEN, generation_case


@pytest.mark.slow
def test_generation_matches_the_golden_record():
    expected = json.loads(GOLDEN.read_text())
    got = generation_case()
    assert got["call_shape"] == expected["call_shape"] and got["cli_shape"] == expected["cli_shape"]
    assert got["call_motion"] == expected["call_motion"], "motion latents changed"
    assert got["call_frames"] == expected["call_frames"], "frames of FloatPipeline.__call__ changed"
    assert got["cli_frames"] == expected["cli_frames"], "frames of floatalk generate changed"

"""floatalk.synth.group: group scenes of drawn portraits taking turns, with each face's truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from floatalk.errors import UserInputError
from floatalk.io.provenance import is_synthetic
from floatalk.scene import Turns
from floatalk.synth.group import GroupSpec, group_specs, make_group_scene, write_group_scene
from floatalk.synth.speech import SAMPLE_RATE


@pytest.fixture(scope="module")
def scene():
    return make_group_scene(GroupSpec("g", seed=4, faces=3, seconds=7.5, size=96))


def test_every_face_speaks_in_its_turns_only(scene):
    turns = Turns.from_data(scene.turns)  # a valid turns file: in order, no overlap
    assert sorted({t.face for t in turns.turns}) == [1, 2, 3]
    t = np.arange(len(scene.mix)) / SAMPLE_RATE
    frames = (np.arange(len(scene.mouth[0])) + 0.5) / 25
    for k, track in enumerate(scene.tracks):
        inside = np.zeros(len(t), bool)
        for a, b in turns.spans(k + 1):
            inside |= (t >= a) & (t < b)
        assert np.all(track[~inside] == 0) and np.abs(track[inside]).max() > 0.05
        quiet = np.ones(len(frames), bool)
        for a, b in turns.spans(k + 1):
            quiet &= (frames < a - 0.04) | (frames > b + 0.1)
        assert np.all(scene.mouth[k][quiet] < 0.01) and scene.mouth[k].max() > 0.2
    assert np.allclose(scene.mix, np.sum(scene.tracks, axis=0))


def test_portraits_are_side_by_side_from_the_left_inside_the_photo(scene):
    h, w = scene.photo.shape[:2]
    xs = [b[0] for b in scene.boxes]
    assert xs == sorted(xs)
    for (x, y, bw, bh), (_, _, side) in zip(scene.boxes, scene.squares):
        assert x >= 0 and x + bw <= w and y >= 0 and y + bh <= h
        assert bw == pytest.approx(0.624 * side, rel=0.01)  # the world's framing: face box 0.624 of the square
    # each portrait covers the one on its left by 12 % of its side, never its face
    for (x0, _, w0, _), (x1, _, _, _) in zip(scene.boxes, scene.boxes[1:]):
        assert x0 + w0 < x1


def test_same_spec_same_scene_and_written_files(scene, tmp_path):
    again = make_group_scene(scene.spec)
    assert np.array_equal(again.photo, scene.photo) and again.turns == scene.turns
    folder = write_group_scene(scene, tmp_path / "g")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["face_1.wav", "face_2.wav", "face_3.wav", "mix.wav", "photo.png", "truth.json", "turns.json"]
    assert is_synthetic(folder / "photo.png")
    Turns.load(folder / "turns.json")
    truth = json.loads((folder / "truth.json").read_text())
    assert len(truth["mouth_open"]) == 3 and len(truth["boxes"]) == 3
    specs = group_specs(2, 2, 6.0, 96, seed=1)
    assert specs[0].seed != specs[1].seed and specs == group_specs(2, 2, 6.0, 96, seed=1)
    with pytest.raises(UserInputError, match="A group scene lasts at least 3.2 s"):
        make_group_scene(GroupSpec("short", 1, faces=3, seconds=3))

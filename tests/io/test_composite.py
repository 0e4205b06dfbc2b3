"""floatalk.io.composite: a scene's squares blended into the photo, no face covered by a neighbour."""

from __future__ import annotations

import numpy as np
import pytest

from floatalk.errors import UserInputError
from floatalk.io.composite import SceneComposite, scene_size
from floatalk.io.face import face_crop_box


def test_scene_size_caps_the_longer_side_and_makes_sides_even():
    assert scene_size(481, 641) == (1.0, 480, 640)
    scale, h, w = scene_size(3000, 4000, 1920)
    assert scale == pytest.approx(0.48) and (h, w) == (1440, 1920)
    with pytest.raises(UserInputError, match="at least 16 pixels"):
        scene_size(100, 100, 8)


def _frames(colours: list[int], size: int = 32) -> np.ndarray:
    return np.stack([np.full((size, size, 3), c, np.uint8) for c in colours])


def test_pixels_outside_the_squares_are_the_photos_own():
    photo = (np.random.default_rng(0).random((101, 161, 3)) * 255).astype(np.uint8)
    faces = [(20, 30, 30, 30), (100, 30, 30, 30)]
    squares = [face_crop_box(f, 1.6) for f in faces]
    frame = SceneComposite(photo, squares, faces, 32)(_frames([0, 255]))
    assert frame.shape == (100, 160, 3)  # even sides
    inside = np.zeros(frame.shape[:2], bool)
    for s in squares:
        inside[max(0, int(s.y0)) : int(np.ceil(s.y0 + s.size)), max(0, int(s.x0)) : int(np.ceil(s.x0 + s.size))] = True
    assert np.array_equal(frame[~inside], photo[:100, :160][~inside])
    assert np.all(frame[45, 35] == 0) and np.all(frame[45, 115] == 255)  # each face shows its own square


def test_overlapping_squares_never_cover_a_neighbours_face():
    photo = np.full((120, 200, 3), 128, np.uint8)
    big, small = (60, 30, 60, 60), (125, 40, 30, 30)  # the big face's square reaches over the small face
    squares = [face_crop_box(f, 1.6) for f in (big, small)]
    assert squares[0].x0 + squares[0].size > small[0] + 10 and squares[1].x0 < big[0] + big[2]
    frame = SceneComposite(photo, squares, [big, small], 32)(_frames([10, 240]))
    assert np.all(frame[40:70, 125:155] == 240)  # the small face is its own square, not the big one's
    assert np.all(frame[35:85, 65:115] == 10)  # and the big face is its own
    still = SceneComposite(photo, squares[:1], [big], 32, kept_clear=[small])(_frames([10]))
    assert np.all(still[40:70, 125:155] == 128)  # a face that does not move keeps the photo's pixels


def test_a_face_in_front_covers_the_smaller_face_it_overlaps():
    photo = np.full((120, 200, 3), 128, np.uint8)
    front, behind = (60, 30, 60, 60), (110, 40, 30, 30)  # the face boxes overlap: the big face is in front
    squares = [face_crop_box(f, 1.6) for f in (front, behind)]
    frame = SceneComposite(photo, squares, [front, behind], 32)(_frames([10, 240]))
    assert np.all(frame[40:70, 100:118] == 10)  # where they overlap the bigger (nearer) face wins

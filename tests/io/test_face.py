"""The face front end on real photos: the face mesh, several faces, the crop, the Haar fallback."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from floatalk.errors import UserInputError
from floatalk.io import mesh
from floatalk.io.face import detect_face, detect_faces, face_crop_box, locate_face, resolve_detector
from floatalk.pipeline import prepare_image

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return np.repeat(skimage_data.camera()[..., None], 3, axis=2)


def _inside(box: tuple[float, float, float, float], point: tuple[float, float]) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def test_anchor_grids_match_the_models_outputs() -> None:
    assert len(mesh._anchors(128, (8, 16), (2, 6))) == 896
    assert len(mesh._anchors(192, (4,), (1,))) == 2304


def test_region_matrix_and_to_image_agree() -> None:
    region = mesh.Region(100.0, 80.0, 60.0, 0.3)
    matrix = region.matrix(192)
    u = np.array([[0.0, 0.0], [191.0, 10.0], [95.5, 95.5]])
    by_matrix = u @ matrix[:, :2].T + matrix[:, 2]  # pixel indices of the image
    by_points = region.to_image(u + 0.5, 192) - 0.5  # pixel centres -> indices
    assert np.allclose(by_matrix, by_points)
    assert np.allclose(region.to_image(np.array([96.0, 96.0]), 192), [100.0, 80.0])


def test_mesh_points_follow_the_face(astronaut: np.ndarray) -> None:
    faces = mesh.detect_faces(astronaut)
    assert len(faces) == 1 and faces[0].presence > 0.9
    points = faces[0].points
    assert points.shape == (mesh.MESH_POINTS, 3)
    # the subject's right eye is on the image's left; the lips lie below the eyes
    assert points[mesh.RIGHT_EYE_OUTER, 0] < points[mesh.LEFT_EYE_OUTER, 0]
    assert points[mesh.UPPER_LIP, 1] > points[mesh.RIGHT_EYE_OUTER, 1] + 15
    # the same photo shifted by (30, 20) moves the mesh by (30, 20)
    shifted = np.zeros_like(astronaut)
    shifted[20:, 30:] = astronaut[:-20, :-30]
    moved = mesh.detect_faces(shifted)[0].points
    assert np.allclose(np.median(moved[:, :2] - points[:, :2], axis=0), (30, 20), atol=1.5)


def test_mesh_finds_faces_haar_misses(astronaut: np.ndarray, camera: np.ndarray) -> None:
    centre = mesh.detect_faces(camera)[0].box
    centre = (centre[0] + centre[2] / 2, centre[1] + centre[3] / 2)
    assert detect_face(camera, "haar") is None  # the cameraman looks down into his camera
    h, w = camera.shape[:2]
    turned = cv2.warpAffine(camera, cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0), (w, h))
    canvas = np.full((1024, 1024, 3), 128, np.uint8)
    canvas[500:628, 300:428] = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
    gray = np.repeat(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert detect_face(canvas, "haar") is None
    assert _inside(detect_face(camera, "mesh"), centre)
    assert detect_face(turned, "mesh") is not None
    small = detect_face(canvas, "mesh")
    assert small is not None and 300 < small[0] < 428 and 500 < small[1] < 628 and small[2] < 40
    assert detect_face(gray, "mesh") == detect_face(astronaut, "mesh")


def test_mesh_box_is_calibrated_to_haar(astronaut: np.ndarray) -> None:
    haar = detect_face(astronaut, "haar")
    box = detect_face(astronaut, "mesh")
    assert abs(box[2] - haar[2]) < 0.05 * haar[2]
    assert abs(box[0] + box[2] / 2 - haar[0] - haar[2] / 2) < 0.05 * haar[2]
    assert abs(box[1] + box[3] / 2 - haar[1] - haar[3] / 2) < 0.05 * haar[2]


def test_several_faces_are_numbered_from_the_left(astronaut: np.ndarray, camera: np.ndarray) -> None:
    group = np.full((400, 900, 3), 200, np.uint8)
    group[40:296, 20:276] = cv2.resize(camera, (256, 256), interpolation=cv2.INTER_AREA)
    group[60:344, 500:884] = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)[:284]
    boxes = detect_faces(group, "mesh")
    assert len(boxes) == 2
    largest = locate_face(group)
    assert largest.count == 2 and largest.number == 2 and largest.box[0] > 500  # the astronaut is larger
    left = locate_face(group, face=1)
    assert left.number == 1 and left.box[0] < 276 and left.detector == "mesh"
    with pytest.raises(UserInputError, match="from 1 to 2"):
        locate_face(group, face=3)
    prepared = prepare_image(group, 64, face=1, crop_scale=2.0)
    assert prepared.choice.number == 1 and prepared.box.size == pytest.approx(2.0 * max(left.box[2:]))
    assert prepared.pixels.shape == (64, 64, 3)


def test_crop_scale_and_detector_are_checked(astronaut: np.ndarray) -> None:
    with pytest.raises(UserInputError, match="detector"):
        detect_faces(astronaut, "dlib")
    box = face_crop_box(detect_face(astronaut), 1.6)
    assert box.size == pytest.approx(1.6 * detect_face(astronaut)[2])


def test_auto_falls_back_to_haar_without_the_runtime(monkeypatch: pytest.MonkeyPatch, astronaut: np.ndarray) -> None:
    assert resolve_detector("auto") == "mesh"
    monkeypatch.setattr(mesh, "mesh_available", lambda: False)
    assert resolve_detector("auto") == "haar"
    assert locate_face(astronaut).detector == "haar"

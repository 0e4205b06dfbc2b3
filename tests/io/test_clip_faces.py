"""Preprocessing with the face mesh: one stable crop per clip and per-frame mesh landmarks in crop coordinates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from floatalk.cli.main import main
from floatalk.io.clip_faces import clip_faces, to_crop_coordinates
from floatalk.io.face import CropBox
from floatalk.synth import generate_world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip_faces") / "world"
    generate_world(out, clips=3, seconds=2.0, size=128, seed=8282, workers=2)
    return out


def test_crop_coordinates_map_the_box_edges_to_minus_one_and_one() -> None:
    box = CropBox(10.0, 20.0, 50.0)
    points = np.array([[10.0, 20.0], [60.0, 70.0], [35.0, 45.0]])
    assert np.allclose(to_crop_coordinates(points, box), [[-1, -1], [1, 1], [0, 0]])


def test_one_stable_crop_follows_a_moving_face() -> None:
    data = pytest.importorskip("skimage.data")
    photo = data.astronaut()
    frames = []
    for t in range(12):  # the photo slides 3 px per frame inside a larger canvas
        canvas = np.zeros((600, 700, 3), np.uint8)
        canvas[40:552, 20 + 3 * t : 532 + 3 * t] = photo
        frames.append(canvas)
    faces = clip_faces(frames)
    assert faces.found.all() and faces.points.shape == (12, 468, 2)
    drift = faces.points[-1].mean(axis=0) - faces.points[0].mean(axis=0)
    assert drift == pytest.approx((33.0, 0.0), abs=1.5)
    centre = faces.box.x0 + faces.box.size / 2
    first = faces.points[0].mean(axis=0)[0]
    assert first < centre < first + 33  # the median crop sits between the first and last positions


def _preprocess(videos: Path, out: Path, *flags: str) -> list[Path]:
    assert main(["preprocess", "--videos", str(videos), "--out", str(out), "--size", "64", "--quiet", *flags]) == 0
    return sorted((out / "clips").iterdir())


def test_preprocess_writes_mesh_landmarks_for_every_clip(world: Path, tmp_path: Path) -> None:
    clips = _preprocess(world, tmp_path / "data", "--landmarks", "mesh")
    for clip in clips:
        mesh = np.load(clip / "mesh.npy")
        frames = np.load(clip / "frames.npy")
        assert mesh.shape == (len(frames), 468, 2) and mesh.dtype == np.float32
        assert np.array_equal(np.load(clip / "landmarks.npy"), mesh)
        assert mesh.min() > -1 and mesh.max() < 1  # the whole face lies inside the crop
        assert json.loads((clip / "meta.json").read_text())["mesh_found"] == 1.0
    # by default the world's own landmarks stay in landmarks.npy, and its crop rule is kept
    default = _preprocess(world, tmp_path / "default")
    assert np.load(default[0] / "landmarks.npy").shape[1] != 468
    assert (default[0] / "mesh.npy").is_file()


def test_videos_without_a_sidecar_are_cropped_around_the_mesh(world: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "talk.mp4").write_bytes((world / "clip_00001.mp4").read_bytes())  # no JSON beside it
    (clip,) = _preprocess(real, tmp_path / "data")
    meta = json.loads((clip / "meta.json").read_text())
    assert np.array_equal(np.load(clip / "landmarks.npy"), np.load(clip / "mesh.npy"))
    x0, y0, side = meta["crop_box"]
    assert 60 < side < 140 and abs(x0 + side / 2 - 64) < 20 and abs(y0 + side / 2 - 64) < 25

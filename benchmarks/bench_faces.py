"""Face detection on real photos: the face mesh front end against OpenCV's Haar cascade.

Photos: skimage's `astronaut` and `camera` (the real faces that ship offline), each as is and
in four variants: rotated 20 degrees, shrunk to 0.25 inside a 1024 px grey canvas, grayscale,
and one group photo built from several faces (both photos, mirrored, at three sizes). For each
detector and photo: whether every face was found (a found box must contain the face's centre,
known by construction), the boxes, and the seconds per image (median of --runs). Then the
crop that `floatalk generate` would use (largest face, 1.6x).

--calibrate prints the fit behind `floatalk.io.mesh.BOX_SIDE` / `BOX_SHIFT`: on the photos where
Haar finds the face, its box side and centre in eye-to-mouth distances of the mesh.

    python benchmarks/bench_faces.py [--runs 3] [--calibrate] [--json outputs/bench/faces.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from _common import machine, print_machine, write_json
from floatalk.io import mesh
from floatalk.io.face import detect_faces, face_crop_box


def _rotate(image: np.ndarray, degrees: float, centre: tuple[float, float]) -> tuple[np.ndarray, tuple[float, float]]:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    x, y = centre
    return cv2.warpAffine(image, matrix, (w, h)), tuple(matrix @ np.array([x, y, 1.0]))


def _paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int, scale: float) -> np.ndarray:
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def reference_faces(size: int) -> dict[str, tuple[np.ndarray, tuple[float, float]]]:
    """The two real photos as (H, W, 3) RGB with each face's centre (x, y), found once by the mesh
    on the untouched photo (the variants move that centre by construction)."""
    from skimage import data

    photos = {"astronaut": data.astronaut(), "camera": np.repeat(data.camera()[..., None], 3, axis=2)}
    out = {}
    for name, photo in photos.items():
        photo = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA) if photo.shape[0] != size else photo
        x, y, w, h = mesh.detect_faces(photo)[0].box
        out[name] = (np.ascontiguousarray(photo), (x + w / 2, y + h / 2))
    return out


def variants(size: int = 512) -> list[tuple[str, np.ndarray, list[tuple[float, float]]]]:
    """(name, photo, centres of its faces) for every test photo."""
    faces = reference_faces(size)
    rows = []
    for name, (photo, centre) in faces.items():
        rows.append((name, photo, [centre]))
        turned, c = _rotate(photo, 20, centre)
        rows.append((f"{name} rotated 20", turned, [c]))
        canvas = np.full((1024, 1024, 3), 128, np.uint8)
        small = _paste(canvas, photo, 600, 560, 0.25)
        rows.append((f"{name} 0.25 in 1024 canvas", small, [(600 + centre[0] * 0.25, 560 + centre[1] * 0.25)]))
        gray = np.repeat(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        rows.append((f"{name} grayscale", gray, [centre]))
    group = np.full((720, 1600, 3), 200, np.uint8)
    centres = []
    for i, ((photo, centre), scale, mirror) in enumerate(
        zip([faces["astronaut"], faces["camera"]] * 3, (0.5, 0.5, 0.45, 0.45, 0.35, 0.35), (0, 0, 1, 1, 0, 1))
    ):
        img = photo[:, ::-1] if mirror else photo
        cx = (img.shape[1] - centre[0]) if mirror else centre[0]
        x, y = 20 + 260 * i, 40 + (i % 2) * 300
        _paste(group, np.ascontiguousarray(img), x, y, scale)
        centres.append((x + cx * scale, y + centre[1] * scale))
    rows.append(("group of 6", group, centres))
    return rows


def _found(boxes: list[tuple[int, int, int, int]], centres: list[tuple[float, float]]) -> int:
    return sum(any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in boxes) for cx, cy in centres)


def calibrate(photos: list[tuple[str, np.ndarray, list[tuple[float, float]]]]) -> dict:
    """Haar box side and centre offset in eye-to-mouth distances, on the single-face photos Haar finds."""
    sides, shifts = [], []
    for _, photo, centres in photos:
        if len(centres) != 1:
            continue
        haar = detect_faces(photo, "haar")
        faces = mesh.detect_faces(photo)
        if not haar or not faces or not _found(haar[:1], centres):
            continue
        xy = faces[0].points
        eyes = (xy[mesh.RIGHT_EYE_OUTER, :2] + xy[mesh.LEFT_EYE_OUTER, :2]) / 2
        mouth = (xy[mesh.UPPER_LIP, :2] + xy[mesh.LOWER_LIP, :2]) / 2
        d = float(np.hypot(*(mouth - eyes)))
        x, y, w, h = haar[0]
        sides.append(max(w, h) / d)
        shifts.append(float(np.dot(np.array([x + w / 2, y + h / 2]) - eyes, (mouth - eyes) / d)) / d)
    return {
        "photos": len(sides),
        "side": statistics.median(sides) if sides else None,
        "shift": statistics.median(shifts) if shifts else None,
        "sides": sides,
        "shifts": shifts,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="timed runs per photo and detector (median)")
    p.add_argument("--calibrate", action="store_true", help="also fit the mesh box to Haar's")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = p.parse_args(argv)
    info = machine()
    print_machine(info)
    photos = variants()
    rows = []
    head = f"{'mesh found':>10s} {'s/image':>8s} | {'haar found':>10s} {'s/image':>8s}"
    print(f"{'photo':28s} {'faces':>5s} | {head} | crop (mesh)")
    for name, photo, centres in photos:
        row = {"photo": name, "size": list(photo.shape[:2]), "faces": len(centres)}
        for detector in ("mesh", "haar"):
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                boxes = detect_faces(photo, detector)
                times.append(time.perf_counter() - t0)
            row[detector] = {"found": _found(boxes, centres), "boxes": boxes, "seconds": statistics.median(times)}
        crop = face_crop_box(row["mesh"]["boxes"][0]) if row["mesh"]["boxes"] else None
        row["crop"] = [round(crop.x0, 1), round(crop.y0, 1), round(crop.size, 1)] if crop else None
        rows.append(row)
        m, h = row["mesh"], row["haar"]
        print(
            f"{name:28s} {len(centres):5d} | {m['found']:10d} {m['seconds']:8.3f} | "
            f"{h['found']:10d} {h['seconds']:8.3f} | {row['crop']}"
        )
    total = sum(r["faces"] for r in rows)
    summary = {
        d: {
            "detection_rate": sum(r[d]["found"] for r in rows) / total,
            "seconds_per_image": statistics.mean(r[d]["seconds"] for r in rows),
        }
        for d in ("mesh", "haar")
    }
    for d, s in summary.items():
        print(f"{d}: {s['detection_rate']:.0%} of {total} faces found, {s['seconds_per_image']:.3f} s per image (mean)")
    payload = {"machine": info, "runs": args.runs, "photos": rows, "summary": summary}
    if args.calibrate:
        fit = calibrate(photos)
        payload["calibration"] = fit
        print(
            f"calibration on {fit['photos']} photos Haar finds: box side {fit['side']:.3f} and centre "
            f"{fit['shift']:.3f} eye-to-mouth distances below the eyes (mesh uses {mesh.BOX_SIDE} and {mesh.BOX_SHIFT})"
        )
    if args.json:
        write_json(Path(args.json), payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

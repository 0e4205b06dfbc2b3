"""Face detection on real photos: the face mesh front end against OpenCV's Haar cascade.

Photos: skimage's `astronaut` and `camera` (the real faces that ship offline), each as is and
in four variants: rotated 20 degrees, shrunk to 0.25 inside a 1024 px grey canvas, grayscale,
and one group photo built from several faces (both photos, mirrored, at three sizes). For each
detector and photo: whether every face was found (a found box must contain the face's centre,
known by construction), the boxes, and the seconds per image (median of --runs). Then the
crop that `floatalk generate` would use (largest face, 1.6x).

--calibrate prints the fit behind `floatalk.io.mesh.BOX_SIDE` / `BOX_SHIFT`: on the photos where
Haar finds the face, its box side and centre in eye-to-mouth distances of the mesh.

--csim prints identity similarity (dlib embeddings, floatalk.evaluation.identity) of each real
face with itself after JPEG quality 20, Gaussian blur sigma 2, grayscale and a half-size round
trip, and between the two different faces.

    python benchmarks/bench_faces.py [--runs 3] [--calibrate] [--csim] [--json outputs/bench/faces.json]
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


def _in_eye_mouth_units(points: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """A box's side and its centre's distance below the eyes, in eye-to-mouth distances of the mesh."""
    eyes = (points[mesh.RIGHT_EYE_OUTER, :2] + points[mesh.LEFT_EYE_OUTER, :2]) / 2
    mouth = (points[mesh.UPPER_LIP, :2] + points[mesh.LOWER_LIP, :2]) / 2
    d = float(np.hypot(*(mouth - eyes)))
    x, y, w, h = box
    return max(w, h) / d, float(np.dot(np.array([x + w / 2, y + h / 2]) - eyes, (mouth - eyes) / d)) / d


def calibrate(photos: list[tuple[str, np.ndarray, list[tuple[float, float]]]]) -> dict:
    """Haar box side and centre offset in eye-to-mouth distances, on the single-face photos Haar finds;
    and the synthetic world's own face box in the same units (3 clips at 128 and at 256 px)."""
    from floatalk.synth.world import clip_specs, make_clip

    fits = []
    for _, photo, centres in photos:
        haar = detect_faces(photo, "haar")
        faces = mesh.detect_faces(photo)
        if len(centres) == 1 and haar and faces and _found(haar[:1], centres):
            fits.append(_in_eye_mouth_units(faces[0].points, haar[0]))
    world = []
    for size in (128, 256):
        for spec in clip_specs(3, 1.0, size, seed=99100 + size):
            clip = make_clip(spec)
            for i in range(0, len(clip.frames), 8):
                points = mesh.detect_faces(clip.frames[i])[0].points
                world.append(_in_eye_mouth_units(points, clip.truth["face_box"][i]))
    return {
        "photos": len(fits),
        "side": statistics.median(f[0] for f in fits),
        "shift": statistics.median(f[1] for f in fits),
        "fits": fits,
        "world_frames": len(world),
        "world_side": statistics.median(f[0] for f in world),
        "world_shift": statistics.median(f[1] for f in world),
    }


def csim_table() -> dict:
    """CSIM of each real face with degraded copies of itself, and of the two faces with each other."""
    from floatalk.evaluation.identity import FaceEmbedder, csim

    def jpeg(img: np.ndarray) -> np.ndarray:
        _, data = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 20])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()

    def half(img: np.ndarray) -> np.ndarray:
        small = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        return cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_CUBIC)

    changes = {
        "jpeg q20": jpeg,
        "blur sigma 2": lambda img: cv2.GaussianBlur(img, (0, 0), 2),
        "grayscale": lambda img: np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2),
        "half size": half,
    }
    embed = FaceEmbedder()
    faces = {name: photo for name, (photo, _) in reference_faces(512).items()}
    base = {name: embed(photo) for name, photo in faces.items()}
    same = {name: {k: csim(base[name], embed(f(photo))) for k, f in changes.items()} for name, photo in faces.items()}
    different = csim(base["astronaut"], base["camera"])
    return {"same": same, "different": different}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="timed runs per photo and detector (median)")
    p.add_argument("--calibrate", action="store_true", help="also fit the mesh box to Haar's")
    p.add_argument("--csim", action="store_true", help="also measure identity similarity, same vs different face")
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
        print(
            f"synthetic world's own face box ({fit['world_frames']} frames): side {fit['world_side']:.3f}, centre "
            f"{fit['world_shift']:.3f} eye-to-mouth distances below the eyes"
        )
    if args.csim:
        table = csim_table()
        payload["csim"] = table
        for name, row in table["same"].items():
            print(f"CSIM {name} vs itself: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
        print(f"CSIM astronaut vs camera (different people): {table['different']:.3f}")
    if args.json:
        write_json(Path(args.json), payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

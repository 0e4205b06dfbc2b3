"""Scenes with several people, with the bundled model: lip sync, listeners, the photo's pixels, cost.

Quality, on group scenes of the synthetic world from held-out seeds (`floatalk.synth.group`: drawn
portraits side by side taking turns, each with its own speech), each rendered by `render_scene`
with one recording per face and the faces given by their true boxes (and, with --mix, again from
the mixed recording and its turns file). From the written video, each face's square is cut out
and measured as the lip-sync meter reads a single portrait (floatalk.evaluation):

* lip sync with its own voice, against the same face animated alone with that voice
  (`FloatPipeline` on the same square, same seed): target at least 0.9 of it;
* lip sync with each other speaker's voice, against that same alone score: target at most 0.3;
* a listener's mouth amplitude (std of the opening) over the frames where another face speaks and
  it has not spoken within 0.3 s, against its amplitude over its own turns: target at most 0.25
  (beside it the same ratio of the face animated alone with its own voice: silence alone);
* PSNR of the pixels outside every face square against the photo: target at least 40 dB (beside
  it, the same for the photo alone written as a still video: what the codec itself costs).

Cost, for scenes of 1, 2, 4 and 6 faces (--counts) in which every face talks all along (what a
scene costs does not depend on who speaks when): `floatalk scene` in a fresh process against
`floatalk generate` run once per face on that face's square (the separate runs a scene replaces);
the scene runs twice, the first time measuring each new portrait's motion atlas (what closing a
listener's mouth edits through; cached), the second reading it, and the second is compared:
wall seconds, the render's own seconds (the summary's, without start-up and model loading) per
frame, CPU seconds (user + system; each run on --threads torch threads, default one, so that
other work on a shared machine cannot inflate them), the ratios scene / sum of separate runs, and
peak RSS, each the fastest of --repeats runs
taken in turn (other work on a shared machine only slows a run down); with --long-seconds, the peak RSS of
a 2-face scene at --cost-seconds and at that length (memory flat in the scene's length).

Detection (--detection): every face found by the face mesh on composites of the real photos that
ship offline (skimage's astronaut and camera, mirrored, at different sizes, 2 to 6 faces), and on
insightface's six-person photo where that wheel is installed (it is not committed here).

    python benchmarks/bench_scene.py [--scenes 2] [--faces 3] [--mix] [--detection] \\
        [--sheet docs/scene_frame.png] [--json outputs/bench/scene.json]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import floatalk_command, machine, print_machine, run_measured, write_json  # noqa: E402

SEED = 93000  # held-out: the bundled model never saw these identities (they are drawn from 31-bit seeds)
LISTEN_MARGIN = 0.3


def _frames(path: Path) -> np.ndarray:
    from floatalk.io.video import read_video_frames

    frames = read_video_frames(path)
    return frames[0] if isinstance(frames, tuple) else frames


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def _still_through_codec(photo: np.ndarray, folder: Path) -> np.ndarray:
    """The photo as the video codec gives it back when nothing moves (what 'up to the codec' allows)."""
    from floatalk.io.video import VideoWriter

    path = folder / "still.mp4"
    with VideoWriter(path, fps=25) as writer:
        writer.write(np.stack([photo] * 5))
    return _frames(path)[2]


def _masks(turns: list[dict], face: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """(T,) frames where `face` speaks, and where another face speaks while it has not spoken for
    LISTEN_MARGIN s (nor will within it)."""
    t = (np.arange(T) + 0.5) / 25
    own, near, other = np.zeros(T, bool), np.zeros(T, bool), np.zeros(T, bool)
    for turn in turns:
        inside = (t >= turn["start"]) & (t < turn["end"])
        if turn["face"] == face:
            own |= inside
            near |= (t >= turn["start"] - LISTEN_MARGIN) & (t < turn["end"] + LISTEN_MARGIN)
        else:
            other |= inside
    return own, other & ~near


def alone_frames(pipe, scene) -> list[np.ndarray]:
    """Each face of the scene animated alone with its own voice: its square of the photo, the seed
    the scene gives it (15 + its index)."""
    from floatalk.io.face import crop_image, face_crop_box

    squares = [face_crop_box(box, 1.6) for box in scene.boxes]
    return [
        pipe(crop_image(scene.photo, s, pipe.image_size), scene.tracks[k], crop=False, seed=15 + k).frames
        for k, s in enumerate(squares)
    ]


def measure_scene(pipe, scene, video: Path, alone_videos: list[np.ndarray]) -> list[dict]:
    """One row per face of a rendered scene (see the module docstring)."""
    from floatalk.evaluation import mouth_opening, score_lipsync
    from floatalk.io.face import crop_image, face_crop_box

    frames = _frames(video)
    T = len(frames)
    squares = [face_crop_box(box, 1.6) for box in scene.boxes]
    outside = np.ones(frames.shape[1:3], bool)
    for s in squares:
        outside[max(0, int(s.y0)) : int(np.ceil(s.y0 + s.size)), max(0, int(s.x0)) : int(np.ceil(s.x0 + s.size))] = (
            False
        )
    photo = scene.photo[: frames.shape[1], : frames.shape[2]]
    psnr = min(_psnr(f[outside], photo[outside]) for f in frames)
    floor = _psnr(_still_through_codec(photo, video.parent)[outside], photo[outside])
    rows = []
    for k, (square, alone) in enumerate(zip(squares, alone_videos)):
        crops = np.stack([crop_image(f, square, pipe.image_size) for f in frames])
        own_score = score_lipsync(crops, scene.tracks[k])["correlation"]
        alone_score = score_lipsync(alone, scene.tracks[k])["correlation"]
        others = [score_lipsync(crops, scene.tracks[j])["correlation"] for j in range(len(squares)) if j != k]
        speaking, listening = _masks(scene.turns, k + 1, T)
        opening, opening_alone = mouth_opening(crops), mouth_opening(alone[:T])
        row = {
            "face": k + 1,
            "lipsync_own": own_score,
            "lipsync_alone": alone_score,
            "own_vs_alone": own_score / alone_score,
            "other_vs_alone": max(others) / alone_score if others else None,
            "listening_frames": int(listening.sum()),
            "psnr_outside": psnr,
            "psnr_codec_floor": floor,
        }
        if listening.sum() >= 10 and speaking.sum() >= 10:
            row["listener_amplitude"] = float(opening[listening].std() / opening[speaking].std())
            row["alone_listener_amplitude"] = float(opening_alone[listening].std() / opening_alone[speaking].std())
        rows.append(row)
    return rows


def quality(pipe, args, folder: Path) -> dict:
    from floatalk.render import render_scene
    from floatalk.scene import FaceBox, Speaker
    from floatalk.synth.group import group_specs, make_group_scene, write_group_scene

    rows, first = [], None
    for spec in group_specs(args.scenes, args.faces, args.seconds, args.size, SEED, overlap=args.overlap):
        scene = make_group_scene(spec)
        where = write_group_scene(scene, folder / spec.name)
        speakers = [Speaker(FaceBox(*box), where / f"face_{k + 1}.wav") for k, box in enumerate(scene.boxes)]
        video = where / "scene.mp4"
        t0 = time.perf_counter()
        render_scene(pipe, where / "photo.png", video, speakers)
        elapsed = time.perf_counter() - t0
        paths = [("recordings", video)]
        if args.mix:
            mixed = where / "mix.mp4"
            boxed = [{**t, "face": list(scene.boxes[t["face"] - 1])} for t in scene.turns]
            render_scene(pipe, where / "photo.png", mixed, audio=where / "mix.wav", turns=boxed)
            paths.append(("mix", mixed))
        alone = alone_frames(pipe, scene)
        for kind, path in paths:
            for row in measure_scene(pipe, scene, path, alone):
                rows.append({"scene": spec.name, "input": kind, "seconds": elapsed, **row})
                r = rows[-1]
                amp = r.get("listener_amplitude")
                print(
                    f"{spec.name} ({kind}) face {r['face']}: lip sync {r['lipsync_own']:.3f} "
                    f"(alone {r['lipsync_alone']:.3f}, x{r['own_vs_alone']:.2f}), another's voice "
                    f"x{r['other_vs_alone']:.2f}, listener amplitude "
                    + (f"{amp:.2f} (alone {r['alone_listener_amplitude']:.2f})" if amp is not None else "n/a")
                    + f", PSNR outside {r['psnr_outside']:.1f} dB (the still photo through the codec: "
                    f"{r['psnr_codec_floor']:.1f} dB)",
                    flush=True,
                )
        first = first or (scene, video)
    listeners = [r["listener_amplitude"] for r in rows if "listener_amplitude" in r]
    worst = {
        "own_vs_alone": min(r["own_vs_alone"] for r in rows),
        "other_vs_alone": max(r["other_vs_alone"] for r in rows if r["other_vs_alone"] is not None),
        "listener_amplitude": max(listeners),
        "psnr_outside": min(r["psnr_outside"] for r in rows),
    }
    passed = {
        "own voice >= 0.9 x alone": bool(worst["own_vs_alone"] >= 0.9),
        "another's voice <= 0.3 x alone": bool(worst["other_vs_alone"] <= 0.3),
        "listener amplitude <= 0.25 x speaking": bool(worst["listener_amplitude"] <= 0.25),
        "PSNR outside the squares >= 40 dB": bool(worst["psnr_outside"] >= 40),
    }
    return {"rows": rows, "worst": worst, "passed": passed, "first": first}


def _summary_seconds(tail: list[str]) -> float | None:
    for line in reversed(tail):
        found = re.search(r" in ([0-9.]+) s$", line)
        if found:
            return float(found.group(1))
    return None


def _talkers(count: int, seconds: float, size: int, seed: int, folder: Path):
    """A group scene of `count` faces in which every face talks all along (its own speech in
    face_K.wav): what a scene costs does not depend on who speaks when, and a short scene leaves
    no face without a voice."""
    from floatalk.io.audio import write_wav
    from floatalk.synth.face import Identity
    from floatalk.synth.group import GroupSpec, make_group_scene, write_group_scene
    from floatalk.synth.speech import plan_speech, synthesize

    scene = make_group_scene(GroupSpec(folder.name, seed, count, seconds, size))
    where = write_group_scene(scene, folder)
    rng = np.random.default_rng(seed)
    for k, identity in enumerate(scene.identities):
        speech = synthesize(plan_speech(rng, seconds, scene.emotions[k], Identity.sample(identity).f0), rng)
        write_wav(
            where / f"face_{k + 1}.wav", np.clip(np.rint(speech.audio * 32768), -32768, 32767).astype(np.int16), 16000
        )
    return scene, where


def _run(command: list[str], log: Path, out: Path) -> dict:
    """One measured run writing `out` (removed first): wall seconds, the summary's render seconds, peak RSS."""
    out.unlink(missing_ok=True)
    run = run_measured(command, log, timeout=3600)
    if run["exit_status"] != 0:
        raise SystemExit(f"a run failed: {run['command']}: {run['output_tail']}")
    render = _summary_seconds(run["output_tail"])
    return {"wall": run["wall_s"], "cpu": run["cpu_s"], "render": render, "peak": run["peak_rss_bytes"]}


def cost(args, folder: Path) -> list[dict]:
    """`floatalk scene` against one `floatalk generate` per face, each in a fresh process; the
    fastest of --repeats interleaved runs of each (the machine's other load only slows runs down)."""
    import os

    from PIL import Image

    from floatalk.io.face import crop_image, face_crop_box

    cmd = floatalk_command(args.floatalk)
    # One thread each: with two busy cores shared with other work, torch's worker threads spin
    # while they wait and count as CPU time; one thread's CPU seconds are the work done.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    rows = []
    for count in args.counts:
        scene, where = _talkers(count, args.cost_seconds, args.size, SEED + count, folder / f"cost_{count}")
        T = int(round(args.cost_seconds * 25))
        speakers = []
        for k, box in enumerate(scene.boxes):
            speakers += ["--speaker", ",".join(f"{v:.2f}" for v in box) + f"={where / f'face_{k + 1}.wav'}"]
        video = where / "scene.mp4"
        scene_cmd = [*cmd, "scene", "--image", str(where / "photo.png"), *speakers, "--out", str(video)]
        alone_cmds = []
        for k, box in enumerate(scene.boxes):
            crop = where / f"crop_{k + 1}.png"
            Image.fromarray(crop_image(scene.photo, face_crop_box(box, 1.6), 128)).save(crop)
            out = where / f"alone_{k + 1}.mp4"
            alone_cmds.append(
                ([*cmd, "generate", "--image", str(crop), "--audio", str(where / f"face_{k + 1}.wav"), "--no-crop",
                  "--out", str(out)], out)
            )  # fmt: skip
        first = _run(scene_cmd, where / "first.log", video)  # measures each new portrait's motion atlas
        scenes, alone = [], [[] for _ in alone_cmds]
        for r in range(args.repeats):
            scenes.append(_run(scene_cmd, where / f"scene_{r}.log", video))  # the atlases read from the cache
            for k, (command, out) in enumerate(alone_cmds):
                alone[k].append(_run(command, where / f"alone_{k + 1}_{r}.log", out))
        scene_wall, scene_render = min(x["wall"] for x in scenes), min(x["render"] for x in scenes)
        scene_cpu = min(x["cpu"] for x in scenes)
        alone_wall = sum(min(x["wall"] for x in runs) for runs in alone)
        alone_render = sum(min(x["render"] for x in runs) for runs in alone)
        alone_cpu = sum(min(x["cpu"] for x in runs) for runs in alone)
        row = {
            "faces": count,
            "frames": T,
            "repeats": args.repeats,
            "scene_first_wall_s": first["wall"],
            "scene_wall_s": scene_wall,
            "scene_render_s": scene_render,
            "scene_render_s_per_frame": scene_render / T,
            "scene_cpu_s": scene_cpu,
            "scene_peak_rss_mb": max(x["peak"] for x in scenes) / 2**20,
            "separate_wall_s": alone_wall,
            "separate_render_s": alone_render,
            "separate_render_s_per_frame": alone_render / T,
            "separate_cpu_s": alone_cpu,
            "separate_peak_rss_mb": max(x["peak"] for runs in alone for x in runs) / 2**20,
            "ratio_wall": scene_wall / alone_wall,
            "ratio_render": scene_render / alone_render,
            "ratio_cpu": scene_cpu / alone_cpu,
        }
        rows.append(row)
        print(
            f"{count} face(s), {T} frames: scene {row['scene_wall_s']:.1f} s wall "
            f"(first run, measuring the atlases: {row['scene_first_wall_s']:.1f} s), "
            f"{row['scene_render_s_per_frame'] * 1000:.0f} ms/frame rendering, "
            f"peak {row['scene_peak_rss_mb']:.0f} MB; separate runs {row['separate_wall_s']:.1f} s wall, "
            f"{row['separate_render_s_per_frame'] * 1000:.0f} ms/frame rendering, "
            f"peak {row['separate_peak_rss_mb']:.0f} MB; CPU {row['scene_cpu_s']:.1f} s against "
            f"{row['separate_cpu_s']:.1f} s; scene / separate: {row['ratio_wall']:.2f} wall, "
            f"{row['ratio_render']:.2f} rendering, {row['ratio_cpu']:.2f} CPU",
            flush=True,
        )
    return rows


def length_memory(args, folder: Path) -> list[dict]:
    """Peak RSS of `floatalk scene` (2 faces) at --cost-seconds and at --long-seconds: flat in length."""
    cmd = floatalk_command(args.floatalk)
    rows = []
    for seconds in (args.cost_seconds, args.long_seconds):
        scene, where = _talkers(2, seconds, args.size, SEED + 77, folder / f"long_{seconds:g}")
        speakers = []
        for k, box in enumerate(scene.boxes):
            speakers += ["--speaker", ",".join(f"{v:.2f}" for v in box) + f"={where / f'face_{k + 1}.wav'}"]
        run = run_measured(
            [*cmd, "scene", "--image", str(where / "photo.png"), *speakers, "--out", str(where / "scene.mp4")],
            where / "scene.log",
            timeout=3600,
        )
        if run["exit_status"] != 0:
            raise SystemExit(f"a run failed: {run['command']}: {run['output_tail']}")
        rows.append({"seconds": seconds, "peak_rss_mb": run["peak_rss_bytes"] / 2**20, "wall_s": run["wall_s"]})
        print(f"2 faces, {seconds:g} s: peak {rows[-1]['peak_rss_mb']:.0f} MB, {run['wall_s']:.1f} s wall", flush=True)
    return rows


def detection() -> list[dict]:
    """Faces found by the mesh on composites of skimage's real photos (2 to 6 faces) and on
    insightface's six-person photo where installed."""
    import cv2

    from bench_faces import reference_faces
    from floatalk.io.face import detect_faces

    faces = list(reference_faces(512).values())
    rows = []
    for count in range(2, 7):
        canvas = np.full((560, 200 + 260 * count, 3), 190, np.uint8)
        centres = []
        for i in range(count):
            photo, (cx, cy) = faces[i % 2]
            scale = (0.5, 0.42, 0.34)[i % 3]
            img = photo[:, ::-1] if i % 4 >= 2 else photo
            cx = img.shape[1] - cx if i % 4 >= 2 else cx
            small = cv2.resize(np.ascontiguousarray(img), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            x, y = 40 + 260 * i, 30 + (i % 2) * 240
            canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
            centres.append((x + cx * scale, y + cy * scale))
        boxes = detect_faces(canvas, "mesh")
        found = sum(any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in boxes) for cx, cy in centres)
        rows.append({"photo": f"composite of {count}", "faces": count, "found": found, "boxes": len(boxes)})
    import importlib.util

    from floatalk.io.image import load_image

    spec = importlib.util.find_spec("insightface")  # found, not imported: it would need onnxruntime
    photo = Path(next(iter(spec.submodule_search_locations))) / "data" / "images" / "t1.jpg" if spec else None
    if photo is not None and photo.is_file():
        boxes = detect_faces(load_image(photo), "mesh")
        rows.append({"photo": "insightface t1.jpg", "faces": 6, "found": min(6, len(boxes)), "boxes": len(boxes)})
    else:
        print("insightface is not installed: its six-person photo is skipped")
    for row in rows:
        print(f"{row['photo']}: {row['found']} of {row['faces']} faces found ({row['boxes']} boxes)")
    return rows


def contact_sheet(scene, video: Path, out: Path) -> None:
    """A frame of a benchmark scene in which someone speaks, twice its size, each face's number
    above its portrait with whether it speaks or listens then."""
    import cv2
    from PIL import Image

    frames = _frames(video)
    speaking = max(scene.turns, key=lambda t: t["end"] - t["start"])
    index = min(len(frames) - 1, int((speaking["start"] + speaking["end"]) / 2 * 25))
    big = cv2.resize(frames[index], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    for k, (x, y, side) in enumerate(scene.squares):
        text = f"{k + 1} " + ("speaks" if speaking["face"] == k + 1 else "listens")
        (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
        at = (int(2 * (x + side / 2) - w / 2), int(2 * y) - 14)
        cv2.putText(big, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(big).save(out)
    print(f"frame {index} written to {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=2, help="held-out group scenes measured for quality")
    p.add_argument("--faces", type=int, default=3, help="faces per quality scene")
    p.add_argument("--seconds", type=float, default=9.0, help="length of a quality scene")
    p.add_argument("--size", type=int, default=128, help="side of the largest portrait, pixels")
    p.add_argument("--overlap", type=float, default=0.15, help="share of a portrait its right neighbour covers")
    p.add_argument("--mix", action="store_true", help="also render each quality scene from its mix and turns")
    p.add_argument("--counts", type=int, nargs="*", default=[1, 2, 4, 6], help="faces of the cost scenes")
    p.add_argument("--cost-seconds", type=float, default=4.0, help="length of a cost scene")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each cost run (OMP_NUM_THREADS)")
    p.add_argument(
        "--repeats", type=int, default=3, help="interleaved runs of each cost measurement (the fastest counts)"
    )
    p.add_argument("--long-seconds", type=float, default=0.0, help="also a 2-face scene this long: peak RSS vs length")
    p.add_argument("--detection", action="store_true", help="also count faces found on real group photos")
    p.add_argument("--floatalk", help="how to run floatalk (default: found as _common.floatalk_command does)")
    p.add_argument("--sheet", type=Path, help="write a frame of the first scene, faces numbered, to this PNG")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    args = p.parse_args(argv)
    info = machine()
    print_machine(info)
    payload: dict = {"machine": info, "settings": {k: str(v) for k, v in vars(args).items()}}
    from floatalk import FloatPipeline

    pipe = FloatPipeline.from_pretrained("bundled")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.scenes:
            result = quality(pipe, args, folder)
            scene, video = result.pop("first")
            payload["quality"] = result
            worst = ", ".join(f"{k} {v:.2f}" for k, v in result["worst"].items())
            print(f"worst over every face: {worst}")
            for name, ok in result["passed"].items():
                print(f"{'PASS' if ok else 'FAIL'}: {name}")
            if args.sheet:
                contact_sheet(scene, video, args.sheet)
        if args.counts:
            payload["cost"] = cost(args, folder)
        if args.long_seconds:
            payload["length_memory"] = length_memory(args, folder)
    if args.detection:
        payload["detection"] = detection()
    if args.json:
        write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

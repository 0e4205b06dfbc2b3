"""Validate the landmark (face-mesh) lip-sync meter on the synthetic world, where the truth is known.

For held-out world seeds and several frame sizes, on each clip's mp4 (decoded frames and AAC
soundtrack): the meter's r at offset 0 with the clip's own audio (ground truth), with the audio
delayed by 0.4 s and with another clip's audio; its best offset; the Pearson r of its
mouth-opening curve with the world's hidden `mouth_open` (only this script reads the JSON); and
the blinks `floatalk.evaluation.face_track.count_blinks` counts against the world's (its `blink`
rising through 0.5).
With --model, the bundled demo model animates each clip's first frame with its audio (no crop)
and both meters, landmark and synthetic-world, score the output.

    python benchmarks/eval_mesh_meter.py [--clips 8] [--seconds 4] [--sizes 128 256] [--seed 5151] [--model]
                                         [--json outputs/bench/mesh_meter.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import machine, print_machine, write_json
from floatalk.evaluation.face_track import (
    count_blinks,
    eye_openness,
    mouth_opening_mesh,
    score_lipsync_mesh,
    track_faces,
)
from floatalk.evaluation.lipsync import pearson, score_lipsync
from floatalk.io.audio import load_audio
from floatalk.io.video import read_video_frames
from floatalk.synth import generate_world

SHIFT = 6400  # 0.4 s at 16 kHz


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=8, help="clips per size")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--seed", type=int, default=5151, help="world seed (training used 1; each size adds its side)")
    p.add_argument("--model", action="store_true", help="also score the bundled demo model's outputs")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    info = machine()
    print_machine(info)
    pipe = None
    if args.model:
        import torch

        from floatalk import FloatPipeline

        torch.set_num_threads(2)
        pipe = FloatPipeline.from_pretrained("bundled")
    results = {}
    for size in args.sizes:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            world = Path(tmp) / "world"
            generate_world(world, clips=args.clips, seconds=args.seconds, size=size, seed=args.seed + size, workers=1)
            clips = []
            for i in range(args.clips):
                stem = world / f"clip_{i:05d}"
                truth = json.loads(stem.with_suffix(".json").read_text())
                clips.append((read_video_frames(stem.with_suffix(".mp4")), load_audio(stem.with_suffix(".mp4")), truth))
            t0 = time.perf_counter()
            tracks = [track_faces(frames) for frames, _, _ in clips]
            per_frame = (time.perf_counter() - t0) / sum(len(f) for f, _, _ in clips)
            for i, ((frames, audio, truth), track) in enumerate(zip(clips, tracks)):
                late = np.concatenate([np.zeros(SHIFT, np.float32), audio[:-SHIFT]])
                blink = np.asarray(truth["blink"])
                own = score_lipsync_mesh(track, audio)
                row = {
                    "clip": i,
                    "gt": own["correlation"],
                    "best_offset": own["best_offset"],
                    "confidence": own["confidence"],
                    "shifted": score_lipsync_mesh(track, late)["correlation"],
                    "foreign": score_lipsync_mesh(track, clips[(i + 1) % len(clips)][1])["correlation"],
                    "vs_truth": pearson(mouth_opening_mesh(track.filled()), truth["mouth_open"]),
                    "found": track.found_fraction,
                    "blinks": count_blinks(eye_openness(track.filled())),
                    "blinks_truth": int(np.sum((blink[1:] > 0.5) & (blink[:-1] <= 0.5))),
                }
                if pipe is not None:
                    out = pipe(image=frames[0], audio=audio, crop=False, emotion=None, seed=15)
                    row["model_mesh"] = score_lipsync_mesh(out.frames, audio)["correlation"]
                    row["model_world"] = score_lipsync(out.frames, audio)["correlation"]
                rows.append(row)
        keys = [k for k in rows[0] if k not in ("clip", "best_offset", "blinks", "blinks_truth")]
        mean = {k: statistics.mean(r[k] for r in rows) for k in keys}
        mean["best_offset_0"] = statistics.mean(r["best_offset"] == 0 for r in rows)
        mean["mesh_seconds_per_frame"] = per_frame
        mean["blinks"] = sum(r["blinks"] for r in rows)
        mean["blinks_truth"] = sum(r["blinks_truth"] for r in rows)
        mean["blink_counts_exact"] = statistics.mean(r["blinks"] == r["blinks_truth"] for r in rows)
        results[size] = {"rows": rows, "mean": mean}
        print(
            f"{size} px, {len(rows)} clips x {args.seconds:g} s (seed {args.seed + size}): GT r {mean['gt']:.3f} "
            f"(min {min(r['gt'] for r in rows):.3f}), best offset 0 on {mean['best_offset_0']:.0%}, "
            f"shifted 0.4 s {mean['shifted']:.3f}, another clip's audio {mean['foreign']:.3f}, "
            f"curve vs truth r {mean['vs_truth']:.3f}, face found {mean['found']:.1%}, "
            f"mesh {1000 * per_frame:.1f} ms/frame, blinks {mean['blinks']} counted of {mean['blinks_truth']} "
            f"(exact on {mean['blink_counts_exact']:.0%} of clips)"
        )
        if pipe is not None:
            print(
                f"  bundled model outputs: landmark meter {mean['model_mesh']:.3f}, "
                f"world meter {mean['model_world']:.3f}"
            )
    if args.json:
        write_json(Path(args.json), {"machine": info, "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The quality of each ingredient of `--precision fast` against float32, and its speed.

Two measurements, each ingredient run alone and the fast path as shipped:

* frames: the parity inputs (tests/data/parity/inputs_a, the whole 3.2 s clip or --parity-seconds)
  through the release-size stand-in weights (`make_release_dir.py`), uncropped, seed 15: PSNR of
  every frame against float32's (all frames pooled), the motion latents' relative L2 distance,
  and seconds per frame (sampling and decoding, after the model is loaded);
* lip sync: held-out clips of the synthetic world (a seed training never used) through the
  bundled model: the mean lip-sync correlation (`floatalk.evaluation.score_lipsync`, offset 0)
  and its ratio to float32's.

The fast path is offered where PSNR >= 33 dB and lip sync >= 0.95 of float32's.

    python benchmarks/eval_fast_path.py [--checkpoint checkpoints/parity_release] [--clips 6]
        [--seconds 4] [--parity-seconds 3.2] [--json outputs/bench/fast_path.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from _common import machine, print_machine, write_json

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "data" / "parity"
PSNR_FLOOR = 33.0
LIPSYNC_FLOOR = 0.95


def ingredients(pipe) -> dict:
    """name -> RunPrecision: float32, each fast-path ingredient alone (the bfloat16 decoder is
    measured on every CPU, though fast uses it only with native bfloat16), and fast as shipped."""
    import torch

    from floatalk.engine.precision import RunPrecision, quantize_linears

    model, f32, bf16 = pipe.model, torch.float32, torch.bfloat16
    int8_fmt = quantize_linears(model.fmt, keep=("t_embedder",)).eval()
    int8_audio = quantize_linears(model.audio_encoder).eval()
    return {
        "float32": RunPrecision("float32", model.fmt, f32, f32, model.audio_encoder),
        "int8 FMT": RunPrecision("fast", int8_fmt, f32, f32, model.audio_encoder),
        "int8 audio encoder": RunPrecision("fast", model.fmt, f32, f32, int8_audio),
        "bfloat16 decoder (>= 256 px)": RunPrecision("fast", model.fmt, f32, bf16, model.audio_encoder),
        "fast (as shipped)": pipe.precision("fast"),
    }


def generate(pipe, run, image, audio, **options):
    """One generation with `run` standing in for the fast path: (frames, motion, seconds)."""
    pipe._precisions["fast"] = run  # the engine's cache of built precisions (benchmark only)
    t0 = time.perf_counter()
    out = pipe(image, audio, crop=False, seed=15, precision="fast", **options)
    return out.frames, out.motion, time.perf_counter() - t0


def parity_frames(checkpoint: Path, seconds: float) -> list[dict]:
    import torch

    from floatalk.evaluation import psnr
    from floatalk.io.audio import load_audio
    from floatalk.pipeline import FloatPipeline

    torch.set_num_threads(2)
    pipe = FloatPipeline.from_pretrained(checkpoint)
    wave = load_audio(PARITY / "inputs_a" / "audio.wav", sample_rate=pipe.sample_rate)
    wave = wave[: int(seconds * pipe.sample_rate)]
    image = PARITY / "inputs_a" / "image.png"
    runs = ingredients(pipe)
    rows, reference = [], None
    for name, run in runs.items():
        load = os.getloadavg()[0]
        frames, motion, seconds_taken = generate(pipe, run, image, wave)
        if reference is None:
            reference = (frames, motion)
        ref_frames, ref_motion = reference
        row = {
            "ingredient": name,
            "frames": len(frames),
            "psnr_db": psnr(frames, ref_frames) if name != "float32" else float("inf"),
            "motion_rel_l2": float((motion - ref_motion).norm() / ref_motion.norm()),
            "s_per_frame": seconds_taken / len(frames),
            "load_avg_1min": load,
        }
        rows.append(row)
        print(
            f"| {name} | {row['frames']} | {row['psnr_db']:.1f} | {row['motion_rel_l2']:.4f} "
            f"| {row['s_per_frame']:.3f} | {load:.1f} |",
            flush=True,
        )
    return rows


def lipsync(clips: int, seconds: float, seed: int) -> list[dict]:
    import torch

    from floatalk.assets import DEMO_EXPRESSION_SCALE, demo_model_path
    from floatalk.evaluation import score_lipsync
    from floatalk.pipeline import FloatPipeline
    from floatalk.synth.world import clip_specs, make_clip

    torch.set_num_threads(2)
    pipe = FloatPipeline.from_pretrained(demo_model_path())
    specs = clip_specs(clips, seconds, pipe.image_size, seed, expression_scale=DEMO_EXPRESSION_SCALE)
    world = [make_clip(spec, draw=1) for spec in specs]
    rows = []
    base = None
    for name, run in ingredients(pipe).items():
        scores = []
        for clip in world:
            frames, _, _ = generate(pipe, run, clip.frames[0], clip.audio, emotion=None, batch_size=8)
            scores.append(score_lipsync(frames, clip.audio)["correlation"])
        mean = float(np.mean(scores))
        base = mean if base is None else base
        rows.append({"ingredient": name, "lipsync": mean, "ratio": mean / base, "per_clip": scores})
        print(f"| {name} | {mean:.3f} | {mean / base:.3f} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "parity_release")
    p.add_argument("--parity-seconds", type=float, default=3.2, help="seconds of the parity speech (default all)")
    p.add_argument("--clips", type=int, default=6, help="held-out synthetic clips for lip sync (default 6)")
    p.add_argument("--seconds", type=float, default=4.0, help="their length (default 4)")
    p.add_argument("--seed", type=int, default=9001, help="world seed of the held-out clips (default 9001)")
    p.add_argument("--skip-parity", action="store_true", help="only the lip-sync part (no release-size weights)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    from floatalk.engine.precision import native_bfloat16

    info = machine()
    print_machine(info)
    native = "yes" if native_bfloat16() else "no"
    print(f"native bfloat16 on this CPU: {native} (fast decodes in bfloat16 only if yes)")
    payload: dict = {"benchmark": "fast_path", "machine": info, "native_bfloat16": native_bfloat16()}
    if not args.skip_parity:
        print(f"\nframes on the parity inputs, release-size stand-in ({args.checkpoint}), against float32:")
        print("| ingredient | frames | PSNR dB | motion rel. L2 | s/frame | load |")
        print("|---|---|---|---|---|---|")
        payload["parity"] = parity_frames(args.checkpoint, args.parity_seconds)
    print(f"\nlip sync, bundled model, {args.clips} held-out clips of {args.seconds:g} s (world seed {args.seed}):")
    print("| ingredient | lip sync | ratio to float32 |")
    print("|---|---|---|")
    payload["lipsync"] = lipsync(args.clips, args.seconds, args.seed)
    verdicts = []
    for row in payload["lipsync"]:
        parity = next((r for r in payload.get("parity", []) if r["ingredient"] == row["ingredient"]), None)
        holds = row["ratio"] >= LIPSYNC_FLOOR and (parity is None or parity["psnr_db"] >= PSNR_FLOOR)
        verdicts.append({"ingredient": row["ingredient"], "holds": holds})
        print(f"{row['ingredient']}: {'holds' if holds else 'FAILS'} (PSNR >= {PSNR_FLOOR:g} dB, lip sync >= 0.95x)")
    payload["verdicts"] = verdicts
    print(f"load at the end: {os.getloadavg()[0]:.1f}")
    if args.json:
        write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())

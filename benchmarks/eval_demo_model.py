"""Evaluate a model on held-out clips of the synthetic world and print the model-card figures.

Clips come from a world seed that training never used (new identities, new speech). For each
clip the model animates the clip's first frame with the clip's audio (no crop, emotion
predicted from speech), and `floatalk.evaluation` measures, without reading ground truth:

* lip sync: Pearson correlation (offset 0) between the mouth opening measured in the video
  and the opening implied by the audio; the same for the world's own rendering (ground truth);
  and for the generated video scored against another clip's audio (shuffled);
* identity: PSNR of the first generated frame against the source frame;
* emotion redirection: the same portrait and audio with emotion forced to each of happy, sad,
  surprise and angry vs neutral; mouth-corner height and brow height (face-box units, see
  floatalk/evaluation/expression.py) and their change against neutral.

Usage: python benchmarks/eval_demo_model.py [--checkpoint DIR] [--clips 12] [--seed 9001] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="model folder (default: the bundled demo model)")
    ap.add_argument("--clips", type=int, default=12, help="held-out clips to evaluate")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=9001, help="world seed (training used 1)")
    ap.add_argument("--json", default=None, help="also write all numbers to this file")
    args = ap.parse_args()

    import torch

    from floatalk import FloatPipeline
    from floatalk.assets import demo_model_path
    from floatalk.evaluation import psnr, score_lipsync
    from floatalk.evaluation.expression import measure_expression
    from floatalk.synth.world import clip_specs, make_clip

    torch.set_num_threads(2)
    path = args.checkpoint or demo_model_path()
    pipe = FloatPipeline.from_pretrained(path)
    size = pipe.image_size
    clips = [make_clip(s) for s in clip_specs(args.clips, args.seconds, size, args.seed)]
    rows = []
    t0 = time.time()
    generated = []
    for clip in clips:
        out = pipe(image=clip.frames[0], audio=clip.audio, crop=False, emotion=None, seed=15, batch_size=8)
        generated.append(out.frames)
        rows.append(
            {
                "clip": clip.spec.name,
                "emotion_true": clip.spec.emotion,
                "emotion_predicted": ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"][
                    int(out.emotion.argmax())
                ],
                "gt": score_lipsync(clip.frames, clip.audio)["correlation"],
                "model": score_lipsync(out.frames, clip.audio)["correlation"],
                "model_best_offset": score_lipsync(out.frames, clip.audio)["best_offset"],
                "psnr_first_frame": psnr(out.frames[0], clip.frames[0]),
            }
        )
    for i, row in enumerate(rows):
        other = clips[(i + 1) % len(clips)]
        n = min(len(generated[i]), len(other.audio) // 640)
        row["shuffled"] = score_lipsync(generated[i][:n], other.audio[: n * 640])["correlation"]
    seconds = time.time() - t0

    # Emotion redirection on the first few clips.
    redirect = {}
    for emotion in ("neutral", "happy", "sad", "surprise", "angry"):
        corner, brow = [], []
        for clip in clips[:4]:
            out = pipe(image=clip.frames[0], audio=clip.audio, crop=False, emotion=emotion, seed=15, batch_size=8)
            m = measure_expression(out.frames)["summary"]
            corner.append(m["mouth_corner"])
            brow.append(m["brow_height"])
        redirect[emotion] = {"mouth_corner": float(np.nanmean(corner)), "brow_height": float(np.nanmean(brow))}
    for m in redirect.values():
        m["mouth_corner_vs_neutral"] = m["mouth_corner"] - redirect["neutral"]["mouth_corner"]
        m["brow_height_vs_neutral"] = m["brow_height"] - redirect["neutral"]["brow_height"]

    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("gt", "model", "shuffled", "psnr_first_frame")}
    acc = float(np.mean([r["emotion_true"] == r["emotion_predicted"] for r in rows]))
    print(f"model: {path}")
    print(
        f"held-out world seed {args.seed}: {len(rows)} clips x {args.seconds:.0f} s at {size} px "
        f"(generation {seconds / len(rows):.1f} s per clip)"
    )
    print(
        f"{'clip':12s} {'emotion':9s} {'pred':9s} {'GT r':>6s} {'model r':>8s} {'off':>4s} {'shuf r':>7s} {'PSNR0':>6s}"
    )
    for r in rows:
        print(
            f"{r['clip']:12s} {r['emotion_true']:9s} {r['emotion_predicted']:9s} {r['gt']:6.3f} {r['model']:8.3f} "
            f"{r['model_best_offset']:4d} {r['shuffled']:7.3f} {r['psnr_first_frame']:6.1f}"
        )
    print(
        f"{'mean':32s} {mean['gt']:6.3f} {mean['model']:8.3f} {'':4s} {mean['shuffled']:7.3f} "
        f"{mean['psnr_first_frame']:6.1f}"
    )
    print(f"emotion predicted from speech: {acc:.0%} correct")
    print("emotion redirection (mean over 4 clips; face-box units; vs neutral):")
    for emotion, m in redirect.items():
        print(
            f"  {emotion:9s} mouth_corner {m['mouth_corner']:+.4f} ({m['mouth_corner_vs_neutral']:+.4f})  "
            f"brow_height {m['brow_height']:.4f} ({m['brow_height_vs_neutral']:+.4f})"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "mean": mean, "emotion_accuracy": acc, "redirect": redirect}, f, indent=2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

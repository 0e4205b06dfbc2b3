"""Evaluate a model on held-out clips of the synthetic world and print the model-card figures.

Clips come from a world seed that training never used (new identities, new speech). For each
clip the model animates the clip's first frame with the clip's audio (no crop, emotion
predicted from speech), and `floatalk.evaluation` measures, without reading ground truth:

* lip sync: Pearson correlation (offset 0) between the mouth opening measured in the video
  and the opening implied by the audio; the same for the world's own rendering (ground truth);
  and for the generated video scored against another clip's audio (shuffled);
* identity: PSNR of the first generated frame against the source frame;
* emotion redirection: neutral source faces (held-out clips whose expression only starts after
  --onset s) with their own speech and the emotion forced to each of neutral, happy, sad,
  surprise and angry; mouth-corner height and brow height (face-box units, see
  floatalk/evaluation/expression.py), their change against forced neutral, and the same change
  in the synthetic world's own rendering of those identities with each emotion (the target).

Usage: python benchmarks/eval_demo_model.py [--checkpoint DIR] [--clips 12] [--seed 9001] [--json OUT]
       [--redirect-clips 4] [--onset 1] [--e-cfg-scale 1] [--sheet PNG]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np

REDIRECT_EMOTIONS = ("neutral", "happy", "sad", "surprise", "angry")


def main() -> None:
    from floatalk.assets import DEMO_EXPRESSION_SCALE
    from floatalk.cli.synth import add_expression_scale_flag

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="model folder (default: the bundled demo model)")
    ap.add_argument("--clips", type=int, default=12, help="held-out clips to evaluate")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=9001, help="world seed (training used 1)")
    ap.add_argument("--json", default=None, help="also write all numbers to this file")
    ap.add_argument("--redirect-clips", type=int, default=4, help="neutral source faces for emotion redirection")
    ap.add_argument("--onset", type=float, default=1.0, help="seconds of neutral face in the redirection clips")
    add_expression_scale_flag(ap, default=DEMO_EXPRESSION_SCALE)
    ap.add_argument("--e-cfg-scale", type=float, default=1.0, help="emotion guidance scale when redirecting")
    ap.add_argument("--sheet", default=None, help="save the middle frame of each redirected emotion (one clip) as PNG")
    args = ap.parse_args()
    scale = args.expression_scale

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
    clips = [make_clip(s) for s in clip_specs(args.clips, args.seconds, size, args.seed, expression_scale=scale)]
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

    # Emotion redirection: neutral source faces (clips whose expression starts after --onset s, so
    # frame 0 is neutral), each clip's own speech, the emotion forced to each name. Reference: the
    # world's own rendering of the same identity and clip seed with that emotion from frame 0.
    redirect_specs = clip_specs(
        args.redirect_clips, args.seconds, size, args.seed, onset=args.onset, expression_scale=scale
    )
    sources = [make_clip(spec) for spec in redirect_specs]
    redirect: dict[str, dict[str, float]] = {}
    sheet_row = []
    for emotion in REDIRECT_EMOTIONS:
        model_m, world_m = [], []
        for i, (spec, clip) in enumerate(zip(redirect_specs, sources)):
            out = pipe(
                image=clip.frames[0],
                audio=clip.audio,
                crop=False,
                emotion=emotion,
                seed=15,
                batch_size=8,
                e_cfg_scale=args.e_cfg_scale,
            )
            model_m.append(measure_expression(out.frames)["summary"])
            world = make_clip(replace(spec, emotion=emotion, onset=0.0))
            world_m.append(measure_expression(world.frames)["summary"])
            if i == 0:
                sheet_row.append(out.frames[len(out.frames) // 2])
        redirect[emotion] = {
            f"{who}_{k}": float(np.nanmean([m[k] for m in ms]))
            for who, ms in (("model", model_m), ("world", world_m))
            for k in ("mouth_corner", "brow_height")
        }
    base = redirect["neutral"]
    for m in redirect.values():
        for k in list(m):
            if not k.endswith("_vs_neutral"):
                m[f"{k}_vs_neutral"] = m[k] - base[k]
    if args.sheet:
        from PIL import Image

        Image.fromarray(np.concatenate(sheet_row, axis=1)).save(args.sheet)

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
    print(
        f"emotion redirection ({len(redirect_specs)} neutral source faces, e_cfg_scale {args.e_cfg_scale}; "
        "face-box units; change vs forced neutral; world = the synthetic world's own rendering):"
    )
    print(f"  {'emotion':9s} {'mouth corner: model':>20s} {'world':>8s}   {'brow height: model':>19s} {'world':>8s}")
    for emotion, m in redirect.items():
        print(
            f"  {emotion:9s} {m['model_mouth_corner_vs_neutral']:+20.4f} {m['world_mouth_corner_vs_neutral']:+8.4f}"
            f"   {m['model_brow_height_vs_neutral']:+19.4f} {m['world_brow_height_vs_neutral']:+8.4f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "mean": mean, "emotion_accuracy": acc, "redirect": redirect}, f, indent=2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

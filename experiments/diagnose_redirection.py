"""Where emotion redirection fails: stage 1 (rendering) or stage 2 (the emotion label).

On held-out clips of the synthetic world whose face is neutral for --onset s before the clip's
emotion eases in (one clip per emotion in turn), it prints per clip:

* world: the change of mouth-corner and brow height (floatalk.evaluation.expression, face-box
  units) from the neutral part (frames 0-19) to the expressive part (frames 50 on);
* AE: the same change in the clip re-rendered by the motion auto-encoder from its neutral first
  frame with every frame's own motion code (`floatalk.training.probe.reconstruct_clip`, as the
  stage-1 probe does), and that re-rendering's lip sync; plus the shift of
  the mean motion latent across the onset, and its per-clip spread (std over frames, norm);
* PSNR against the clip of the re-rendering, of the source frame held still (no animation) and
  between the two: an auto-encoder that renders head motion beats the still frame; one that
  mostly copies its source sits closer to the still frame than to the clip;
* FMT (only with a full model folder): |mean motion latent, emotion forced to the clip's
  emotion, minus forced neutral| after the onset, and its cosine with the true latent shift,
  for each --e-cfg-scale.

Usage: python experiments/diagnose_redirection.py [--checkpoint MODEL_OR_STAGE1_RUN] [--clips 7]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    from floatalk.assets import DEMO_EXPRESSION_SCALE
    from floatalk.cli.synth import add_expression_scale_flag

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="model folder or stage-1 run (default: the bundled model)")
    ap.add_argument("--clips", type=int, default=7)
    ap.add_argument("--seed", type=int, default=9001, help="world seed (training used 1)")
    ap.add_argument("--onset", type=float, default=1.0)
    add_expression_scale_flag(ap, default=DEMO_EXPRESSION_SCALE)
    ap.add_argument("--e-cfg-scales", type=float, nargs="+", default=[1.0, 3.0])
    args = ap.parse_args()
    scale = args.expression_scale

    import numpy as np
    import torch

    from floatalk import FloatPipeline
    from floatalk.assets import demo_model_path
    from floatalk.convert import to_tensor
    from floatalk.evaluation import psnr, score_lipsync
    from floatalk.evaluation.expression import measure_expression
    from floatalk.model_folders import is_floatalk_folder
    from floatalk.synth.world import clip_specs, make_clip
    from floatalk.training.motion_ae_trainer import load_motion_ae
    from floatalk.training.probe import reconstruct_clip

    torch.set_num_threads(2)
    path = Path(args.checkpoint) if args.checkpoint else demo_model_path()
    pipe = FloatPipeline.from_pretrained(path) if is_floatalk_folder(path) else None
    ae = pipe.model.motion_autoencoder if pipe is not None else load_motion_ae(path)

    def change(frames: np.ndarray) -> tuple[float, float]:
        before, after = measure_expression(frames[:20])["summary"], measure_expression(frames[50:])["summary"]
        return after["mouth_corner"] - before["mouth_corner"], after["brow_height"] - before["brow_height"]

    print(f"model: {path}")
    with torch.inference_mode():
        for spec in clip_specs(args.clips, 4.0, ae.cfg.size, args.seed, onset=args.onset, expression_scale=scale):
            clip = make_clip(spec)
            rec = reconstruct_clip(ae, clip.frames)
            r = ae.motion(ae.encode(torch.cat([to_tensor(f) for f in clip.frames]))[1])
            (wc, wb), (rc, rb) = change(clip.frames), change(rec)
            held = np.repeat(clip.frames[:1], len(clip.frames), axis=0)  # the source, not animated
            shift = r[60:].mean(0) - r[:20].mean(0)
            line = (
                f"{spec.emotion:9s} world corner {wc:+.4f} brow {wb:+.4f} | AE corner {rc:+.4f} brow {rb:+.4f} "
                f"lip sync {score_lipsync(rec, clip.audio)['correlation']:.2f} latent shift {shift.norm():.2f} "
                f"spread {r.std(0).norm():.2f} | PSNR vs clip: AE {psnr(rec, clip.frames):.1f} dB, "
                f"frame 0 held {psnr(held, clip.frames):.1f} dB, AE vs frame 0 {psnr(rec, held):.1f} dB"
            )
            if pipe is not None and spec.emotion != "neutral":
                for cfg in args.e_cfg_scales:
                    forced = {
                        e: pipe(
                            image=clip.frames[0], audio=clip.audio, crop=False, emotion=e, seed=15, e_cfg_scale=cfg
                        ).motion
                        for e in ("neutral", spec.emotion)
                    }
                    d = (forced[spec.emotion] - forced["neutral"])[60:].mean(0)
                    cos = torch.nn.functional.cosine_similarity(d, shift, dim=0).item()
                    line += f" | FMT e_cfg {cfg:g}: {d.norm():.2f} cos {cos:+.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()

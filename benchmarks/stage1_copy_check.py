"""Does a stage-1 auto-encoder render motion, or mostly copy its source frame?

On random (source, driving) pairs of a preprocessed data folder (`floatalk.training.motion_ae_trainer.pair_batch`,
plain pairs: both frames anywhere in one clip) it prints, per split, the mean L1 (pixel range
[-1, 1]) between the rendering and the driving frame, between the source and the driving frame
(what copying the source scores) and between the rendering and the source. Then, on the first
validation clip's first frame, how much the rendering changes (mean absolute) when each of the
first --coords motion coordinates is moved by +-3.

Usage: python benchmarks/stage1_copy_check.py --checkpoint STAGE1_RUN_OR_MODEL --data DATA [--pairs 32]
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="stage-1 run, its motion_ae/ folder or a model folder")
    ap.add_argument("--data", required=True, help="preprocessed data folder (floatalk preprocess)")
    ap.add_argument("--pairs", type=int, default=32, help="random pairs per split")
    ap.add_argument("--clips", type=int, default=40, help="clips per split to draw from")
    ap.add_argument("--coords", type=int, default=7, help="motion coordinates to perturb")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()

    import numpy as np
    import torch

    from floatalk.pipeline import normalize_image
    from floatalk.training.data import read_manifest
    from floatalk.training.motion_ae_trainer import load_motion_ae, pair_batch

    torch.set_num_threads(2)
    ae = load_motion_ae(args.checkpoint).eval()
    _, clips = read_manifest(args.data)
    print(f"model: {args.checkpoint}")
    with torch.inference_mode():
        for split in ("train", "val"):
            chosen = [c for c in clips if c.split == split][: args.clips]
            if not chosen:
                continue
            frames = [c.load_frames() for c in chosen]
            src, drv, _, _ = pair_batch(chosen, frames, args.pairs, np.random.default_rng(args.seed))
            s_src, _, feats = ae.encode(src)
            _, lam_drv, _ = ae.encode(drv)
            fake = ae.decode(s_src + ae.motion(lam_drv), feats).clamp(-1, 1)
            print(
                f"{split:5s} L1 rendering-driving {(fake - drv).abs().mean():.4f} | source-driving (copy) "
                f"{(src - drv).abs().mean():.4f} | rendering-source {(fake - src).abs().mean():.4f}"
            )
        val = [c for c in clips if c.split == "val"] or clips
        s, lam, feats = ae.encode(normalize_image(np.asarray(val[0].load_frames()[0])))
        base = ae.decode(s + ae.motion(lam), feats)
        for k in range(min(args.coords, lam.shape[1])):
            changes = []
            for d in (-3.0, 3.0):
                moved = lam.clone()
                moved[0, k] += d
                changes.append((ae.decode(s + ae.motion(moved), feats) - base).abs().mean().item())
            print(f"motion coordinate {k}: rendering changes by {changes[0]:.4f} (-3) / {changes[1]:.4f} (+3)")


if __name__ == "__main__":
    main()

"""Does a stage-1 auto-encoder render motion, or mostly copy its source frame?

On random (source, driving) pairs of a preprocessed data folder (`floatalk.training.motion_ae_trainer.pair_batch`,
plain pairs: both frames anywhere in one clip) it prints, per split, the mean L1 (pixel range
[-1, 1]) between the rendering and the driving frame, between the source and the driving frame
(what copying the source scores) and between the rendering and the source. Then, on the first
validation clip's first frame, how much the rendering changes (mean absolute) when each of the
first --coords motion coordinates is moved by +-3. Where the data has per-frame landmarks (the
synthetic world's), also, per decoder scale, the landmark flow error on those pairs (how far, in
pixels of the image, the warp at each driving landmark samples from that landmark in the source;
`floatalk.training.losses.landmark_flow_loss`) next to what an identity warp gets, and the
correlation between the warp's departure from the identity warp and the true one; and the same
error per landmark group at the finest scale.

Usage: python experiments/stage1_copy_check.py --checkpoint STAGE1_RUN_OR_MODEL --data DATA [--pairs 32]
"""

from __future__ import annotations

import argparse


def flow_report(grids: list, pts, size: int) -> None:
    """Print the landmark flow error per scale and per landmark group (pixels of a `size` px image)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from floatalk.models.motion_ae import identity_grid
    from floatalk.synth.face import LANDMARK_NAMES
    from floatalk.training.losses import landmark_flow_loss

    px = size / 2  # grid units -> pixels
    src, drv = pts[:, 0], pts[:, 1]

    def sample(grid: torch.Tensor) -> torch.Tensor:  # the grid at the driving landmarks, (B, L, 2)
        return F.grid_sample(grid.permute(0, 3, 1, 2), drv.unsqueeze(2), align_corners=False)[..., 0].transpose(1, 2)

    for grid in grids:
        still = identity_grid(grid.shape[1], grid.shape[2], grid.device).expand_as(grid)
        moved, rest = sample(grid), sample(still)
        corr = np.corrcoef((moved - rest).flatten(), (src - rest).flatten())[0, 1]
        print(
            f"      landmark flow at {grid.shape[1]:3d} px: error {landmark_flow_loss([grid], src, drv) * px:.2f} px "
            f"(identity warp {landmark_flow_loss([still], src, drv) * px:.2f} px), "
            f"correlation with the true departure {corr:+.2f}"
        )
    moved = sample(grids[-1])
    for group in ("brow", "eye", "mouth", "lip", "other"):
        idx = [i for i, n in enumerate(LANDMARK_NAMES) if n.startswith(group)]
        if group == "other":
            idx = [i for i, n in enumerate(LANDMARK_NAMES) if not n.startswith(("brow", "eye", "mouth", "lip"))]
        err = (moved[:, idx] - src[:, idx]).norm(dim=-1).mean() * px
        shift = (src[:, idx] - drv[:, idx]).norm(dim=-1).mean() * px
        print(f"      {group:5s} landmarks: moved {shift:.2f} px, finest-scale error {err:.2f} px")


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

    from floatalk.convert import to_tensor
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
            rows = [c.load_annotation("landmarks") for c in chosen]
            marks = rows if all(r is not None for r in rows) else None
            src, drv, index = pair_batch(frames, args.pairs, np.random.default_rng(args.seed))
            pts = None
            if marks is not None:
                pts = torch.from_numpy(np.stack([np.stack([marks[c][i], marks[c][j]]) for c, i, j in index])).float()
            s_src, _, feats = ae.encode(src)
            _, lam_drv, _ = ae.encode(drv)
            grids: list[torch.Tensor] = []
            fake = ae.decode(s_src + ae.motion(lam_drv), feats, grids).clamp(-1, 1)
            print(
                f"{split:5s} L1 rendering-driving {(fake - drv).abs().mean():.4f} | source-driving (copy) "
                f"{(src - drv).abs().mean():.4f} | rendering-source {(fake - src).abs().mean():.4f}"
            )
            if marks is not None:
                flow_report(grids, pts, src.shape[-1])
        val = [c for c in clips if c.split == "val"] or clips
        s, lam, feats = ae.encode(to_tensor(np.asarray(val[0].load_frames()[0])))
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

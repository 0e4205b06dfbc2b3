"""Which half of stage 1 is slow to learn motion: the encoder or the decoder?

Trains a fresh auto-encoder of the given preset for --steps steps on the landmark flow loss alone
(`floatalk.training.losses.landmark_flow_loss`, on a data folder whose clips carry landmarks, as
the synthetic world's do), feeding the decoder one of two motion codes:

* encoder: style = s_src + Q lambda_drv, the real set-up (the encoder must learn the motion);
* truth:   style = s_src + Q delta, delta the true landmark displacement from source to driving
           frame projected on its first 20 principal components (whitened, from training pairs):
           the motion handed over clean, so only the decoder has to learn.

Every --every steps it prints the finest-scale landmark flow error, in pixels, on 64 fixed pairs
of the held-out clips (an identity warp scores the figure printed at step 0).

Usage: python experiments/stage1_flow_learnability.py --data DATA [--motion encoder truth] [--steps 200]
"""

from __future__ import annotations

import argparse
import time


def flow_error(ae, motion: str, batch, basis, spread, finest: bool = False):
    """Landmark flow loss of `batch` (a PairBatch) through `ae` with the chosen motion code; at every
    decoder scale, or at the finest only."""
    from floatalk.training.losses import landmark_flow_loss

    s_src, _, feats = ae.encode(batch.src)
    if motion == "truth":
        code = (batch.marks[:, 0] - batch.marks[:, 1]).flatten(1) @ basis / spread
        style = s_src + ae.motion(code)
    else:
        style = s_src + ae.motion(ae.encode(batch.drv)[1])
    grids: list = []
    ae.decode(style, feats, grids)
    return landmark_flow_loss(grids[-1:] if finest else grids, batch.marks[:, 0], batch.marks[:, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="preprocessed data folder with landmarks (floatalk preprocess)")
    ap.add_argument("--motion", nargs="+", choices=("encoder", "truth"), default=["encoder", "truth"])
    ap.add_argument("--config", default="demo", help="model preset (default demo)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--adam-beta1", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from types import SimpleNamespace

    import numpy as np
    import torch

    from floatalk.models.motion_ae import MotionAutoEncoder
    from floatalk.training.auxiliary import clip_landmarks
    from floatalk.training.data import read_manifest
    from floatalk.training.motion_ae_trainer import pair_batch, start_with_identity_flow
    from floatalk.training.presets import preset

    torch.set_num_threads(2)
    meta, clips = read_manifest(args.data)
    train = [c for c in clips if c.split == "train"]
    val = [c for c in clips if c.split == "val"] or train
    frames, marks = [c.load_frames() for c in train], clip_landmarks(train)
    val_frames, val_marks = [c.load_frames() for c in val], clip_landmarks(val)
    near = (0.0, 0)  # plain pairs, half of them from the clip's first frames (as inference does)

    def pairs(n: int, seed: int, held_out: bool = False):
        """Pairs with both frames' landmarks: (src, drv, marks (B, 2, L, 2))."""
        clip_frames, clip_marks = (val_frames, val_marks) if held_out else (frames, marks)
        batch = pair_batch(clip_frames, n, np.random.default_rng(seed), near, 0.5)
        both = np.stack([np.stack([clip_marks[c][i], clip_marks[c][j]]) for c, i, j in batch.pairs])
        return SimpleNamespace(src=batch.src, drv=batch.drv, marks=torch.from_numpy(both).float())

    shifts = (lambda m: (m[:, 0] - m[:, 1]).flatten(1))(pairs(2000, 12345).marks)  # (N, 2L)
    _, _, basis = torch.pca_lowrank(shifts, q=20, center=False)  # (2L, 20)
    spread = (shifts @ basis).std(dim=0)
    px = meta["size"] / 2  # grid units -> pixels
    fixed = pairs(64, 999, held_out=True)

    for motion in args.motion:
        torch.manual_seed(args.seed)
        ae = MotionAutoEncoder(preset(args.config).motion_ae)
        start_with_identity_flow(ae)
        opt = torch.optim.Adam(ae.parameters(), lr=args.lr, betas=(args.adam_beta1, 0.99))

        start = time.perf_counter()
        for step in range(0, args.steps + 1):
            if step == 0:
                with torch.no_grad():
                    err = flow_error(ae, motion, fixed, basis, spread, finest=True) * px
                print(f"{motion:7s} step    0: held-out flow error {err:.2f} px (an identity warp)", flush=True)
                continue
            loss = flow_error(ae, motion, pairs(args.batch_size, step), basis, spread)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % args.every == 0 or step == args.steps:
                with torch.no_grad():
                    err = flow_error(ae, motion, fixed, basis, spread, finest=True) * px
                took = time.perf_counter() - start
                print(f"{motion:7s} step {step:4d}: held-out flow error {err:.2f} px ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

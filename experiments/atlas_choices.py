"""Why the motion atlas is measured on the portrait being animated, and why edited latents are
rebuilt inside the motion basis's span (docs/MOTION.md). Bundled model, held-out clips.

For each clip: the head motion left by --head-motion 0 (as a share of the default's, measured
from the frames) with (a) an atlas of another portrait (the synthetic reference portrait) and
(b) the clip's own portrait's atlas, and (c) the own atlas but keeping the part of the latents
outside Q's span; and what dropping that part alone does (head motion and lip sync ratios).

    python experiments/atlas_choices.py --clips 4
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=9001)
    parser.add_argument("--clips", type=int, default=4)
    args = parser.parse_args()

    from floatalk import FloatPipeline
    from floatalk.assets import DEMO_EXPRESSION_SCALE
    from floatalk.editing import EffectEditor, MotionControls, measure_atlas
    from floatalk.evaluation import score_lipsync
    from floatalk.face_motion import head_motion_energy, head_track
    from floatalk.synth.world import clip_specs, make_clip

    torch.set_num_threads(2)
    pipe = FloatPipeline.from_pretrained("bundled")
    Q = pipe.model.motion_autoencoder.dec.direction.basis()
    portrait = make_clip(clip_specs(1, 0.2, 128, 31337, onset=0.1)[0]).frames[0]  # another, neutral identity
    reference = measure_atlas(pipe, pipe.encode_image(portrait, crop=False))
    for spec in clip_specs(args.clips, 4.0, 128, args.seed, expression_scale=DEMO_EXPRESSION_SCALE):
        clip = make_clip(spec)
        out = pipe(clip.frames[0], clip.audio, crop=False)
        src = pipe.encode_image(clip.frames[0], crop=False)

        def render(motion: torch.Tensor, src=src) -> np.ndarray:
            return np.concatenate(list(pipe.decode(src, motion[None])))

        def head(frames: np.ndarray) -> float:
            return head_motion_energy(head_track(frames))

        base = render(out.motion)
        e0, r0 = head(base), score_lipsync(base, clip.audio)["correlation"]
        own = EffectEditor(measure_atlas(pipe, src), Q, src.lam)
        other = EffectEditor(reference, Q, src.lam)
        still = MotionControls(head_motion=0.0)
        in_span = (out.motion @ Q) @ Q.T
        off_span = out.motion - in_span
        kept = own.edit(out.motion, still) + off_span  # the edit with the off-span part put back
        projected = render(in_span)
        left_other = head(render(other.edit(out.motion, still))) / e0
        left_own = head(render(own.edit(out.motion, still))) / e0
        print(
            f"{spec.name}: head left at --head-motion 0: other portrait's atlas {left_other:.2f}, own {left_own:.2f}, "
            f"own keeping the off-span part {head(render(kept)) / e0:.2f}; dropping the off-span part alone: head "
            f"x{head(projected) / e0:.2f}, lip sync x{score_lipsync(projected, clip.audio)['correlation'] / r0:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

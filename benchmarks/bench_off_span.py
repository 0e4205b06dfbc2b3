"""What an edit should do with the motion outside the decoder's basis: drop it, keep it, or keep
the share of the smallest intensity (what floatalk does, `EffectEditor.off_span_share`).

The FMT samples motion latents r_d that lie mostly, not wholly, inside the span of Q; an edit
rebuilds them inside it, and the part outside is motion the atlas cannot attribute. For each
policy, on held-out clips of the synthetic world with the bundled model, all measured from the
rendered frames against the unedited default: head motion and lip sync under --head-motion 0
and 2, mouth-opening amplitude, head motion and lip sync under --mouth-scale 0 and 1.5.

    python benchmarks/bench_off_span.py --seed 9005 --json outputs/bench/off_span.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_machine, write_json  # noqa: E402
from bench_motion_controls import head_energy, lipsync, mouth_amplitude  # noqa: E402

SETTINGS = (("head_motion", 0.0), ("head_motion", 2.0), ("mouth_scale", 0.0), ("mouth_scale", 1.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=9005, help="world seed of the held-out clips (training used 1)")
    parser.add_argument("--clips", type=int, default=4, help="clips (default 4)")
    parser.add_argument("--seconds", type=float, default=4.5, help="clip length (default 4.5)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    import torch

    from floatalk import FloatPipeline
    from floatalk.assets import DEMO_EXPRESSION_SCALE
    from floatalk.editing.controls import EffectEditor
    from floatalk.synth.world import clip_specs, make_clip

    torch.set_num_threads(2)
    started = time.perf_counter()
    info = machine()
    print_machine(info)
    pipe = FloatPipeline.from_pretrained("bundled")
    share = EffectEditor.off_span_share
    policies = {
        "drop": lambda controls, T, own_motion=True: np.zeros(T),
        "share": share,
        "keep": lambda controls, T, own_motion=True: np.ones(T),
    }
    rows = []
    for spec in clip_specs(args.clips, args.seconds, 128, args.seed, onset=1.0, expression_scale=DEMO_EXPRESSION_SCALE):
        clip = make_clip(spec)
        base = pipe(clip.frames[0], clip.audio, crop=False).frames
        head0, sync0, mouth0 = head_energy(base), lipsync(base, clip.audio), mouth_amplitude(base)
        for name, policy in policies.items():
            EffectEditor.off_span_share = staticmethod(policy)
            try:
                for key, value in SETTINGS:
                    frames = pipe(clip.frames[0], clip.audio, crop=False, **{key: value}).frames
                    rows.append(
                        {
                            "clip": spec.name,
                            "policy": name,
                            "setting": f"{key}={value:g}",
                            "head": head_energy(frames) / head0,
                            "mouth": mouth_amplitude(frames) / mouth0,
                            "lipsync": lipsync(frames, clip.audio) / sync0,
                        }
                    )
            finally:
                EffectEditor.off_span_share = staticmethod(share)
        print(f"{spec.name} done", flush=True)
    print(f"\n{'setting':<18}{'policy':<8}{'head x default':>22}{'mouth x default':>22}{'lip sync x default':>22}")
    summary = {}
    for key, value in SETTINGS:
        setting = f"{key}={value:g}"
        for name in policies:
            chosen = [r for r in rows if r["setting"] == setting and r["policy"] == name]
            span = {m: (min(r[m] for r in chosen), max(r[m] for r in chosen)) for m in ("head", "mouth", "lipsync")}
            summary[f"{setting} {name}"] = span
            cells = "".join(f"{f'{lo:.2f}-{hi:.2f}':>22}" for lo, hi in span.values())
            print(f"{setting:<18}{name:<8}{cells}")
    took = time.perf_counter() - started
    print(f"took {took:.0f} s")
    if args.json:
        write_json(args.json, {"machine": info, "seed": args.seed, "rows": rows, "summary": summary, "seconds": took})


if __name__ == "__main__":
    main()

"""`floatalk evaluate` on a folder of bundled-model outputs with their references.

Renders --clips held-out clips of the synthetic world (the references, with their soundtracks),
animates each clip's first frame with its speech using the bundled demo model (no crop, emotion
from the speech: `floatalk.render_video`, as `floatalk generate --no-crop` does), and runs
`floatalk evaluate GEN --reference REF --out REPORT.json` as a user would (every offline metric;
the table it prints is shown).

    python benchmarks/eval_bundled_outputs.py [--clips 4] [--seconds 4] [--seed 8181] [--folder outputs/eval_bundled]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from _common import floatalk_command, machine, print_machine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=8181, help="world seed (training used 1)")
    p.add_argument("--folder", default="outputs/eval_bundled", help="where gen/, ref/ and report.json go")
    p.add_argument("--floatalk", default=None, help="how to run floatalk (default: found as a user would)")
    args = p.parse_args(argv)
    print_machine(machine())

    import torch

    from floatalk import FloatPipeline, GenerateOptions, render_video
    from floatalk.io.video import read_video_frames
    from floatalk.synth import generate_world

    torch.set_num_threads(2)
    folder = Path(args.folder)
    ref, gen = folder / "ref", folder / "gen"
    generate_world(ref, clips=args.clips, seconds=args.seconds, size=128, seed=args.seed, workers=1)
    gen.mkdir(parents=True, exist_ok=True)
    pipe = FloatPipeline.from_pretrained("bundled")
    for i in range(args.clips):
        stem = ref / f"clip_{i:05d}"
        first = read_video_frames(stem.with_suffix(".mp4"))[0]
        render_video(pipe, first, stem.with_suffix(".wav"), gen / f"clip_{i:05d}.mp4", GenerateOptions(crop=False))
    report = folder / "report.json"
    cmd = [*floatalk_command(args.floatalk), "evaluate", str(gen), "--reference", str(ref), "--out", str(report)]
    print("$", " ".join(cmd))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"evaluate took {time.perf_counter() - t0:.1f} s; metrics: {json.loads(report.read_text())['metrics']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

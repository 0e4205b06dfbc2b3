"""`floatalk synth-data`: render a synthetic talking-portrait data set with known lip motion.

Each clip is NAME.mp4 (H.264 + AAC, 25 fps), NAME.wav (16 kHz mono PCM16) and NAME.json (per-frame
ground truth: mouth opening, head pose, blink, face box, emotion, identity); DIR/manifest.json
lists them. The same --seed always gives the same files. See docs/SYNTH.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from floatalk.assets import DEMO_EXPRESSION_SCALE
from floatalk.errors import UserInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "synth-data",
        help="render a synthetic talking-portrait data set with ground-truth lip motion",
        description="Render procedurally drawn talking portraits with speech-like audio whose syllables, loudness "
        "and vowels drive the jaw; per-frame ground truth goes to NAME.json, a list of clips to DIR/manifest.json.",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created if missing; clips are overwritten)"
    )
    p.add_argument("--clips", type=int, default=100, metavar="N", help="number of clips (default 100)")
    p.add_argument("--seconds", type=float, default=4.0, metavar="S", help="length of each clip in seconds (default 4)")
    p.add_argument(
        "--size", type=int, default=128, metavar="PX", help="frame side in pixels, square frames (default 128)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="K",
        help="seed of the whole set: identities, speech, motion, emotions; same seed, same files (default 0)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="W",
        help="processes rendering clips in parallel; the files do not depend on it (default: min(2, CPU count))",
    )
    p.add_argument(
        "--emotion-onset",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds of neutral face at the start of each clip before its emotion eases in over 0.5 s, so "
        "clips hold expression changes to learn from (default 0: the expression holds from the first frame)",
    )
    add_expression_scale_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    p.set_defaults(run=run)
    return p


def add_expression_scale_flag(parser: argparse.ArgumentParser, default: float = 1.0) -> None:
    """Add --expression-scale X, the synthetic world's factor on every emotion's departure from the
    neutral face: 1 for synth-data; the model-card benchmark and the experiments, which draw clips
    of the bundled model's training world, pass `floatalk.assets.DEMO_EXPRESSION_SCALE`."""
    parser.add_argument(
        "--expression-scale",
        type=float,
        default=default,
        metavar="X",
        help="factor on every emotion's departure from the neutral face, 0 to 1.6 (1.6 makes a raised brow "
        f"about 7 px at 128 px instead of 4; default {default:g}; the bundled model was trained on "
        f"{DEMO_EXPRESSION_SCALE:g})",
    )


def run(args: argparse.Namespace) -> int:
    from floatalk.progress import ProgressBar
    from floatalk.synth.world import generate_world

    workers = args.workers if args.workers is not None else min(2, os.cpu_count() or 1)
    if workers < 1:
        raise UserInputError(f"--workers must be at least 1 (got {workers}).")
    if args.seed < 0:
        raise UserInputError(f"--seed must be a non-negative integer (got {args.seed}).")
    start = time.perf_counter()
    with ProgressBar(args.clips, "clip", {"clips": "rendering clips"}, quiet=args.quiet) as bar:
        manifest = generate_world(
            args.out,
            clips=args.clips,
            seconds=args.seconds,
            size=args.size,
            seed=args.seed,
            workers=workers,
            progress=bar,
            onset=args.emotion_onset,
            expression_scale=args.expression_scale,
        )
    if not args.quiet:
        elapsed = time.perf_counter() - start
        print(f"wrote {args.clips} clips and {manifest} in {elapsed:.1f} s", file=sys.stderr)
    return 0

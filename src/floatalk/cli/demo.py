"""`floatalk demo`: the bundled model animates a synthetic portrait with synthetic speech.

Both are made on the spot by the synthetic world (floatalk.synth) from a seed that training
never used, so the demo shows the model on an unseen identity and unseen audio. The portrait is
neutral; the expression in the video comes from the speech (or from --emotion).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from floatalk.config import EMOTIONS

if TYPE_CHECKING:
    import numpy as np

    from floatalk.apps.examples import ExampleInChild


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="render a demo video with the bundled model (no downloads)",
        description="Synthesise an unseen portrait and a sentence of speech-like audio, animate the portrait with "
        "the bundled demo model and write an mp4. The model was trained only on the synthetic world: use "
        "'floatalk generate --checkpoint' with the FLOAT release weights for real photos.",
    )
    p.add_argument("--out", default="demo.mp4", metavar="OUT.mp4", help="output video (default demo.mp4)")
    p.add_argument(
        "--emotion",
        default="auto",
        type=str.lower,
        choices=["auto", *EMOTIONS],
        help="emotion of the face: auto (predicted from the speech) or a name to redirect it",
    )
    p.add_argument("--seconds", type=float, default=6.0, help="length of the synthesised speech (default 6)")
    p.add_argument(
        "--seed", type=int, default=None, help="portrait/speech seed (default: a fixed seed never used in training)"
    )
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="show the synthetic world's own rendering of the same speech beside the model's",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from floatalk.errors import UserInputError
    from floatalk.io.video import check_output_path

    if not 1.0 <= args.seconds <= 60.0:
        raise UserInputError(f"--seconds must be between 1 and 60 (got {args.seconds}).")
    check_output_path(args.out)  # before torch is imported, the portrait drawn and the model loaded

    from floatalk.apps.examples import ExampleInChild

    with tempfile.TemporaryDirectory() as tmp:
        # The world's own frames are drawn only when they are shown beside the model's; otherwise
        # the example is written by a child process while this one imports torch and loads the model.
        pending = None if args.side_by_side else ExampleInChild(tmp, args.seconds, args.seed)
        return _run(args, tmp, pending)


def _run(args: argparse.Namespace, tmp: str, pending: ExampleInChild | None) -> int:
    from floatalk.apps.examples import write_example
    from floatalk.assets import BUNDLED, resolve_model
    from floatalk.io.provenance import synthetic_video_metadata
    from floatalk.options import GenerateOptions
    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import GENERATION_LABELS, ProgressBar
    from floatalk.render import render_video
    from floatalk.units import FPS

    model = resolve_model(BUNDLED)
    example = write_example(tmp, args.seconds, args.seed) if pending is None else None
    n_frames = max(1, round(args.seconds * FPS))  # the world's clip length (floatalk.synth.world.make_clip)
    with ProgressBar(n_frames, "frame", GENERATION_LABELS, "frames", args.quiet, "loading model") as bar:
        pipe = FloatPipeline.from_pretrained(model)
        if example is None:
            assert pending is not None
            example = pending.result()
        options = GenerateOptions(emotion=args.emotion, crop=False)
        mark = synthetic_video_metadata()  # the world's drawn face: eval-lipsync picks the world's meter
        report = render_video(pipe, example.image, example.audio, args.out, options, progress=bar, metadata=mark)
    if args.side_by_side:
        _side_by_side(Path(args.out), example.frames)
    if not args.quiet:
        for line in report.summary()[1:]:
            print(line, file=sys.stderr)
        print(f"synthetic {example.emotion} speaker (seed {example.identity}); model: {model}", file=sys.stderr)
    return 0


def _side_by_side(video: Path, truth: np.ndarray) -> None:
    """Rewrite `video` as [model | synthetic world] frames, keeping its sound."""
    import numpy as np

    from floatalk.io.audio import load_audio
    from floatalk.io.provenance import synthetic_video_metadata
    from floatalk.io.video import VideoWriter, read_video_frames
    from floatalk.units import FPS, MUX_SAMPLE_RATE

    frames = read_video_frames(video)
    sound = load_audio(video, MUX_SAMPLE_RATE)
    n = min(len(frames), len(truth))
    mark = synthetic_video_metadata()
    with VideoWriter(video, fps=FPS, audio=sound, sample_rate=MUX_SAMPLE_RATE, metadata=mark) as w:
        for i in range(n):
            w.write(np.concatenate([frames[i], truth[i]], axis=1))

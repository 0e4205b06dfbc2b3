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

import numpy as np

from floatalk.config import EMOTIONS


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
    import soundfile as sf
    from PIL import Image

    from floatalk.assets import DEMO_EXPRESSION_SCALE, DEMO_ONSET, DEMO_SEED, demo_model_path
    from floatalk.cli import generate
    from floatalk.errors import UserInputError
    from floatalk.synth.world import clip_specs, make_clip

    model = demo_model_path()
    if model is None:
        raise UserInputError("This installation has no bundled demo model; reinstall floatalk from its repository.")
    if not 1.0 <= args.seconds <= 60.0:
        raise UserInputError(f"--seconds must be between 1 and 60 (got {args.seconds}).")
    from floatalk.checkpoint import read_config

    size = read_config(model).motion_ae.size
    # The portrait is the clip's first frame: neutral, as the clip's own expression only eases in
    # after DEMO_ONSET s (the side-by-side view shows it); the model's expression comes from the
    # speech, or from --emotion.
    onset = min(DEMO_ONSET, args.seconds / 2)
    seed = DEMO_SEED if args.seed is None else args.seed
    spec = clip_specs(1, args.seconds, size, seed, onset=onset, expression_scale=DEMO_EXPRESSION_SCALE)[0]
    clip = make_clip(spec)
    with tempfile.TemporaryDirectory() as tmp:
        portrait, speech = Path(tmp) / "portrait.png", Path(tmp) / "speech.wav"
        Image.fromarray(clip.frames[0]).save(portrait)
        sf.write(speech, clip.audio, 16000, subtype="PCM_16")
        gen_args = argparse.Namespace(
            image=str(portrait),
            audio=str(speech),
            out=args.out,
            checkpoint=str(model),
            emotion=args.emotion,
            a_cfg_scale=2.0,
            e_cfg_scale=1.0,
            nfe=10,
            method="euler",
            seed=15,
            no_crop=True,
            paste_back=False,
            fps=25,
            device="cpu",
            dtype="float32",
            batch_size=8,
            quiet=args.quiet,
        )
        code = generate.run(gen_args)
        if code == 0 and args.side_by_side:
            _side_by_side(Path(args.out), clip.frames)
    if not args.quiet:
        print(f"synthetic {spec.emotion} speaker (seed {spec.identity}); model: {model}", file=sys.stderr)
    return code


def _side_by_side(video: Path, truth: np.ndarray) -> None:
    """Rewrite `video` as [model | synthetic world] frames, keeping its sound."""
    from floatalk.io.audio import load_audio
    from floatalk.io.video import VideoWriter, read_video_frames

    frames = read_video_frames(video)
    sound = load_audio(video, 48000)
    n = min(len(frames), len(truth))
    with VideoWriter(video, fps=25, audio=sound, sample_rate=48000) as w:
        for i in range(n):
            w.write(np.concatenate([frames[i], truth[i]], axis=1))

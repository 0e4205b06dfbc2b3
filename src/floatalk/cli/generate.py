"""`floatalk generate`: a portrait photo + a speech recording -> a talking video (mp4).

Inputs are checked (photo readable, face found, audio decodable, output folder writable)
before the model is loaded, so user mistakes fail in a second with one sentence. Frames are
encoded as each 2-second window is decoded; memory does not grow with the audio length. The
video is written to a temporary file beside --out and renamed only on success.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError
from floatalk.sampling.ode import METHODS

DTYPES = ("float32", "bfloat16", "float16")
MUX_SAMPLE_RATE = 48000  # the soundtrack is muxed from the original file at this rate, not the 16 kHz model input


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate",
        help="animate a photo with a speech recording",
        description="Animate a portrait photo with a speech recording and write an H.264 + AAC mp4.",
    )
    p.add_argument(
        "--image",
        required=True,
        metavar="PHOTO",
        help="portrait photo: JPEG, PNG (8/16-bit), WebP, ...; EXIF orientation is applied",
    )
    p.add_argument(
        "--audio",
        required=True,
        metavar="SPEECH",
        help="speech recording: wav, mp3, m4a/aac, flac, ogg/opus or a video's sound; any rate/channels",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT.mp4",
        help="output video; written to a temporary file beside it and renamed only on success",
    )
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="model folder: a FLOAT release folder (float.pth + its two wav2vec2 folders) or a floatalk model "
        "folder (default: the bundled demo model once one ships)",
    )
    p.add_argument(
        "--emotion",
        default="auto",
        type=str.lower,
        choices=["auto", *EMOTIONS],
        help="emotion of the face: 'auto' predicts it from the speech (default); a name redirects it",
    )
    p.add_argument(
        "--a-cfg-scale",
        type=float,
        default=2.0,
        metavar="S",
        help="audio guidance: higher follows the speech more strongly (default 2)",
    )
    p.add_argument(
        "--e-cfg-scale",
        type=float,
        default=1.0,
        metavar="S",
        help="emotion guidance on top of audio: higher exaggerates the emotion (default 1)",
    )
    p.add_argument(
        "--nfe",
        type=int,
        default=10,
        metavar="N",
        help="ODE budget per 2 s window: Euler runs N-1 steps, as in the release (default 10)",
    )
    p.add_argument(
        "--method",
        default="euler",
        choices=list(METHODS),
        help="ODE solver; midpoint and rk4 spend the same N-1 evaluations (default euler)",
    )
    p.add_argument("--seed", type=int, default=15, help="seed of the initial noise; same seed, same video (default 15)")
    p.add_argument(
        "--no-crop",
        action="store_true",
        help="animate the whole photo, letterboxed to a square with black bars (never stretched), "
        "instead of cropping 1.6x around the largest face",
    )
    p.add_argument(
        "--paste-back",
        action="store_true",
        help="composite each generated square back into the full-resolution photo with a soft edge; "
        "the video then has the photo's size",
    )
    p.add_argument(
        "--fps",
        type=int,
        default=25,
        help="output frame rate; the model animates at 25 fps and frames are repeated or dropped to match (default 25)",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default cpu)")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=DTYPES,
        help="precision of the motion sampler and image decoder (default float32, the reference)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=4,
        metavar="N",
        help="frames decoded per decoder pass; larger is faster and uses more memory (default 4)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def check_arguments(args: argparse.Namespace) -> None:
    """Reject impossible numbers and unusable paths before any work (UserInputError, one sentence)."""
    for name in ("a_cfg_scale", "e_cfg_scale"):
        if not math.isfinite(getattr(args, name)):
            raise UserInputError(f"--{name.replace('_', '-')} must be a finite number.")
    if args.nfe < 2:
        raise UserInputError(f"--nfe must be at least 2 (got {args.nfe}).")
    if not 1 <= args.fps <= 120:
        raise UserInputError(f"--fps must be between 1 and 120 (got {args.fps}).")
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1 (got {args.batch_size}).")
    out = Path(args.out)
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise UserInputError(f"Cannot write '{out}': it is a folder.")
    if not folder.is_dir():
        raise UserInputError(f"Cannot write '{out}': folder '{folder}' does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"Cannot write '{out}': folder '{folder}' is not writable.")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserInputError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu.")
    if args.checkpoint is None:
        from floatalk.assets import demo_model_path

        bundled = demo_model_path()
        if bundled is None:
            raise UserInputError(
                "No model given: pass --checkpoint DIR (a FLOAT release folder or a floatalk model folder)."
            )
        args.checkpoint = str(bundled)


class StageBar:
    """A tqdm bar on stderr counting generated frames, its label following the pipeline's stage."""

    LABELS = {"audio": "audio features", "emotion": "emotion", "motion": "sampling motion", "frames": "decoding"}

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            desc="loading model",
            unit="frame",
            file=sys.stderr,
            disable=quiet,
            dynamic_ncols=True,
            bar_format="{desc:>15}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
        )

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.bar.set_description_str(self.LABELS.get(stage, stage), refresh=False)
        if stage == "frames":
            self.bar.update(done - self.bar.n)
        else:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def resample_indices(n_model: int, model_fps: int, out_fps: int, n_audio: int, sample_rate: int) -> np.ndarray:
    """For each output frame, the model frame shown: nearest earlier frame in time. (n_out,) int."""
    if out_fps == model_fps:
        return np.arange(n_model)
    n_out = max(1, math.ceil(n_audio * out_fps / sample_rate))
    return np.minimum((np.arange(n_out) * model_fps) // out_fps, n_model - 1)


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    import torch

    from floatalk.checkpoint import read_config
    from floatalk.io.audio import load_audio
    from floatalk.io.face import PasteBack
    from floatalk.io.video import VideoWriter
    from floatalk.pipeline import FloatPipeline, prepare_image, reuse_freed_memory

    cfg = read_config(args.checkpoint)
    size, fps, sr = cfg.motion_ae.size, cfg.audio.fps, cfg.audio.sample_rate
    prepared = prepare_image(args.image, size, crop=not args.no_crop)
    wave = load_audio(args.audio, sample_rate=sr)
    soundtrack = load_audio(args.audio, sample_rate=MUX_SAMPLE_RATE)
    paste = PasteBack(prepared.original, prepared.box, size) if args.paste_back else None

    n_model = -(-len(wave) * fps // sr)
    bar = StageBar(n_model, args.quiet)
    try:
        if args.device == "cpu":
            reuse_freed_memory()  # the decoder's big short-lived blocks are page-faulted in again otherwise
        pipe = FloatPipeline.from_pretrained(args.checkpoint, device=args.device, dtype=getattr(torch, args.dtype))
        picks = resample_indices(n_model, fps, args.fps, len(wave), sr)
        with VideoWriter(args.out, fps=args.fps, audio=soundtrack, sample_rate=MUX_SAMPLE_RATE) as writer:
            first = 0  # model-frame index of the current window's first frame
            cursor = 0  # next output frame to write
            for _, frames in pipe.stream(
                prepared,
                wave,
                emotion=args.emotion,
                a_cfg_scale=args.a_cfg_scale,
                e_cfg_scale=args.e_cfg_scale,
                nfe=args.nfe,
                seed=args.seed,
                crop=False,
                method=args.method,
                batch_size=args.batch_size,
                progress=bar,
            ):
                last = first + len(frames)
                stop = cursor
                while stop < len(picks) and picks[stop] < last:
                    stop += 1
                chosen = frames[picks[cursor:stop] - first]
                if paste is not None:
                    chosen = np.stack([paste(f) for f in chosen])
                if len(chosen):
                    writer.write(chosen)
                cursor, first = stop, last
    finally:
        bar.close()
    if not args.quiet:
        print(f"wrote {args.out} ({cursor} frames at {args.fps} fps, {len(wave) / sr:.2f} s)", file=sys.stderr)
    return 0

"""`floatalk generate`: a portrait photo + a speech recording -> a talking video.

A thin layer over `floatalk.render.render_video`. Inputs are checked (options, output name,
photo readable, face found, audio decodable) before the model is loaded, so user mistakes fail
in a second with one sentence. Only torch-free modules are imported at the top: building the
parser (`--help`) stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions, add_flags, from_args

DTYPES = ("float32", "bfloat16", "float16")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate",
        help="animate a photo with a speech recording",
        description="Animate a portrait photo with a speech recording and write an H.264 + AAC video "
        "(.mp4, .mov or .mkv, chosen by the --out name). Without --checkpoint the bundled demo model is used, "
        "which only knows synthetic faces.",
    )
    p.add_argument(
        "--image",
        required=True,
        metavar="PHOTO",
        help="portrait photo: JPEG, PNG (8/16-bit), WebP, ...; EXIF orientation is applied; "
        "an alpha channel is ignored, as the release does",
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
        help="output video, .mp4, .mov or .mkv (H.264 + AAC); written to a temporary file beside it "
        "and renamed only on success",
    )
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        default="bundled",
        help="model folder: a FLOAT release folder (float.pth + its two wav2vec2 folders), a floatalk model "
        "folder, or 'bundled' for the demo model inside the package (default)",
    )
    add_flags(p, GenerateOptions)
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
        help="output frame rate, 1-120; the model animates at 25 fps and frames are repeated or dropped "
        "to match (default 25)",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default cpu)")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=DTYPES,
        help="precision the model is loaded in (default float32, the reference; --precision, when given, "
        "chooses the generation's)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no summary; errors still show, and so does the one-line note that the bundled "
        "model does not know real faces",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from floatalk.assets import bundled_note, resolve_model
    from floatalk.io.audio import load_audio
    from floatalk.io.image import load_image
    from floatalk.io.provenance import is_synthetic, synthetic_video_metadata
    from floatalk.io.video import check_output_path
    from floatalk.render import MAX_FPS, check_fps
    from floatalk.units import SAMPLE_RATE

    options = from_args(GenerateOptions, args).validate(as_flags=True)  # a timeline file is read here, once
    try:
        check_fps(args.fps)
    except UserInputError:
        raise UserInputError(f"--fps must be a whole number from 1 to {MAX_FPS} (got {args.fps}).") from None
    check_output_path(args.out)
    checkpoint = resolve_model(args.checkpoint)
    # The photo and the recording are read before torch is imported: a wrong file fails in a second.
    photo = load_image(args.image)
    wave = load_audio(args.audio, sample_rate=SAMPLE_RATE)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu.")

    from floatalk.model_folders import read_config
    from floatalk.pipeline import FloatPipeline, prepare_image, reuse_freed_memory
    from floatalk.progress import GENERATION_LABELS, ProgressBar
    from floatalk.render import render_video

    cfg = read_config(checkpoint)
    # The face is found before the model loads.
    prepared = prepare_image(photo, cfg.motion_ae.size, **options.image_settings())
    if cfg.audio.sample_rate != SAMPLE_RATE:
        wave = load_audio(args.audio, sample_rate=cfg.audio.sample_rate)
    note = bundled_note(checkpoint, [args.image])
    if note:
        print(note, file=sys.stderr)
    n_model = -(-len(wave) * cfg.audio.fps // cfg.audio.sample_rate)
    with ProgressBar(n_model, "frame", GENERATION_LABELS, "frames", args.quiet, "loading model") as bar:
        # A plain --precision is loaded as such (no second copy of the sampler); fast is built from float32.
        dtype = options.precision if options.precision in DTYPES else args.dtype
        pipe = FloatPipeline.from_pretrained(checkpoint, device=args.device, dtype=getattr(torch, dtype))
        if args.device == "cpu":
            # The decoder's big short-lived blocks are page-faulted in again otherwise. Only after the
            # weights are in: the checkpoint's temporary copy, freed, then goes back to the OS instead
            # of staying in the heap (peak RSS 3.19 GB instead of 3.51 GB at release size).
            reuse_freed_memory()
        # A drawn face animated is still a drawn face: the video keeps the portrait's mark.
        mark = synthetic_video_metadata() if is_synthetic(args.image) else None
        report = render_video(
            pipe,
            prepared,
            Path(args.audio),
            args.out,
            options,
            paste_back=args.paste_back,
            fps=args.fps,
            progress=bar,
            metadata=mark,
        )
    if not args.quiet:
        for line in report.summary():
            print(line, file=sys.stderr)
    return 0

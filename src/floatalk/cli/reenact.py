"""`floatalk reenact`: a photo moves as the face in a driving video does (its motion, its sound).

A thin layer over `floatalk.render.reenact_video`; only light modules load at the top.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "reenact",
        help="animate a photo with the motion of a driving video",
        description="Transfer a driving video's whole motion (head, mouth, expression) onto a photo through "
        "the motion auto-encoder and write an H.264 + AAC video with the driving video's soundtrack. By "
        "default the motion is relative: the driving face's change from its first frame is applied to the "
        "photo's own pose and expression.",
    )
    p.add_argument("--image", required=True, metavar="PHOTO", help="the portrait to animate (any Pillow format)")
    p.add_argument(
        "--video", required=True, metavar="DRIVING", help="driving video (any format PyAV reads) showing a face"
    )
    p.add_argument("--out", required=True, metavar="OUT.mp4", help="output video, .mp4, .mov or .mkv")
    p.add_argument(
        "--checkpoint",
        default="bundled",
        metavar="DIR",
        help="model folder: a FLOAT release folder, a floatalk model folder or 'bundled' (default)",
    )
    p.add_argument(
        "--absolute",
        action="store_true",
        help="copy the driving video's motion as it is instead of applying its change from the first frame",
    )
    p.add_argument(
        "--no-crop",
        action="store_true",
        help="use the whole photo and whole driving frames (letterboxed) instead of 1.6x face crops",
    )
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="frames decoded per pass (default 8)")
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
    from floatalk.errors import UserInputError
    from floatalk.io.image import load_image
    from floatalk.io.video import check_output_path, open_video

    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1 (got {args.batch_size}).")
    check_output_path(args.out)
    checkpoint = resolve_model(args.checkpoint)
    # Both inputs are read (the photo) and opened (the video) before torch is imported.
    photo = load_image(args.image)
    open_video(args.video)[1].close()
    note = bundled_note(checkpoint, [args.image])
    if note:
        print(note, file=sys.stderr)

    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import ProgressBar
    from floatalk.render import reenact_video

    with ProgressBar(None, "frame", {"frames": "decoding"}, "frames", args.quiet, "loading") as bar:
        pipe = FloatPipeline.from_pretrained(checkpoint)
        report = reenact_video(
            pipe,
            photo,
            args.video,
            args.out,
            absolute=args.absolute,
            crop=not args.no_crop,
            batch_size=args.batch_size,
            progress=bar,
        )
    if not args.quiet:
        print(report.summary()[0], file=sys.stderr)
        print(report.summary()[2], file=sys.stderr)
    return 0

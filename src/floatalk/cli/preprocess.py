"""`floatalk preprocess`: talking-head videos -> face-cropped 25 fps clips + 16 kHz audio + manifest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "preprocess",
        help="prepare a folder of talking-head videos for training",
        description="Crop the face of every video under --videos (1.6x face box, one stable box per clip), "
        "resample to 25 fps at --size px, extract 16 kHz mono audio and write a manifest with a train/val "
        "split by identity. Re-running skips finished clips; unusable videos are listed with the reason.",
    )
    p.add_argument(
        "--videos", required=True, metavar="DIR", help="folder searched recursively for mp4/mov/mkv/avi/webm"
    )
    p.add_argument("--out", required=True, metavar="DATA", help="output data folder (created; re-use it to resume)")
    p.add_argument("--size", type=int, default=512, help="side of the square face crops in pixels (default 512)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of identities held out for validation")
    p.add_argument(
        "--detector",
        choices=("auto", "mesh", "haar"),
        default="auto",
        help="face crop: mesh (the tracked face mesh), haar (OpenCV's cascade on sampled frames) or auto: the "
        "mesh, except for clips whose sidecar JSON gives face boxes (the synthetic world) (default auto)",
    )
    p.add_argument(
        "--landmarks",
        choices=("auto", "mesh"),
        default="auto",
        help="what landmarks.npy holds: auto (the sidecar's landmarks where given, else the face mesh) or mesh "
        "(always the face mesh's 468 points); mesh.npy always holds the mesh (default auto)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from floatalk.errors import UserInputError
    from floatalk.progress import ProgressBar
    from floatalk.training.data import find_videos, preprocess

    if not 16 <= args.size <= 2048 or args.size & (args.size - 1):
        raise UserInputError(f"--size must be a power of two between 16 and 2048 (got {args.size}).")
    if not 0 <= args.val_fraction < 1:
        raise UserInputError(f"--val-fraction must be in [0, 1) (got {args.val_fraction}).")
    total = len(find_videos(Path(args.videos))) if Path(args.videos).is_dir() else 0
    bar = ProgressBar(total, "clip", {"clips": "clips"}, quiet=args.quiet)  # shown from the first clip on
    done = 0

    def on_clip(name: str, error: str | None) -> None:
        nonlocal done
        done += 1
        bar("clips", done, total)
        if error:
            bar.write(f"skipped {name}: {error}")

    try:
        manifest = preprocess(
            args.videos,
            args.out,
            size=args.size,
            val_fraction=args.val_fraction,
            on_clip=on_clip,
            detector=args.detector,
            landmarks=args.landmarks,
        )
    finally:
        bar.close()
    n_val = sum(c["split"] == "val" for c in manifest["clips"])
    print(
        f"{args.out}: {len(manifest['clips'])} clips ({n_val} val), {len(manifest['skipped'])} skipped",
        file=sys.stderr,
    )
    return 0

"""`floatalk live`: stream a recording through a live session as a microphone would, write what
a viewer would have seen and report the latency.

A thin layer over `floatalk.live` (`FloatPipeline.live`, `floatalk.live.replay`). Inputs are
checked (options, ranges, output names, photo readable, audio decodable) before the model is
loaded; only torch-free modules are imported at the top.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions, add_flags, from_args

NOT_LIVE = ("timeline", "pose_video", "blink_from_video")
"""Options a live session does not take (it changes its controls with update() instead)."""

CHUNK_MS = (1.0, 2000.0)
LOOKAHEAD_MS = (0.0, 2000.0)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "live",
        help="stream a recording through a live session and report its latency",
        description="Stream a speech recording through a live session chunk by chunk, as a microphone would "
        "deliver it, write the video a viewer would have seen (H.264 + AAC) and print the latency per chunk, "
        "the algorithmic latency, the frames per second sustained and the late frames.",
    )
    p.add_argument("--image", required=True, metavar="PHOTO", help="portrait photo (as for floatalk generate)")
    p.add_argument("--audio", required=True, metavar="SPEECH", help="speech recording, any format PyAV reads")
    p.add_argument(
        "--out", required=True, metavar="OUT.mp4", help="output video, .mp4, .mov or .mkv; written atomically"
    )
    p.add_argument(
        "--checkpoint", metavar="DIR", default="bundled", help="model folder, or 'bundled' (default) for the demo model"
    )
    p.add_argument(
        "--chunk-ms",
        type=float,
        default=120.0,
        metavar="MS",
        help="audio per chunk: the stream arrives and the session steps in pieces this long, rounded to whole "
        "40 ms frames for the steps (from 1 to 2000; default 120)",
    )
    p.add_argument(
        "--lookahead-ms",
        type=float,
        default=80.0,
        metavar="MS",
        help="audio heard past a frame before it is made: more follows the speech better and waits longer "
        "(from 0 to 2000; default 80)",
    )
    p.add_argument("--realtime", action="store_true", help="pace the stream at real time (default: as fast as it goes)")
    p.add_argument("--stats-json", metavar="FILE", help="also write the latency figures as JSON to FILE")
    add_flags(p, GenerateOptions, exclude=NOT_LIVE)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default cpu)")
    p.add_argument(
        "--threads",
        default="auto",
        metavar="N",
        help="CPU threads for the model, from 1 to 256, or auto (the default): the session's first step is timed "
        "on one thread and on every core, and the faster is kept (on idle cores every core is faster; on cores "
        "other work keeps busy, one thread is)",
    )
    p.add_argument("--quiet", action="store_true", help="no summary (errors still show)")
    p.set_defaults(run=run)
    return p


def _threads(value: str) -> int | None:
    """--threads as a count from 1 to 256, or None for auto; one sentence otherwise."""
    if str(value).strip().lower() == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        raise UserInputError(f"--threads must be a whole number from 1 to 256 or auto (got {value!r}).") from None
    _check_range(count, (1, 256), "--threads")
    return count


def _check_range(value: float, limits: tuple[float, float], flag: str) -> None:
    low, high = limits
    if not low <= value <= high:
        raise UserInputError(f"{flag} must be a number from {low:g} to {high:g} (got {value:g}).")


def run(args: argparse.Namespace) -> int:
    from floatalk.assets import resolve_model
    from floatalk.io.video import check_output_path

    options = from_args(GenerateOptions, args).validate(as_flags=True)
    _check_range(args.chunk_ms, CHUNK_MS, "--chunk-ms")
    _check_range(args.lookahead_ms, LOOKAHEAD_MS, "--lookahead-ms")
    threads = _threads(args.threads)
    out = check_output_path(args.out)
    stats = Path(args.stats_json) if args.stats_json else None
    if stats is not None and not stats.parent.is_dir():
        raise UserInputError(f"Cannot write '{stats}': folder '{stats.parent}' does not exist.")
    checkpoint = resolve_model(args.checkpoint)

    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu.")

    from floatalk.io.audio import load_audio
    from floatalk.model_folders import read_config
    from floatalk.pipeline import FloatPipeline, prepare_image

    cfg = read_config(checkpoint)
    prepared = prepare_image(args.image, cfg.motion_ae.size, **options.image_settings())
    wave = load_audio(args.audio, sample_rate=cfg.audio.sample_rate)

    from floatalk.fileio import atomic_write
    from floatalk.live.replay import replay, viewer_frames
    from floatalk.render.writer import write_video

    pipe = FloatPipeline.from_pretrained(checkpoint, device=args.device)
    session = pipe.live(prepared, options, chunk_ms=args.chunk_ms, lookahead_ms=args.lookahead_ms)
    if threads is None and args.device == "cpu":
        from floatalk.live.threads import fastest_threads

        threads = fastest_threads(session)
    result, ready, report = replay(session, wave, args.chunk_ms, realtime=args.realtime)
    frames = viewer_frames(result, ready, report, pipe.fps)
    write_video(out, [frames], result.index, pipe.fps, wave, pipe.sample_rate)
    if stats is not None:
        text = json.dumps(report.to_json(), indent=2) + "\n"
        atomic_write(stats, lambda path: path.write_text(text))
    if not args.quiet:
        chosen = f"torch threads: {torch.get_num_threads()}" + (" (auto)" if args.threads == "auto" else "")
        for line in [*report.summary(), chosen, f"wrote {out}"]:
            print(line, file=sys.stderr)
    return 0

"""`floatalk eval-lipsync`: how well a talking-portrait video's mouth follows its speech.

Prints JSON: the Pearson correlation between the mouth opening measured in the frames and the
opening implied by the audio at offset 0, and the best audio-video offset in a window of frames
with its correlation. Two meters read the mouth opening: "synthetic" (floatalk.evaluation.lipsync:
the dark mouth cavity of the synthetic world's faces, calibrated on its ground truth) and
"landmarks" (floatalk.evaluation.face_track: the inner-lip gap of the face mesh, for real faces).
"auto", the default, uses the synthetic one only for videos marked as the synthetic world's
(floatalk.io.provenance), the landmarks otherwise. Both give the same JSON keys, plus "meter";
neither reads a ground-truth file.
"""

from __future__ import annotations

import argparse
import json
import sys

from floatalk.errors import UserInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval-lipsync",
        help="measure lip sync of a talking-portrait video",
        description="Measure the mouth opening in each frame of a face-crop video, correlate it with the opening "
        "implied by the speech over a window of audio-video offsets, and print the result as JSON.",
    )
    p.add_argument("video", metavar="VIDEO", help="the video: mp4 or anything else FFmpeg decodes, a face crop")
    p.add_argument(
        "--audio",
        metavar="AUDIO",
        help="speech to compare with (wav, mp3, m4a, a video's sound, ...); default: the video's own soundtrack",
    )
    p.add_argument(
        "--max-offset",
        type=int,
        default=10,
        metavar="N",
        help="search audio-video offsets from -N to +N frames; positive = audio late (default 10)",
    )
    p.add_argument(
        "--meter",
        choices=("auto", "synthetic", "landmarks"),
        default="auto",
        help="how the mouth opening is read: synthetic (the synthetic world's calibrated meter, for its drawn "
        "faces only), landmarks (the face mesh's inner-lip gap, any face) or auto (default): synthetic for videos "
        "floatalk marked as the synthetic world's (synth-data, demo, a marked portrait animated), else landmarks",
    )
    p.add_argument(
        "--expression",
        action="store_true",
        help="also report the median mouth-corner and brow heights (floatalk.evaluation.expression)",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from floatalk.io.audio import load_audio
    from floatalk.io.provenance import is_synthetic
    from floatalk.io.video import probe_video, read_video_frames
    from floatalk.units import FPS, SAMPLE_RATE

    if args.max_offset < 0:
        raise UserInputError(f"--max-offset must be at least 0 (got {args.max_offset}).")
    info = probe_video(args.video)
    if args.audio is None and info["audio_codec"] is None:
        raise UserInputError(f"Video '{args.video}' has no soundtrack; pass the speech with --audio.")
    frames = read_video_frames(args.video)
    fps = info["fps"] if info["fps"] and info["fps"] > 0 else float(FPS)
    audio = load_audio(args.audio if args.audio is not None else args.video, sample_rate=SAMPLE_RATE)
    meter = args.meter
    if meter == "auto":
        meter = "synthetic" if is_synthetic(args.video) else "landmarks"
    result = {"video": str(args.video), "audio": str(args.audio) if args.audio else "(video soundtrack)"}
    result["meter"] = meter
    if meter == "landmarks":
        from floatalk.evaluation.face_track import score_lipsync_mesh as score
    else:
        from floatalk.evaluation.lipsync import score_lipsync as score
    result |= score(frames, audio, fps=fps, sample_rate=SAMPLE_RATE, max_offset=args.max_offset)
    if args.expression:
        from floatalk.evaluation.expression import measure_expression

        summary = measure_expression(frames, box=tuple(result["face_box"]))["summary"]
        result["expression"] = {k: round(v, 6) for k, v in summary.items()}
    sys.stdout.write(format_json(result) + "\n")
    return 0


def format_json(result: dict) -> str:
    """One key per line, lists kept on one line: valid JSON that is easy to read and to grep."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in result.items()]
    return "{\n" + ",\n".join(lines) + "\n}"

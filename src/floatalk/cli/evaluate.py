"""`floatalk evaluate`: score generated talking-head videos (floatalk.evaluation.report) into a JSON report."""

from __future__ import annotations

import argparse
import sys

METRIC_NAMES = ("lipsync", "lmd", "csim", "head_motion", "blink", "psnr", "ssim", "fid", "fvd", "lse", "csim_arcface")
# The same names as floatalk.evaluation.report.METRICS (kept here so that --help imports nothing heavy;
# tests/evaluation/test_report.py checks they agree).


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score generated videos against references and/or speech (lip sync, LMD, CSIM, FID, ...)",
        description="Score generated talking-head videos: lip sync from the face mesh, landmark distance, identity "
        "similarity, head motion, blinks, PSNR/SSIM, and, with weight files in --weights, FID, FVD, LSE-C/D and "
        "ArcFace CSIM. Writes a JSON report (per video and averaged) and prints a table. See docs/EVALUATE.md.",
    )
    p.add_argument("generated", metavar="GENERATED", help="a generated video, or a folder of them")
    p.add_argument("--reference", metavar="REF", help="the reference video, or a folder of them matched by file name")
    p.add_argument(
        "--audio",
        metavar="AUDIO",
        help="the speech, or a folder of speech files matched by file name; default: each video's own "
        "soundtrack, else its reference's",
    )
    p.add_argument(
        "--weights",
        metavar="DIR",
        help="folder of metric weight files (pytorch-fid InceptionV3, I3D, syncnet_v2.model, ArcFace); "
        "floatalk downloads nothing",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        metavar="NAME",
        choices=METRIC_NAMES,
        help=f"metrics to compute, of: {', '.join(METRIC_NAMES)} (default: every offline metric the inputs "
        "allow, plus those whose weight files are in --weights)",
    )
    p.add_argument("--out", required=True, metavar="REPORT.json", help="where to write the JSON report")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(run=run)
    return p


def format_table(report: dict) -> list[str]:
    """The report as text lines: one row per video, then the means (numbers with 3 decimals)."""
    keys = list(report["mean"])
    names = list(report["videos"])
    width = max([len("mean"), *map(len, names)])
    cols = [max(len(k), 8) for k in keys]
    lines = [" ".join([f"{'video':{width}s}", *(f"{k:>{c}s}" for k, c in zip(keys, cols))])]
    for name in [*names, "mean"]:
        row = report["mean"] if name == "mean" else report["videos"][name]
        cells = [f"{row[k]:{c}.3f}" if row.get(k) is not None else f"{'-':>{c}s}" for k, c in zip(keys, cols)]
        lines.append(" ".join([f"{name:{width}s}", *cells]))
    return lines


def run(args: argparse.Namespace) -> int:
    import json

    from floatalk.errors import UserInputError
    from floatalk.evaluation.report import evaluate, plan_evaluation
    from floatalk.fileio import atomic_write, check_writable
    from floatalk.progress import ProgressBar

    check_writable(args.out)  # before anything is scored
    # Inputs, metrics and weight files are checked before the bar appears: a mistake is one line.
    plan = plan_evaluation(args.generated, args.reference, args.audio, args.weights, args.metrics)
    with ProgressBar(unit="video", count_stage="videos", quiet=args.quiet, first_label="evaluating") as bar:
        report = evaluate(plan, progress=bar)
    atomic_write(args.out, lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    for name, sentence in report["errors"].items():
        print(f"floatalk evaluate: {name}: {sentence}", file=sys.stderr)
    if not args.quiet and report["videos"]:
        for line in format_table(report):
            print(line)
    if not report["videos"]:
        raise UserInputError(f"No video could be scored (see the errors above); the report is in '{args.out}'.")
    print(f"wrote {args.out}: {len(report['videos'])} videos, metrics {', '.join(report['metrics'])}", file=sys.stderr)
    return 0

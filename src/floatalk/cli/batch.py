"""`floatalk batch`: render every job of a JSONL or CSV file into one folder, resumably, here or
on a Ray cluster (floatalk.apps.batch, floatalk.apps.ray_runner; docs/BATCH.md).

Only light modules are imported at the top: building the parser (`--help`) stays fast.
"""

from __future__ import annotations

import argparse
import sys

from floatalk.errors import Terminated, UserInputError, interrupt_status

EPILOG = (
    "Each line of JOBS is one job: 'image' and 'audio' (paths relative to the jobs file), an optional 'name' "
    "for the output file (default: the image's name and the line number, .mp4) and any option of "
    "'floatalk generate' by its flag name without dashes (e.g. emotion, seed, a_cfg_scale, crop, paste_back, fps). "
    "JSONL: one JSON object a line. CSV: a first row naming the columns; empty cells are left out. "
    "Outputs that exist are skipped, so rerunning the same command resumes. Every line's outcome is written "
    "to DIR/batch_report.json. Exit status: 0 every job done or skipped, 3 some line failed (the others still ran), "
    "2 a mistake in the command or the jobs file as a whole, 130 interrupted, 143 terminated (SIGTERM; finished "
    "videos are kept either way)."
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "batch",
        help="render many jobs from a JSONL or CSV file, resumably, here or on Ray",
        description="Render every job of a jobs file (JSON Lines or CSV, one job per line) into one folder, "
        "the model loaded once. A line that cannot run is reported with its reason without stopping the others.",
        epilog=EPILOG,
    )
    p.add_argument("jobs", metavar="JOBS", help="jobs file: .jsonl (one JSON object a line) or .csv (a header row)")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (made if missing) for the videos and batch_report.json; on a Ray cluster of several "
        "machines it must be on a file system every node sees at the same path",
    )
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        default="bundled",
        help="model folder, as for 'floatalk generate' (default: the bundled demo model)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="where the model runs (default cpu); with --ray, cuda starts one actor per GPU of the cluster",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run the jobs on Ray: without ADDRESS on a local cluster started for the run (on 127.0.0.1 only), "
        "with ADDRESS (e.g. HEAD:6379, or 'auto') on that running cluster; give it after JOBS, or as --ray=ADDRESS",
    )
    p.add_argument(
        "--actors",
        type=int,
        default=None,
        metavar="N",
        help="with --ray: how many actors (each loads the model once); default one per GPU (--device cuda) "
        "or per CPU of the cluster",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no summary; failures still show, and so does the one-line note that the bundled "
        "model does not know real faces",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from floatalk.apps.batch import read_jobs, run_batch, run_local
    from floatalk.assets import bundled_note, resolve_model
    from floatalk.progress import GENERATION_LABELS, ProgressBar

    if args.actors is not None and args.ray is None:
        raise UserInputError("--actors is for --ray runs; add --ray (a local cluster) or --ray ADDRESS.")
    if args.actors is not None and args.actors < 1:
        raise UserInputError(f"--actors must be at least 1 (got {args.actors}).")
    entries = read_jobs(args.jobs)  # a jobs file that cannot be used fails before any model loads
    note = bundled_note(resolve_model(args.checkpoint), [e.image for e in entries if e.error is None])
    labels = {**GENERATION_LABELS, "jobs": "jobs", "start": "reading inputs"}
    with ProgressBar(len(entries), "job", labels, "jobs", args.quiet, "jobs") as bar:

        def report(stage: str, done: int, total: int) -> None:
            nonlocal note
            if note and stage not in ("jobs", "starting Ray"):  # a model is loading: rendering starts
                bar.write(note)
                note = None
            bar(stage, done, total)

        if args.ray is not None:
            from floatalk.apps.ray_runner import ray_runner

            runner = ray_runner(
                args.ray, actors=args.actors, checkpoint=args.checkpoint, device=args.device, progress=report
            )
        else:
            runner = run_local(args.checkpoint, args.device, progress=report)
        try:
            result = run_batch(args.jobs, args.out, runner, progress=report, entries=entries)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (floatalk.cli.main)
            bar.close()
            what = "terminated" if isinstance(exc, Terminated) else "interrupted"
            print(
                f"floatalk batch: {what}; finished videos are kept in '{args.out}' and rerunning the same "
                "command resumes.",
                file=sys.stderr,
            )
            return interrupt_status(exc)
    lines = result.summary()
    if args.quiet:
        lines = [line for line in lines[1:] if line.lstrip().startswith(("failed", "line "))]
    for line in lines:
        print(line, file=sys.stderr)
    return result.exit_status

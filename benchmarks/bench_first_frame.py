"""How soon a fresh `floatalk demo` / `floatalk generate` (bundled model) hands its first frame to
the video writer, how long the process takes to exit, and which heavy modules it imported.

Each run is a fresh Python process started by this script: a small probe patches
`floatalk.io.video.VideoWriter.write` to note the wall-clock time of its first call, then runs
the command as the console script does (`floatalk.cli.main.entry`), and notes when the command
was done (as `entry` calls sys.exit) and what was in `sys.modules` then. The figures, per run:

* first frame: from just before the process was started to the first frame handed to the writer
  (interpreter start, imports, the inputs, loading the model, the first motion window and the
  first decoder batch), and the CPU seconds the process had used by then (less sensitive than
  wall time to other work on the machine: on idle cores the wall time is about that or less);
* main done: to the command being done (the whole video written);
* exit: from then to the process being gone (interpreter shutdown, threads, atexit).

Target (issue 28): first frame within 2 s of launch on 2 idle cores; neither transformers nor the
face-mesh runtime (ai_edge_litert) imported on the bundled model's path.

    python benchmarks/bench_first_frame.py [--runs 3] [--seconds 6] [--json outputs/bench/first_frame.json]
    python benchmarks/bench_first_frame.py --baseline ../main/src     # beside another floatalk's source
    python benchmarks/bench_first_frame.py --checkpoint checkpoints/parity_release --skip-bundled --runs 1

With --baseline SRC, each run of this floatalk alternates with a run of the floatalk whose `src`
folder is SRC (put first on PYTHONPATH), so both see the same load; the table gives both and
their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, print_machine, write_json

TARGET_S = 2.0
HEAVY = ("transformers", "ai_edge_litert", "scipy", "sympy", "cv2", "torchdiffeq", "av")
PROBE = """
import json, resource, sys, time
from floatalk.io import video
report, argv = sys.argv[1], sys.argv[2:]
write = video.VideoWriter.write
seen = {}
def first_write(self, frames):
    if "first_frame" not in seen:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        seen["first_frame"], seen["first_frame_cpu"] = time.time(), usage.ru_utime + usage.ru_stime
    return write(self, frames)
video.VideoWriter.write = first_write
from floatalk.cli import main
def done():
    seen["main_done"] = time.time()
    seen["modules"] = {name: name in sys.modules for name in HEAVY}
    with open(report, "w") as fh:
        json.dump(seen, fh)
exit_ = sys.exit
def exit_after_done(code=0):
    done()
    exit_(code)
sys.exit = exit_after_done
sys.argv = ["floatalk", *argv]
main.entry()
"""


def one_run(argv: list[str], report: Path, src: Path | None = None) -> dict:
    """One fresh process running `floatalk ARGV` under the probe: seconds from launch to each event.
    src: the floatalk source folder to import (first on PYTHONPATH), else the one this Python finds."""
    probe = PROBE.replace("HEAVY", repr(list(HEAVY)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    launched = time.time()
    proc = subprocess.run([sys.executable, "-c", probe, str(report), *argv], capture_output=True, text=True, env=env)
    gone = time.time()
    if proc.returncode != 0 or not report.is_file():
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"floatalk {' '.join(argv)} failed (exit {proc.returncode})")
    seen = json.loads(report.read_text())
    return {
        "first_frame_s": seen["first_frame"] - launched,
        "first_frame_cpu_s": seen["first_frame_cpu"],
        "main_done_s": seen["main_done"] - launched,
        "exit_s": gone - seen["main_done"],
        "total_s": gone - launched,
        "modules": seen["modules"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="fresh runs per command (default 3)")
    p.add_argument("--seconds", type=float, default=6.0, help="speech length of the demo (default 6, as demo's)")
    p.add_argument(
        "--baseline", type=Path, metavar="SRC", help="also time the floatalk in this src folder, alternately"
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="also time `floatalk generate --checkpoint DIR` on the parity photo and speech (release-size weights)",
    )
    p.add_argument("--skip-bundled", action="store_true", help="only the --checkpoint run")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    import floatalk

    trees = {"this": Path(floatalk.__file__).resolve().parents[1]}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()

    info = machine()
    print_machine(info)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # The generate run's inputs: the demo's own example, written once before timing.
        write = f"from floatalk.apps.examples import write_example; write_example({tmp!r}, {args.seconds})"
        example = subprocess.run(
            [sys.executable, "-c", write],
            capture_output=True,
            text=True,
        )
        if example.returncode != 0:
            sys.stderr.write(example.stderr[-3000:])
            raise SystemExit("could not write the example inputs")
        commands = {
            "floatalk demo": ["demo", "--out", str(folder / "demo.mp4"), "--quiet", "--seconds", str(args.seconds)],
            "floatalk generate (bundled)": [
                "generate",
                "--image",
                str(folder / "portrait.png"),
                "--audio",
                str(folder / "speech.wav"),
                "--out",
                str(folder / "gen.mp4"),
                "--no-crop",
                "--quiet",
            ],
        }
        if args.skip_bundled:
            commands = {}
        if args.checkpoint is not None:
            parity = Path(__file__).resolve().parents[1] / "tests" / "data" / "parity" / "inputs_a"
            commands["floatalk generate --checkpoint"] = [
                "generate",
                "--checkpoint",
                str(args.checkpoint.resolve()),
                "--image",
                str(parity / "image.png"),
                "--audio",
                str(parity / "audio.wav"),
                "--out",
                str(folder / "release.mp4"),
                "--no-crop",
                "--quiet",
            ]
        for name, command in commands.items():
            runs: dict[str, list[dict]] = {tree: [] for tree in trees}
            load_before = os.getloadavg()[0]
            for i in range(args.runs):
                for tree, src in trees.items():
                    runs[tree].append(one_run(command, folder / f"report{i}.json", src))
            for tree, src in trees.items():
                row = {"command": name, "floatalk": tree, "src": str(src), "argv": command, "runs": runs[tree]}
                row["load_avg_1min"] = [load_before, os.getloadavg()[0]]
                for key in ("first_frame_s", "first_frame_cpu_s", "main_done_s", "exit_s", "total_s"):
                    row[key] = statistics.median(r[key] for r in runs[tree])
                row["modules"] = runs[tree][-1]["modules"]
                rows.append(row)

    print(f"{args.runs} fresh runs each (medians); target: first frame within {TARGET_S:g} s of launch")
    for tree, src in trees.items():
        print(f"  {tree}: {src}")
    print(
        "\n| command | floatalk | first frame s | its CPU s | main done s | exit s | total s | load before/after "
        "| imported |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        heavy = ", ".join(k for k, v in row["modules"].items() if v) or "none"
        load = "/".join(f"{v:.1f}" for v in row["load_avg_1min"])
        print(
            f"| {row['command']} | {row['floatalk']} | {row['first_frame_s']:.2f} | {row['first_frame_cpu_s']:.2f} "
            f"| {row['main_done_s']:.2f} "
            f"| {row['exit_s']:.2f} | {row['total_s']:.2f} | {load} | {heavy} |"
        )
    if "baseline" in trees:
        for a, b in zip(rows[::2], rows[1::2]):
            print(
                f"{a['command']}: first frame {a['first_frame_s'] / b['first_frame_s']:.2f}x the baseline's, "
                f"exit {a['exit_s'] / b['exit_s']:.2f}x, whole run {a['total_s'] / b['total_s']:.2f}x"
            )
    if args.json:
        write_json(args.json, {"benchmark": "first_frame", "machine": info, "target_s": TARGET_S, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

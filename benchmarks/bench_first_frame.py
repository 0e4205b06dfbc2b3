"""How soon a fresh `floatalk demo` / `floatalk generate` (bundled model) hands its first frame to
the video writer, how long the process takes to exit, and which heavy modules it imported.

Each run is a fresh Python process started by this script: a small probe patches
`floatalk.io.video.VideoWriter.write` to note the wall-clock time of its first call, then runs
the command as the console script does (`floatalk.cli.main.entry`), and notes when the command
was done (just before `entry` exits) and what was in `sys.modules` then. The figures, per run:

* first frame: from just before the process was started to the first frame handed to the writer
  (interpreter start, imports, the inputs, loading the model, the first motion window and the
  first decoder batch);
* main done: to the command being done (the whole video written);
* exit: from then to the process being gone (interpreter shutdown, threads, atexit).

Target (issue 28): first frame within 2 s of launch on 2 idle cores; neither transformers nor the
face-mesh runtime (ai_edge_litert) imported on the bundled model's path.

    python benchmarks/bench_first_frame.py [--runs 3] [--seconds 6] [--json outputs/bench/first_frame.json]
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
import json, sys, time
from floatalk.io import video
report, argv = sys.argv[1], sys.argv[2:]
write = video.VideoWriter.write
seen = {}
def first_write(self, frames):
    seen.setdefault("first_frame", time.time())
    return write(self, frames)
video.VideoWriter.write = first_write
from floatalk.cli import main
def done():
    seen["main_done"] = time.time()
    seen["modules"] = {name: name in sys.modules for name in HEAVY}
    with open(report, "w") as fh:
        json.dump(seen, fh)
main.gc.freeze = lambda freeze=main.gc.freeze: (done(), freeze())
sys.argv = ["floatalk", *argv]
main.entry()
"""


def one_run(argv: list[str], report: Path) -> dict:
    """One fresh process running `floatalk ARGV` under the probe: seconds from launch to each event."""
    probe = PROBE.replace("HEAVY", repr(list(HEAVY)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    launched = time.time()
    proc = subprocess.run([sys.executable, "-c", probe, str(report), *argv], capture_output=True, text=True, env=env)
    gone = time.time()
    if proc.returncode != 0 or not report.is_file():
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"floatalk {' '.join(argv)} failed (exit {proc.returncode})")
    seen = json.loads(report.read_text())
    return {
        "first_frame_s": seen["first_frame"] - launched,
        "main_done_s": seen["main_done"] - launched,
        "exit_s": gone - seen["main_done"],
        "total_s": gone - launched,
        "modules": seen["modules"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="fresh runs per command (default 3)")
    p.add_argument("--seconds", type=float, default=6.0, help="speech length of the demo (default 6, as demo's)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)

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
        for name, command in commands.items():
            runs = [one_run(command, folder / f"report{i}.json") for i in range(args.runs)]
            row = {"command": name, "argv": command, "runs": runs, "load_avg_1min": os.getloadavg()[0]}
            for key in ("first_frame_s", "main_done_s", "exit_s", "total_s"):
                row[key] = statistics.median(r[key] for r in runs)
            row["modules"] = runs[-1]["modules"]
            rows.append(row)

    print(f"{args.runs} fresh runs each (medians); target: first frame within {TARGET_S:g} s of launch\n")
    print("| command | first frame s | main done s | exit s | total s | load after | heavy modules imported |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        heavy = ", ".join(k for k, v in row["modules"].items() if v) or "none"
        print(
            f"| {row['command']} | {row['first_frame_s']:.2f} | {row['main_done_s']:.2f} | {row['exit_s']:.2f} "
            f"| {row['total_s']:.2f} | {row['load_avg_1min']:.1f} | {heavy} |"
        )
    if args.json:
        write_json(args.json, {"benchmark": "first_frame", "machine": info, "target_s": TARGET_S, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

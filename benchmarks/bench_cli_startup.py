"""How long the `floatalk` command takes to answer --help, and which heavy modules it imports.

Target: every --help below answers in under 1 s of wall time (median), and building the
command-line parser imports neither torch nor transformers: help texts must not wait for the
model code.

Each command runs --runs times (default 5) in a fresh subprocess; the table shows the median and
the range, next to a bare `python -c pass` for the interpreter's own start-up. Then one
subprocess builds the parser (`floatalk.cli.main.build_parser()`) and reports which of the heavy
modules it imported.

    python benchmarks/bench_cli_startup.py [--runs 5] [--json results/cli_startup.json]

Results: a table on stdout and, with --json PATH, one JSON object (machine, runs, target, every
timing, imported modules, pass/fail). Exit status 1 only when a command failed to run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import floatalk_command, machine, print_machine, write_json

TARGET_S = 1.0
COMMANDS = (["--help"], ["generate", "--help"], ["train", "motion-ae", "--help"])
HEAVY = ("torch", "transformers", "cv2", "av", "scipy", "numpy")
PARSER_PROBE = (
    "import json, sys; from floatalk.cli.main import build_parser; build_parser(); "
    f"print(json.dumps({{name: name in sys.modules for name in {list(HEAVY)!r}}}))"
)


def time_runs(cmd: list[str], runs: int) -> dict:
    """Wall seconds of `runs` fresh runs of `cmd` (stdout and stderr discarded), with exit codes."""
    seconds, codes = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds.append(time.perf_counter() - t0)
        codes.append(proc.returncode)
        if proc.returncode != 0:
            sys.stderr.write(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-2000:]}\n")
    return {
        "command": cmd,
        "runs_s": seconds,
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "exit_codes": codes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="fresh runs per command (default 5)")
    p.add_argument(
        "--floatalk", metavar="CMD", help="how to run floatalk (default: found, see _common.floatalk_command)"
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")

    info = machine()
    print_machine(info)
    floatalk = floatalk_command(args.floatalk)
    print(f"floatalk: {' '.join(floatalk)}; {args.runs} runs each; target: median under {TARGET_S:g} s\n")

    baseline = time_runs([sys.executable, "-c", "pass"], args.runs)
    rows = [time_runs(floatalk + extra, args.runs) for extra in COMMANDS]
    for row in rows:
        row["ok"] = row["median_s"] < TARGET_S and not any(row["exit_codes"])

    print("| command | median s | min s | max s | under target |")
    print("|---|---|---|---|---|")
    print(
        f"| python -c pass (interpreter only) | {baseline['median_s']:.3f} | {baseline['min_s']:.3f} "
        f"| {baseline['max_s']:.3f} | - |"
    )
    for extra, row in zip(COMMANDS, rows):
        print(
            f"| floatalk {' '.join(extra)} | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['max_s']:.3f} "
            f"| {'yes' if row['ok'] else 'NO'} |"
        )

    probe = subprocess.run([sys.executable, "-c", PARSER_PROBE], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.stderr.write(probe.stderr[-2000:])
        imported = None
    else:
        imported = json.loads(probe.stdout.strip().splitlines()[-1])
        print("\nimported by build_parser(): " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in imported.items()))
    light = imported is not None and not imported["torch"] and not imported["transformers"]
    ok = light and all(row["ok"] for row in rows)
    print(
        f"\n{'PASS' if ok else 'FAIL'}: --help under {TARGET_S:g} s and no torch/transformers while building the parser"
    )

    if args.json:
        payload = {
            "benchmark": "cli_startup",
            "machine": info,
            "floatalk": floatalk,
            "runs": args.runs,
            "target_s": TARGET_S,
            "baseline": baseline,
            "commands": rows,
            "parser_imports": imported,
            "pass": ok,
        }
        write_json(args.json, payload)
    measured = imported is not None and not any(code for row in rows for code in row["exit_codes"])
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())

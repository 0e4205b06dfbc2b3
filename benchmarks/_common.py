"""Helpers shared by the benchmarks: what machine ran them, how to call `floatalk`, how to measure a
run of it (`run_measured`), where results go.

Imported as `_common` by scripts run as `python benchmarks/NAME.py` (their folder is on sys.path).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict:
    """What ran the benchmark: CPU model, logical cores, load average, Python and platform."""
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_machine(info: dict) -> None:
    print(f"CPU: {info['cpu_model']} ({info['logical_cores']} logical cores, load {info['load_avg_1min']:.1f})")


def floatalk_command(given: str | None = None) -> list[str]:
    """How to run `floatalk`: `given` (split on spaces) when set; else the first that answers
    `--version`: the console script beside this Python (as a user runs it), the one on PATH,
    `python -m floatalk.cli.main` (the floatalk that this Python imports, e.g. via PYTHONPATH)."""
    if given:
        return given.split()
    beside = Path(sys.executable).parent / "floatalk"
    candidates = [[str(beside)]] if beside.is_file() and os.access(beside, os.X_OK) else []
    if shutil.which("floatalk"):
        candidates.append([shutil.which("floatalk")])
    candidates.append([sys.executable, "-m", "floatalk.cli.main"])
    for cmd in candidates:
        if subprocess.run([*cmd, "--version"], capture_output=True).returncode == 0:
            return cmd
    raise SystemExit("no working floatalk command found (tried: " + "; ".join(" ".join(c) for c in candidates) + ")")


def write_json(path: Path, payload: dict) -> None:
    """Write `payload` as indented JSON to `path` (parent folders created) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results written to {path}")


_LAUNCHER = """
import json, os, resource, sys
limit, report, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
pid = os.fork()
if pid == 0:
    try:
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    json.dump({"status": os.waitstatus_to_exitcode(status), "maxrss": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime}, out)
"""


def run_measured(cmd: list[str], log: Path, timeout: float, memory_limit: int | None = None) -> dict:
    """Run `cmd` with stdout + stderr to `log`; exit status, wall seconds and its peak RSS.

    The peak is the kernel's ru_maxrss for `cmd`'s process, which a process keeps from the one it
    was forked from: so `cmd` is forked by a small launcher (a fresh Python, about 10 MB), not by
    this script, whose own size would otherwise be the floor of every figure. memory_limit: bytes
    of address space `cmd` may take (RLIMIT_AS), so a runaway run fails instead of taking the machine.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    report = log.with_suffix(".rusage.json")
    launcher = [sys.executable, "-c", _LAUNCHER, str(memory_limit or 0), str(report), *cmd]
    t0 = time.perf_counter()
    timed_out = False
    with log.open("w") as out:
        proc = subprocess.Popen(launcher, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    usage = json.loads(report.read_text()) if report.is_file() else {"status": None, "maxrss": 0, "cpu": 0.0}
    return {
        "command": cmd,
        "exit_status": usage["status"],
        "timed_out": timed_out,
        "wall_s": time.perf_counter() - t0,
        "peak_rss_bytes": usage["maxrss"] * RSS_UNIT,
        "cpu_s": usage["cpu"],
        "output_tail": log.read_text(errors="replace").splitlines()[-12:],
    }

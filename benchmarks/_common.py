"""Helpers shared by the benchmarks: what machine ran them, how to call `floatalk`, where results go.

Imported as `_common` by scripts run as `python benchmarks/NAME.py` (their folder is on sys.path).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


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

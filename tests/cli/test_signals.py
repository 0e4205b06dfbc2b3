"""SIGTERM (what `kill` and `timeout` send) ends every writing command like Ctrl-C: exit 143, one
line, no traceback and no hidden temporary file left beside the outputs. Each command runs in a
real child process and is sent the signal while it is writing (a temporary file exists)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# whole commands or servers in child processes: the full suite (CI) runs them, the fast tier does not
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
CLI = [sys.executable, "-m", "floatalk.cli.main"]


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial-" in p.name]


def terminate_when(args: list[str], ready: Callable[[], bool], limit: float = 240.0) -> tuple[int, str]:
    """Run `floatalk ARGS`, send SIGTERM as soon as ready() holds; (exit status, stderr)."""
    proc = subprocess.Popen([*CLI, *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + limit
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"floatalk {args[0]} ended ({proc.returncode}) before the signal: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail(f"floatalk {args[0]} did not start writing within {limit:.0f} s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def assert_clean_termination(command: str, code: int, err: str) -> None:
    assert code == 143, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(f"floatalk {command}: terminated;"), err


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic portrait and 8 s of speech: long enough to be caught while writing."""
    from floatalk.apps.examples import write_example

    return write_example(tmp_path_factory.mktemp("speech"), seconds=8.0)


def test_sigterm_during_generate_leaves_nothing(speech, tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    args = ["generate", "--image", str(speech.image), "--audio", str(speech.audio), "--out", str(out), "--no-crop"]
    code, err = terminate_when([*args, "--quiet"], lambda: bool(partials(tmp_path)))
    assert_clean_termination("generate", code, err)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic portrait and 60 s of speech: the bundled model takes about 20 s for it on 2 idle
    cores, so `timeout 5` stops it on any machine (8 s of speech were done in under 5 s)."""
    from floatalk.apps.examples import write_example

    return write_example(tmp_path_factory.mktemp("long"), seconds=60.0, frames=False)


def test_timeout_during_generate_leaves_nothing(long_speech, tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    image, audio = str(long_speech.image), str(long_speech.audio)
    args = ["generate", "--image", image, "--audio", audio, "--out", str(out), "--no-crop"]
    done = subprocess.run(["timeout", "5", *CLI, *args, "--quiet"], env=ENV, capture_output=True, text=True)
    assert done.returncode == 124, done.stderr  # timeout's own status: the command was stopped
    assert "Traceback" not in done.stderr and "terminated" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_batch_keeps_finished_videos_and_the_report(speech, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    line = {"image": str(speech.image), "audio": str(speech.audio), "crop": False}
    jobs.write_text("".join(json.dumps({**line, "name": f"v{i}.mp4"}) + "\n" for i in range(2)))
    out = tmp_path / "out"
    code, err = terminate_when(["batch", str(jobs), "--out", str(out), "--quiet"], lambda: bool(partials(tmp_path)))
    assert code == 143 and "Traceback" not in err, err
    assert "floatalk batch: terminated; finished videos are kept" in err
    report = json.loads((out / "batch_report.json").read_text())
    assert report["complete"] is False
    assert partials(tmp_path) == []
    assert not (out / "v0.mp4").exists()


def test_sigterm_during_demo_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    code, err = terminate_when(["demo", "--out", str(out), "--quiet"], lambda: bool(partials(tmp_path)))
    assert_clean_termination("demo", code, err)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_synth_data_stops_its_workers_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "world"
    args = ["synth-data", "--out", str(out), "--clips", "40", "--seconds", "2", "--workers", "2", "--quiet"]
    code, err = terminate_when(args, lambda: out.is_dir() and bool(partials(out)))
    assert_clean_termination("synth-data", code, err)
    time.sleep(0.5)  # the pool's workers are gone once the parent has returned
    assert partials(out) == []
    assert not (out / "manifest.json").exists()


def test_sigterm_during_preprocess_leaves_nothing(tmp_path: Path) -> None:
    world = tmp_path / "world"
    done = subprocess.run(
        [*CLI, "synth-data", "--out", str(world), "--clips", "3", "--seconds", "2", "--size", "64", "--quiet"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    data = tmp_path / "data"
    args = ["preprocess", "--videos", str(world), "--out", str(data), "--size", "64", "--quiet"]
    code, err = terminate_when(args, lambda: data.is_dir() and bool(partials(data)))
    assert_clean_termination("preprocess", code, err)
    assert partials(data) == []

"""Tests of floatalk.fileio: atomic writes, stale temporaries of killed runs, refused writes.

Refused writes are tried for real where the system allows it: a full disk on a small tmpfs the
test mounts (root only), a read-only tmpfs, and a folder the writer has no permission for (a
child process without root's override). Where a mount is impossible the test skips saying why,
except under CI (the `CI` environment variable set), where that is a failure.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from floatalk.errors import UserInputError
from floatalk.fileio import atomic_write, remove_stale_partials, temporary_beside, write_error
from support import fill, mount_tmpfs, no_mount

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 kB tmpfs."""
    yield from mount_tmpfs(tmp_path / "disk", "200k")


@pytest.fixture()
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mount_tmpfs(tmp_path / "ro", "64k", read_only=True)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "filler")


# -- refused writes become one sentence ---------------------------------------------------------


def _writers() -> dict[str, Callable[[Path], object]]:
    """Each way floatalk writes bytes: numpy, torch.save, safetensors, soundfile, text, Pillow, a video."""
    import soundfile
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    big = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)  # 400 kB: more than the disk
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)

    def video(path: Path) -> None:
        from floatalk.io.video import VideoWriter

        noise = np.random.default_rng(0).integers(0, 255, (30, 128, 128, 3), dtype=np.uint8)
        with VideoWriter(path, fps=25) as writer:
            writer.write(noise)

    return {
        "npy": lambda p: atomic_write(p, lambda t: np.save(t, big), ".npy"),
        "torch": lambda p: atomic_write(p, lambda t: torch.save({"w": torch.from_numpy(big)}, t)),
        "safetensors": lambda p: atomic_write(p, lambda t: save_file({"w": torch.from_numpy(big)}, str(t))),
        "wav": lambda p: atomic_write(p, lambda t: soundfile.write(t, big / 8, 16000, subtype="FLOAT"), ".wav"),
        "json": lambda p: atomic_write(p, lambda t: t.write_text(json.dumps(big.tolist()))),
        "png": lambda p: atomic_write(p, lambda t: Image.fromarray(noise).save(t, "PNG")),
        "mp4": video,
    }


@pytest.mark.parametrize("kind", ["npy", "torch", "safetensors", "wav", "json", "png", "mp4"])
def test_a_full_disk_is_one_sentence_and_leaves_nothing(small_disk: Path, kind: str) -> None:
    fill(small_disk, leave=16_000)
    target = small_disk / f"out.{kind}"
    with pytest.raises(UserInputError) as caught:
        _writers()[kind](target)
    assert str(caught.value) == f"Cannot write '{target}': the disk is full."
    assert leftovers(small_disk) == []


@pytest.mark.parametrize("kind", ["npy", "json", "mp4"])
def test_a_read_only_file_system_is_one_sentence(read_only_disk: Path, kind: str) -> None:
    target = read_only_disk / f"out.{kind}"
    with pytest.raises(UserInputError, match=r"^Cannot write '.*out\.\w+': (the file system is read-only|folder)"):
        _writers()[kind](target)
    assert leftovers(read_only_disk) == []


def test_write_error_names_the_target_and_leaves_other_errors_alone(tmp_path: Path) -> None:
    target = tmp_path / "x.mp4"
    for code, words in [
        (errno.ENOSPC, "the disk is full"),
        (errno.EDQUOT, "the disk quota is used up"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
    ]:
        error = write_error(OSError(code, os.strerror(code)), target)
        assert str(error) == f"Cannot write '{target}': {words}."
        # writers that wrap the system's error in their own (safetensors, libsndfile)
        wrapped = RuntimeError(f"Error while serializing: IoError(Os {{ message: {os.strerror(code)!r} }})")
        assert str(write_error(wrapped, target)) == f"Cannot write '{target}': {words}."
    assert write_error(ValueError("bad shape"), target) is None
    assert write_error(OSError(errno.ENOENT, "No such file"), target) is None
    assert write_error(UserInputError("Cannot write it: no frames."), target) is None
    assert write_error(KeyboardInterrupt(), target) is None


# -- stale temporaries --------------------------------------------------------------------------

_HOLD = """
import sys, time
from pathlib import Path
from floatalk.fileio import temporary_beside

print(temporary_beside(Path(sys.argv[1])), flush=True)
time.sleep(60)
"""


def _holder(target: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(target)], env=ENV, stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    live, live_tmp = _holder(tmp_path / "a.mp4")
    dead, dead_tmp = _holder(tmp_path / "b.mp4")
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        assert dead_tmp.exists() and live_tmp.exists()
        (tmp_path / ".notes.txt.partial-1").write_text("not ours")
        (tmp_path / "c.mp4").write_text("a finished file")
        mine = temporary_beside(tmp_path / "d.mp4")  # a later writer cleans the folder first
        assert not dead_tmp.exists()
        assert live_tmp.exists() and mine.exists()
        assert (tmp_path / ".notes.txt.partial-1").exists() and (tmp_path / "c.mp4").exists()
        assert remove_stale_partials(tmp_path) == []  # mine and the live one are locked
    finally:
        live.kill()
        live.wait(10)
    assert remove_stale_partials(tmp_path) == [live_tmp]


def test_an_old_unlocked_temporary_is_stale(tmp_path: Path) -> None:
    # what a killed run of an older floatalk (no lock) left
    old = tmp_path / ".talk.mp4.partial-ab12cd34"
    old.write_bytes(b"")
    atomic_write(tmp_path / "report.json", lambda t: t.write_text("{}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def as_ordinary_user() -> list[str]:
    """A command prefix that runs a child without root's permission override (none needed when not root)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        no_mount("setpriv (util-linux) is needed to drop root's permission override")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_permission_denied_is_one_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o555)
    code = (
        "import sys\n"
        "from floatalk.errors import UserInputError\n"
        "from floatalk.fileio import atomic_write\n"
        "try:\n"
        "    atomic_write(sys.argv[1], lambda t: t.write_text('x'))\n"
        "except UserInputError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [*as_ordinary_user(), sys.executable, "-c", code, str(folder / "out.json")],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == f"Cannot write '{folder / 'out.json'}': permission denied.", done.stderr
    assert list(folder.iterdir()) == []


def test_a_later_run_cleans_a_killed_runs_temporary(tmp_path: Path) -> None:
    """The folder-level rule seen from the command line: kill -9 a writer, then any later write
    into that folder removes what it left."""
    proc, tmp = _holder(tmp_path / "talk.mp4")
    proc.kill()
    proc.wait(10)
    assert tmp.exists()
    time.sleep(0.1)
    done = subprocess.run(
        [sys.executable, "-m", "floatalk.cli.main", "synth-data", "--out", str(tmp_path), "--clips", "1"]
        + ["--seconds", "0.4", "--size", "32", "--quiet"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert not tmp.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


# -- every writing command on a full disk -------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A synthetic portrait and speech, a video of them, and a preprocessed data folder."""
    from floatalk.apps.examples import write_example

    root = tmp_path_factory.mktemp("inputs")
    example = write_example(root / "example", seconds=2.0)
    world, data = root / "world", root / "data"
    for args in (
        ["synth-data", "--out", str(world), "--clips", "2", "--seconds", "2", "--size", "64", "--quiet"],
        ["preprocess", "--videos", str(world), "--out", str(data), "--size", "64", "--val-fraction", "0", "--quiet"],
    ):
        done = subprocess.run([sys.executable, "-m", "floatalk.cli.main", *args], env=ENV, capture_output=True)
        assert done.returncode == 0, done.stderr
    jobs = root / "jobs.jsonl"
    jobs.write_text(json.dumps({"image": str(example.image), "audio": str(example.audio), "crop": False}) + "\n")
    return {"image": example.image, "audio": example.audio, "world": world, "data": data, "jobs": jobs}


def _commands(inputs: dict[str, Path], disk: Path) -> dict[str, list[str]]:
    image, audio = str(inputs["image"]), str(inputs["audio"])
    clip = str(inputs["world"] / "clip_00000.mp4")
    return {
        "generate": ["generate", "--image", image, "--audio", audio, "--out", str(disk / "talk.mp4"), "--no-crop"],
        "batch": ["batch", str(inputs["jobs"]), "--out", str(disk / "renders")],
        "synth-data": ["synth-data", "--out", str(disk / "world"), "--clips", "2", "--seconds", "2", "--size", "64"],
        "preprocess": ["preprocess", "--videos", str(inputs["world"]), "--out", str(disk / "data"), "--size", "32"],
        "evaluate": ["evaluate", clip, "--metrics", "lipsync", "--out", str(disk / "report.json")],
        "train": ["train", "motion-ae", "--data", str(inputs["data"]), "--out", str(disk / "run"), "--config", "tiny"]
        + ["--max-steps", "2", "--batch-size", "2", "--sample-every", "100"],
    }


@pytest.mark.slow  # whole commands in child processes: the full suite (CI) runs them, the fast tier does not
@pytest.mark.parametrize("command", ["generate", "batch", "synth-data", "preprocess", "evaluate", "train"])
def test_every_command_on_a_full_disk_is_one_sentence(inputs, small_disk: Path, command: str) -> None:
    fill(small_disk, leave=0 if command in ("evaluate", "batch") else 12_000)
    args = _commands(inputs, small_disk)[command]
    done = subprocess.run(
        [sys.executable, "-m", "floatalk.cli.main", *args, "--quiet"], env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"floatalk {command.split()[0]}: error: Cannot ") and str(small_disk) in last, last
    assert last.endswith(("the disk is full.", "No space left on device.")), last
    assert [p for p in small_disk.rglob("*") if ".partial-" in p.name] == []
    written = [p for p in small_disk.rglob("*") if p.is_file() and p.name != "filler" and p.name[0] != "."]
    if command == "batch" and written:  # the report of a batch that stopped fits in what the video freed
        assert [p.name for p in written] == ["batch_report.json"]
        assert json.loads(written[0].read_text())["jobs"][0]["status"] == "not run"
    elif command == "train":  # the run's config and log (whole rows), written before the first checkpoint
        assert {p.name for p in written} <= {"config.json", "log.csv"}
    else:
        assert written == []


@pytest.mark.slow
@pytest.mark.parametrize("command", ["generate", "batch", "synth-data", "preprocess", "evaluate", "train"])
def test_every_command_on_a_read_only_disk_is_one_sentence(inputs, read_only_disk: Path, command: str) -> None:
    args = _commands(inputs, read_only_disk)[command]
    done = subprocess.run(
        [sys.executable, "-m", "floatalk.cli.main", *args, "--quiet"], env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert str(read_only_disk) in last and ("read-only" in last.lower() or "not writable" in last), last

"""`floatalk serve` on a small filesystem the test mounts (tmpfs) and fills: no job is stranded,
health says the disk is low, submissions get 507 in one sentence, everything recovers without a
restart once space returns, and a server started on a full disk says so in one sentence (exit 2)
or starts degraded. Needs root to mount; skipped with the reason elsewhere, failed under CI=1."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from floatalk.apps.examples import write_example

# whole commands or servers in child processes: the full suite (CI) runs them, the fast tier does not
pytestmark = pytest.mark.slow

DEADLINE_S = 180.0
FINAL = ("done", "failed", "cancelled")


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 24 MB tmpfs mounted for the test (unmounted after)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        reason = f"cannot mount a tmpfs here ({result.stderr.strip() or 'mount failed'})"
        if os.environ.get("CI") in ("1", "true"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Write a file until the disk has no byte left, then give `leave` bytes back; returns the file
    (delete it to free the space)."""
    filler = disk / "filler.bin"
    with open(filler, "wb", buffering=0) as out:
        for size in (1 << 20, 1 << 14, 1 << 10, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    assert os.statvfs(disk).f_bavail == 0
    if leave:
        os.truncate(filler, filler.stat().st_size - leave)
    return filler


def start(data_dir: Path, log_path: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """A `floatalk serve` subprocess on a free port, once it answers /v1/health (with any status);
    its output goes to `log_path` (off the small disk)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "floatalk.cli.main", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    log = open(log_path, "ab")  # noqa: SIM115 - the server writes it until it stops
    proc = subprocess.Popen([*command, "--log-level", "warning", *flags], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + DEADLINE_S
    while True:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            health = httpx.get(url + "/v1/health", timeout=5).json()
            if health["status"] != "loading":
                return proc, url
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def submit(url: str, example) -> httpx.Response:
    files = {"image": ("p.png", example.image.read_bytes()), "audio": ("s.wav", example.audio.read_bytes())}
    return httpx.post(url + "/v1/jobs", files=files, data={"options": json.dumps({"crop": False})}, timeout=60)


def states(url: str) -> dict[str, str]:
    return {job["id"]: job["state"] for job in httpx.get(url + "/v1/jobs?limit=100", timeout=30).json()["jobs"]}


def wait_for(check, what: str, seconds: float = DEADLINE_S):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_a_full_disk_strands_no_job_refuses_with_507_and_recovers_without_restart(small_disk, tmp_path) -> None:
    example = write_example(tmp_path / "example", seconds=2.0)
    long_one = write_example(tmp_path / "long", seconds=6.0)  # renders long enough to be caught running
    log = tmp_path / "server.log"
    proc, url = start(small_disk / "data", log, "--no-ui", "--min-free-mb", "4", "--log-level", "info")
    try:
        first = submit(url, long_one).json()["id"]
        second = submit(url, example).json()["id"]
        wait_for(lambda: states(url)[first] == "running", "the first job to run")
        filler = fill(small_disk)  # the running job's video, and then its record, find no room
        health = httpx.get(url + "/v1/health", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "low_disk"
        assert health.json()["disk_free_bytes"] < 4 * 1024 * 1024 and "disk space" in health.json()["error"]
        refused = submit(url, example)
        assert refused.status_code == 507 and list(refused.json()) == ["error"]
        assert refused.headers["retry-after"].isdigit() and "disk space" in refused.json()["error"]
        assert len(refused.json()["error"].rstrip(".").split(". ")) == 1  # one sentence
        # the running job meets the full disk (its video, then its record, find no room): the worker
        # says so and keeps trying to record it, so the job is not left running with nobody on it
        wait_for(lambda: f"job {first}" in log.read_text(), "the running job to meet the full disk")
        cancel = httpx.delete(f"{url}/v1/jobs/{second}", timeout=30)
        assert cancel.status_code in (200, 507), cancel.text
        filler.unlink()  # space returns: everything goes on by itself, no restart
        health = wait_for(lambda: httpx.get(url + "/v1/health", timeout=30).json(), "health")
        assert health["status"] == "ok"
        third = submit(url, example)
        assert third.status_code == 202
        ids = [first, second, third.json()["id"]]
        final = wait_for(lambda: (s := states(url)) and all(s[i] in FINAL for i in ids) and s, "every job to end")
        assert final[first] == "done" and final[ids[2]] == "done"
        assert final[second] == ("cancelled" if cancel.status_code == 200 else "done")
        assert f"job {first} hit a full disk; it is queued" in log.read_text()  # and it ran again
        assert httpx.get(f"{url}/v1/jobs/{first}/video", timeout=30).content[4:8] == b"ftyp"
    finally:
        stop(proc)


def test_a_job_left_running_by_a_dead_server_is_reconciled_on_start(small_disk, tmp_path) -> None:
    from floatalk.apps.queue import JobQueue

    example = write_example(tmp_path / "example", seconds=1.0)
    queue = JobQueue(small_disk / "data")
    done = queue.submit(example.image, example.audio, {"crop": False}).id
    example = write_example(tmp_path / "again", seconds=1.0)
    rerun = queue.submit(example.image, example.audio, {"crop": False}).id
    for job in (done, rerun):
        assert queue.claim().id == job  # running, as a worker that died left them
    (queue.jobs_dir / done / "video.mp4").write_bytes(b"a whole video")  # its end was never recorded
    queue.close()
    proc, url = start(small_disk / "data", tmp_path / "server.log", "--no-ui", "--min-free-mb", "1")
    try:
        final = wait_for(lambda: (s := states(url)) and all(v in FINAL for v in s.values()) and s, "both jobs")
        assert final == {done: "done", rerun: "done"}
        assert httpx.get(f"{url}/v1/jobs/{done}/video", timeout=30).content == b"a whole video"
    finally:
        stop(proc)


def test_starting_on_a_full_disk_is_one_sentence_or_a_degraded_start_that_says_so(small_disk, tmp_path) -> None:
    filler = fill(small_disk)
    result = subprocess.run(
        [sys.executable, "-m", "floatalk.cli.main", "serve", "--port", "0", "--data-dir", str(small_disk / "new")],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().count("\n") == 0 and "out of disk space" in result.stderr
    # a data folder that opens, on a disk under the reserve: the server starts and says it is degraded
    filler.unlink()
    from floatalk.apps.queue import JobQueue

    JobQueue(small_disk / "data").close()
    filler = fill(small_disk, leave=1 << 20)  # 1 MB free, under the 4 MB reserve
    proc, url = start(small_disk / "data", tmp_path / "server.log", "--min-free-mb", "4")
    try:
        log = (tmp_path / "server.log").read_text()
        assert "warning: The server is short of disk space" in log
        health = httpx.get(url + "/v1/health", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "low_disk"
        assert submit(url, write_example(tmp_path / "example", seconds=1.0)).status_code == 507
        filler.unlink()
        assert wait_for(lambda: httpx.get(url + "/v1/health", timeout=30).status_code == 200, "health ok")
    finally:
        stop(proc)

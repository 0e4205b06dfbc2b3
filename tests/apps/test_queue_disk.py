"""The queue on a disk that fills up, without a real full disk (test_serve_disk.py has one): what
counts as "full", a job that hits it going back to the queue, a worker that retries recording a
result, workers that wait while space is short, and a restart that reconciles a running job."""

from __future__ import annotations

import errno
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from floatalk.apps.examples import EXAMPLE_OPTIONS
from floatalk.apps.queue import MAX_ATTEMPTS, JobQueue, StorageFullError, Workers, is_disk_full

DEADLINE_S = 60.0


def _job(queue: JobQueue, example, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    image, audio = (
        shutil.copy(example.image, folder / f"{name}.png"),
        shutil.copy(example.audio, folder / f"{name}.wav"),
    )
    return queue.submit(Path(image), Path(audio), EXAMPLE_OPTIONS).id


def _final(queue: JobQueue, job_id: str):
    deadline = time.monotonic() + DEADLINE_S
    while not (record := queue.get(job_id)).final:
        assert time.monotonic() < deadline, f"job {job_id} is still {record.state}"
        time.sleep(0.05)
    return record


@pytest.fixture
def no_model(monkeypatch) -> None:
    from floatalk.pipeline import FloatPipeline

    monkeypatch.setattr(FloatPipeline, "from_pretrained", lambda *a, **k: object())


def test_what_counts_as_a_full_disk() -> None:
    full_sqlite = sqlite3.OperationalError("database or disk is full")
    full_sqlite.sqlite_errorcode = 13
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(full_sqlite)
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("the writer failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied")) and not is_disk_full(ValueError("x"))


def test_a_job_that_hits_a_full_disk_waits_then_fails_after_max_attempts(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data")
    job = _job(queue, example, tmp_path / "in", "a")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert queue.claim().id == job
        state = queue.retry_later(job, "The disk filled up.")
        assert state == ("queued" if attempt < MAX_ATTEMPTS else "failed")
    assert queue.get(job).error == "The disk filled up."
    cancelled = _job(queue, example, tmp_path / "in", "b")
    queue.claim()
    queue.cancel(cancelled)
    assert queue.retry_later(cancelled, "The disk filled up.") == "cancelled"


def test_submissions_are_refused_while_space_is_short(tmp_path, example, monkeypatch) -> None:
    queue = JobQueue(tmp_path / "data", min_free_bytes=10 * 1024 * 1024)
    monkeypatch.setattr(queue, "free_bytes", lambda: 1024 * 1024)
    with pytest.raises(StorageFullError, match=r"short of disk space \(1\.0 MB free, it keeps 10\.0 MB"):
        _job(queue, example, tmp_path / "in", "a")
    assert queue.counts()["queued"] == 0 and (tmp_path / "in" / "a.png").is_file()  # the files stay the caller's
    monkeypatch.setattr(queue, "free_bytes", lambda: 100 * 1024 * 1024)
    assert queue.space_short() is None
    _job(queue, example, tmp_path / "in", "a")


@pytest.mark.slow
def test_a_worker_retries_recording_a_result_until_the_store_takes_it(tmp_path, example, monkeypatch, no_model) -> None:
    import floatalk.apps.jobs as jobs

    queue = JobQueue(tmp_path / "data")
    monkeypatch.setattr(jobs, "run_job", lambda pipe, image, audio, out, job, **kw: Path(out).write_bytes(b"mp4"))
    refusals = []
    finish = queue.finish

    def full_twice(job_id, state, error=None):
        if len(refusals) < 2:
            refusals.append(time.monotonic())
            raise StorageFullError("The data folder is out of disk space.")
        return finish(job_id, state, error)

    monkeypatch.setattr(queue, "finish", full_twice)
    job = _job(queue, example, tmp_path / "in", "a")
    workers = Workers(queue)
    workers.start()
    try:
        assert _final(queue, job).state == "done"
    finally:
        workers.stop()
    assert len(refusals) == 2 and refusals[1] - refusals[0] >= 0.9  # waited, then tried again


@pytest.mark.slow
def test_workers_claim_nothing_while_space_is_short_and_go_on_when_it_returns(
    tmp_path, example, monkeypatch, no_model
) -> None:
    import floatalk.apps.jobs as jobs

    queue = JobQueue(tmp_path / "data")
    monkeypatch.setattr(jobs, "run_job", lambda pipe, image, audio, out, job, **kw: Path(out).write_bytes(b"mp4"))
    job = _job(queue, example, tmp_path / "in", "a")  # queued while there was room
    short = ["The server is short of disk space."]
    monkeypatch.setattr(queue, "space_short", lambda: short[0])
    workers = Workers(queue)
    workers.start()
    try:
        time.sleep(1.5)
        assert queue.get(job).state == "queued"
        short[0] = None
        assert _final(queue, job).state == "done"
    finally:
        workers.stop()


def test_a_job_whose_render_hits_a_full_disk_goes_back_to_the_queue(tmp_path, example, monkeypatch, no_model) -> None:
    import floatalk.apps.jobs as jobs

    queue = JobQueue(tmp_path / "data")
    runs = []

    def run_job(pipe, image, audio, out, job, **kw):
        runs.append(1)
        if len(runs) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        Path(out).write_bytes(b"mp4")

    monkeypatch.setattr(jobs, "run_job", run_job)
    job = _job(queue, example, tmp_path / "in", "a")
    workers = Workers(queue)
    workers.start()
    try:
        record = _final(queue, job)
    finally:
        workers.stop()
    assert record.state == "done" and len(runs) == 2 and record.error is None


def test_a_restart_ends_a_running_job_whose_video_is_whole(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data")
    done, cancelled, rerun = (_job(queue, example, tmp_path / "in", n) for n in "abc")
    for _ in range(3):
        queue.claim()
    for job in (done, cancelled):
        (queue.jobs_dir / job / "video.mp4").write_bytes(b"mp4")
    queue.cancel(cancelled)
    assert queue.recover() == [rerun]
    assert queue.get(done).state == "done" and queue.video(done).read_bytes() == b"mp4"
    assert queue.get(cancelled).state == "cancelled" and not (queue.jobs_dir / cancelled / "video.mp4").exists()
    assert queue.get(rerun).state == "queued"

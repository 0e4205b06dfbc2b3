"""The durable job queue: jobs are checked when submitted, run once by the workers, can be
cancelled, and survive a crash of the process that ran them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from floatalk.apps.examples import EXAMPLE_OPTIONS
from floatalk.apps.queue import MAX_ATTEMPTS, JobProgress, JobQueue, QueueFullError, Workers
from floatalk.errors import UserInputError

DEADLINE_S = 120.0


def inputs(example, folder: Path, name: str = "a") -> tuple[Path, Path]:
    """Copies of the example's files (submit moves them)."""
    folder.mkdir(parents=True, exist_ok=True)
    image, audio = folder / f"{name}.png", folder / f"{name}.wav"
    shutil.copy(example.image, image)
    shutil.copy(example.audio, audio)
    return image, audio


def longer(audio: Path, out: Path, times: int) -> Path:
    """`audio` played `times` times over (a long recording, quick to make)."""
    samples, rate = sf.read(audio)
    sf.write(out, np.tile(samples, times), rate)
    return out


def wait_final(queue: JobQueue, job_id: str, timeout: float = DEADLINE_S):
    deadline = time.monotonic() + timeout
    record = queue.get(job_id)
    while not record.final:
        assert time.monotonic() < deadline, f"job {job_id} still {record.state} after {timeout} s"
        record = queue.wait(job_id, record.updated, 5.0)
    return record


def wait_state(queue: JobQueue, job_id: str, predicate, timeout: float = DEADLINE_S):
    deadline = time.monotonic() + timeout
    record = queue.get(job_id)
    while not predicate(record):
        assert time.monotonic() < deadline, f"job {job_id} never reached the state wanted (is {record.state})"
        record = queue.wait(job_id, record.updated, 5.0)
    return record


def test_submit_moves_the_files_and_lists_newest_first(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data")
    first = queue.submit(*inputs(example, tmp_path / "in", "a"), {"crop": False})
    second = queue.submit(*inputs(example, tmp_path / "in", "b"), {"emotion": "happy", "crop": False})
    assert first.state == second.state == "queued" and first.progress == 0.0
    assert not (tmp_path / "in" / "a.png").exists()
    assert sorted(p.name for p in (tmp_path / "data" / "jobs" / first.id).iterdir()) == ["audio.wav", "image.png"]
    jobs, total = queue.list()
    assert [j.id for j in jobs] == [second.id, first.id] and total == 2
    assert queue.list(offset=1, limit=1)[0][0].id == first.id
    assert queue.get(second.id).options == {"emotion": "happy", "crop": False}
    assert queue.get("nope") is None and queue.video(first.id) is None
    assert queue.get(first.id).to_json()["state"] == "queued"


def test_bad_options_and_a_full_queue_leave_the_files_and_no_job(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data", max_queued=1)
    image, audio = inputs(example, tmp_path / "in")
    with pytest.raises(UserInputError, match="Unknown option 'colour'"):
        queue.submit(image, audio, {"colour": 1})
    assert image.exists() and audio.exists() and queue.list() == ([], 0)
    queue.submit(image, audio, EXAMPLE_OPTIONS)
    image, audio = inputs(example, tmp_path / "in", "b")
    with pytest.raises(QueueFullError) as full:
        queue.submit(image, audio, EXAMPLE_OPTIONS)
    assert full.value.retry_after >= 1
    assert image.exists() and audio.exists() and queue.list()[1] == 1
    assert len(list((tmp_path / "data" / "jobs").iterdir())) == 1


def test_progress_spans_the_whole_job_and_never_goes_back() -> None:
    progress = JobProgress()
    assert progress.update("start", 0, 1) == 0.0
    # The pipeline streams: motion windows and frame batches interleave.
    reports = [("emotion", 1, 1), ("audio", 0, 4), ("motion", 1, 4), ("frames", 8, 50), ("motion", 2, 4)]
    reports += [("frames", 30, 50), ("motion", 4, 4), ("audio", 4, 4), ("frames", 50, 50)]
    values = [progress.update(*r) for r in reports]
    assert values == sorted(values) and values[0] > 0 and values[-1] == pytest.approx(1.0)


@pytest.mark.slow
def test_workers_run_jobs_and_bad_ones_fail_alone(tmp_path, example, monkeypatch) -> None:
    from floatalk.pipeline import FloatPipeline

    loads: list[str] = []
    load = FloatPipeline.from_pretrained
    monkeypatch.setattr(FloatPipeline, "from_pretrained", lambda *a, **k: loads.append(a[-1]) or load(*a, **k))
    queue = JobQueue(tmp_path / "data")
    blank = tmp_path / "in" / "blank.png"
    blank.parent.mkdir()
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(blank)
    _, audio = inputs(example, tmp_path / "in", "x")
    faceless = queue.submit(blank, audio, {})  # cropping looks for a face: there is none
    broken = queue.submit(*inputs(example, tmp_path / "in", "y"), {**EXAMPLE_OPTIONS, "seed": 666})
    good = queue.submit(*inputs(example, tmp_path / "in"), EXAMPLE_OPTIONS)

    import floatalk.apps.jobs as jobs

    real_run_job = jobs.run_job

    def run_job(pipe, image, audio, out, job, **kwargs):  # a bug that strikes one job
        if job.generate.seed == 666:
            raise RuntimeError("boom")
        return real_run_job(pipe, image, audio, out, job, **kwargs)

    monkeypatch.setattr(jobs, "run_job", run_job)
    workers = Workers(queue, count=1)
    workers.start()
    try:
        with pytest.raises(UserInputError, match="already in use"):
            Workers(queue).start()
        failed = wait_final(queue, faceless.id)
        crashed = wait_final(queue, broken.id)
        done = wait_final(queue, good.id)
    finally:
        workers.stop()
    assert loads == ["bundled"]  # the model is loaded once per worker, not per job
    assert failed.state == "failed" and failed.error.startswith("No face found") and "\n" not in failed.error
    assert queue.video(faceless.id) is None
    assert crashed.state == "failed" and crashed.error == "Internal error (RuntimeError: boom)."
    assert done.state == "done" and done.progress == 1.0 and done.error is None
    assert done.started <= done.finished
    with av.open(str(queue.video(good.id))) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        assert sum(1 for _ in container.decode(video=0)) == 50


@pytest.mark.slow
def test_cancel_a_queued_and_a_running_job(tmp_path, example) -> None:
    long_audio = longer(example.audio, tmp_path / "long.wav", 15)
    queue = JobQueue(tmp_path / "data")
    image, _ = inputs(example, tmp_path / "in", "a")
    running = queue.submit(image, long_audio, EXAMPLE_OPTIONS)
    waiting = queue.submit(*inputs(example, tmp_path / "in", "b"), EXAMPLE_OPTIONS)
    cancelled = queue.cancel(waiting.id)
    assert cancelled.state == "cancelled" and cancelled.finished is not None
    assert list((tmp_path / "data" / "jobs" / waiting.id).iterdir()) == []
    workers = Workers(queue, count=1)
    workers.start()
    try:
        wait_state(queue, running.id, lambda r: r.state == "running" and r.stage == "frames")
        asked = queue.cancel(running.id)
        assert asked.cancel_requested
        final = wait_final(queue, running.id)
    finally:
        workers.stop()
    assert final.state == "cancelled" and final.progress < 1.0
    assert queue.video(running.id) is None
    assert not (tmp_path / "data" / "jobs" / running.id / "video.mp4").exists()
    assert queue.cancel(running.id).state == "cancelled"


@pytest.mark.slow
def test_jobs_left_running_by_a_crash_run_again(tmp_path, example) -> None:
    queue = JobQueue(tmp_path / "data")
    stuck = queue.submit(*inputs(example, tmp_path / "in", "b"), EXAMPLE_OPTIONS)
    for attempt in range(MAX_ATTEMPTS):  # this one killed its server every time it ran
        if attempt:
            assert queue.recover() == [stuck.id]
        assert queue.claim().id == stuck.id
    job = queue.submit(*inputs(example, tmp_path / "in"), EXAMPLE_OPTIONS)
    assert queue.claim().id == job.id  # a worker took it, then its process died
    (tmp_path / "data" / "jobs" / "orphan").mkdir()  # a submit cut short before its row was written
    assert queue.get(job.id).state == "running"

    restarted = JobQueue(tmp_path / "data")
    workers = Workers(restarted, count=1)
    workers.start()
    try:
        failed = wait_final(restarted, stuck.id)
        done = wait_final(restarted, job.id)
    finally:
        workers.stop()
    assert done.state == "done" and restarted.video(job.id) is not None
    assert failed.state == "failed" and f"interrupted {MAX_ATTEMPTS} times" in failed.error
    assert not (tmp_path / "data" / "jobs" / "orphan").exists()

"""The threads that run a data folder's queued jobs (floatalk.apps.queue.store) with `run_job` (a
scene's with `run_scene_job`), each with its own copy of the model, and the job's overall
progress from their reports.

torch and the model are loaded by `Workers.start`'s threads, not at import time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from floatalk.apps import jobs
from floatalk.apps.queue.disk import StorageFullError, is_disk_full
from floatalk.apps.queue.records import JobRecord
from floatalk.apps.queue.store import JobQueue
from floatalk.apps.scene_jobs import run_scene_job
from floatalk.errors import UserInputError, one_line

__all__ = ["JobProgress", "Workers", "job_error"]

log = logging.getLogger("floatalk.queue")

# How much of a whole job each progress stage of run_job is (motion and frames interleave when
# the pipeline streams window by window, so each stage's share is counted on its own).
_DISK_POLL_S = 1.0  # how often a worker waiting for disk space looks again
_DISK_FULL_JOB = "The server's disk filled up each time this job ran; submit it again once /v1/health is ok."

_STAGE_WEIGHTS = {"emotion": 0.05, "audio": 0.05, "motion": 0.3, "frames": 0.6}
# A scene reports its faces' encoding at once, then frames as each window is sampled and decoded.
SCENE_WEIGHTS = {"emotion": 0.05, "frames": 0.95}


class JobProgress:
    """A job's progress 0..1 from run_job's reports (stage, done, total): the weighted sum of each
    stage's own fraction, so it never goes back when stages interleave."""

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        self.fractions: dict[str, float] = {}
        self.weights = _STAGE_WEIGHTS if weights is None else weights  # a stage's share of the job

    def update(self, stage: str, done: int, total: int) -> float:
        """Take one report; returns the job's progress so far."""
        if stage in self.weights:
            part = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
            self.fractions[stage] = max(part, self.fractions.get(stage, 0.0))
        return min(1.0, sum(self.weights[s] * f for s, f in self.fractions.items()))


class Workers:
    """Threads that run the queue's jobs with `run_job`, each with its own copy of the model
    (loaded once, when it starts). One `Workers` per data folder at a time (a lock file says so)."""

    def __init__(self, queue: JobQueue, checkpoint: str = "bundled", count: int = 1, device: str = "cpu") -> None:
        if count < 1:
            raise UserInputError(f"There must be at least 1 worker (got {count}).")
        self.queue = queue
        self.checkpoint = checkpoint
        self.count = count
        self.device = device
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock_file: Any = None
        self.ready = threading.Event()  # set once every worker has loaded its model
        self._loaded = 0
        self._loaded_lock = threading.Lock()
        self.load_error: str | None = None

    def start(self) -> None:
        """Take the folder's lock, put jobs a crash left running back in the queue, start the threads."""
        import fcntl

        lock = open(self.queue.data_dir / ".workers.lock", "a")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise UserInputError(
                f"The data folder {self.queue.data_dir} is already in use by another floatalk server."
            ) from None
        self._lock_file = lock
        requeued = self.queue.recover()
        if requeued:
            log.warning("re-queued %d job(s) that were running when the server stopped", len(requeued))
        self._stopping.clear()
        for n in range(self.count):
            thread = threading.Thread(target=self._run, name=f"floatalk-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the threads: a running job is stopped within one window and queued again."""
        self._stopping.set()
        self.queue.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _load(self) -> Any:
        from floatalk.pipeline import FloatPipeline

        pipe = FloatPipeline.from_pretrained(self.checkpoint, device=self.device)
        with self._loaded_lock:
            self._loaded += 1
            if self._loaded == self.count:
                self.ready.set()
        return pipe

    def _run(self) -> None:
        try:
            pipe = self._load()
        except Exception as exc:  # noqa: BLE001 - a worker that cannot load stays out; the server says why
            self.load_error = job_error(exc)
            log.error("a worker could not load the model: %s", self.load_error)
            return
        while not self._stopping.is_set():
            try:
                if self.queue.space_short():  # jobs wait for space rather than fail for the lack of it
                    self._stopping.wait(_DISK_POLL_S)
                    continue
                record = self.queue.claim()
                if record is None:
                    self.queue.wait_for_work(1.0)
                    continue
                self._run_one(pipe, record)
            except Exception:  # noqa: BLE001 - e.g. the database busy for too long: keep the worker alive
                log.exception("the worker hit an error outside a job; it goes on in 1 s")
                self._stopping.wait(1.0)

    def _record(self, what: str, write: Callable[[], object]) -> None:
        """Write a job's result to the store, trying again (every 1 s, then up to every 30 s) while
        it fails, a full disk say, so that no job is left `running`. A worker told to stop gives
        up: the job is still `running`, and the next start reconciles it (`JobQueue.recover`)."""
        pause = 1.0
        while True:
            try:
                write()
                return
            except Exception as exc:  # noqa: BLE001 - the store refused the write: wait and write again
                log.warning("could not record %s (%s); trying again in %.0f s", what, one_line(exc), pause)
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, 30.0)

    def _run_one(self, pipe: Any, record: JobRecord) -> None:
        job_id = record.id
        last = [0.0, ""]
        overall = JobProgress()

        def progress(stage: str, done: int, total: int) -> None:
            fraction = overall.update(stage, done, total)
            now = time.monotonic()
            if stage != last[1] or now - last[0] > 0.2 or done >= total:
                last[0], last[1] = now, stage
                with contextlib.suppress(StorageFullError):  # progress is news, not a result: skip it
                    self.queue.report(job_id, stage, fraction)

        def cancelled() -> bool:
            return self._stopping.is_set() or self.queue.cancel_requested(job_id)

        try:
            image, audio, video = self.queue.paths(job_id)
            job = self.queue.job_options(job_id)  # checked when the job was submitted: read back as stored
            scene = self.queue.job_scene(job_id)
            if scene is not None:
                overall.weights = SCENE_WEIGHTS
                run_scene_job(pipe, image, audio, video, job, scene, progress=progress, cancelled=cancelled)
            else:
                jobs.run_job(pipe, image, audio, video, job, progress=progress, cancelled=cancelled)
        except jobs.CancelledError:
            if self.queue.cancel_requested(job_id):
                self._record(f"job {job_id}'s cancel", lambda: self.queue.finish(job_id, "cancelled"))
            else:  # the server is stopping: the job runs again on the next start
                self._record(f"job {job_id}'s return to the queue", lambda: self.queue.requeue(job_id))
            return
        except Exception as exc:  # noqa: BLE001 - a job's error fails that job only
            self._record(f"job {job_id}'s failure", partial(self._failed, job_id, exc))
            return
        self._record(f"job {job_id}'s end", lambda: self.queue.finish(job_id, "done"))

    def _failed(self, job_id: str, exc: Exception) -> None:
        """Record a job's error: a full disk puts it back in the queue (it runs once space returns,
        failing after MAX_ATTEMPTS starts); any other error fails it with one sentence."""
        if is_disk_full(exc):
            state = self.queue.retry_later(job_id, _DISK_FULL_JOB)
            log.warning("job %s hit a full disk; it is %s", job_id, state)
            return
        if not isinstance(exc, UserInputError):
            log.exception("job %s failed", job_id, exc_info=exc)
        self.queue.finish(job_id, "failed", job_error(exc))


def job_error(exc: BaseException) -> str:
    """An exception as the one sentence of a failed job's record: a UserInputError's own, any
    other an internal error naming its type."""
    if isinstance(exc, UserInputError):
        return one_line(exc)
    return f"Internal error ({one_line(exc, with_type=True)})."

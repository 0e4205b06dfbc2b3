"""The job store: jobs live in an SQLite database (WAL) beside their files in one data folder,
so an accepted job survives a crash of the process that accepted it.

Layout of the data folder:

    queue.sqlite3          one row per job (state, stage, progress, error, options, times)
    jobs/<id>/             the job's inputs (image.*, audio.*, a scene's speaker1.* ...) and, once done, video.mp4
    .workers.lock          held (flock) by the one `Workers` that runs this folder's jobs

A job is claimed in one transaction (queued -> running), so no two workers run it. Jobs left
`running` by a process that died are put back in the queue by `JobQueue.recover` and run again
from the start (at most `MAX_ATTEMPTS` times, then they fail with a reason). Videos are written
atomically and `JobQueue.video` returns one only for a job in state `done`, so a half-written
file is never handed out. The threads that run the jobs are `floatalk.apps.queue.workers`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from floatalk.apps.jobs import JobOptions, as_job, parse_options
from floatalk.apps.queue.database import Database, update
from floatalk.apps.queue.disk import StorageFullError, free_bytes, is_disk_full, megabytes
from floatalk.apps.queue.inputs import POSE_VIDEO, SPEAKER, recordings, stored_options, suffix
from floatalk.apps.queue.records import COLUMNS, FINAL_STATES, STATES, JobRecord, record_from_row
from floatalk.apps.scene_jobs import SceneJob
from floatalk.errors import UserInputError

__all__ = ["MAX_ATTEMPTS", "POSE_VIDEO", "SPEAKER", "JobQueue", "QueueFullError", "data_dir_default"]

MAX_ATTEMPTS = 3
"""How many times a job is started before it fails as 'interrupted' (a job that kills its server every time)."""


class QueueFullError(Exception):
    """The queue holds its maximum of waiting jobs; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobQueue:
    """The jobs of one data folder. Thread-safe; several processes may share the folder (SQLite locks)."""

    def __init__(self, data_dir: str | Path, *, max_queued: int = 32, min_free_bytes: int = 0) -> None:
        if max_queued < 1:
            raise UserInputError(f"The queue must hold at least 1 waiting job (got max_queued={max_queued}).")
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.max_queued = max_queued
        self.min_free_bytes = max(0, int(min_free_bytes))
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFullError(f"The data folder {self.data_dir} is out of disk space.") from None
            raise
        self.db_path = self.data_dir / "queue.sqlite3"
        self.database = Database(self.db_path)

    def close(self) -> None:
        """Close this thread's database connection (others close when their threads end)."""
        self.database.close()

    # -- the disk ----------------------------------------------------------------------------
    def free_bytes(self) -> int:
        """Bytes free on the data folder's disk."""
        return free_bytes(self.data_dir)

    def space_short(self) -> str | None:
        """None while the data folder's disk has at least `min_free_bytes` free; else the sentence
        that says so (new jobs are refused and workers wait until space returns)."""
        free = self.free_bytes()
        if free >= self.min_free_bytes and free > 0:
            return None
        return (
            f"The server is short of disk space ({megabytes(free)} free, it keeps {megabytes(self.min_free_bytes)}"
            " in reserve); new jobs are refused until space returns."
        )

    # -- the contract ----------------------------------------------------------------------
    def submit(
        self,
        image: Path,
        audio: Path | None,
        options: JobOptions | Mapping[str, Any] | None = None,
        *,
        pose_video: Path | None = None,
        scene: SceneJob | None = None,
    ) -> JobRecord:
        """Queue a job: `options` are checked options (`floatalk.apps.jobs.parse_options`, read once
        where the request entered) or a mapping read here (UserInputError); then `image` and
        `audio` (and a `pose_video` file, the job's --pose-video) are moved into the job's folder.
        scene: a checked scene (`floatalk.apps.scene_jobs.parse_scene`) whose speakers' own
        recordings are moved in too; `audio` is then its mixed recording, or None. The store keeps
        what the caller gave (the record's `options`) and the checked options (and scene), which
        the worker reads back as they are. The options themselves never name files. Raises
        QueueFullError when max_queued jobs wait already (the files are then left where they were)."""
        job = as_job(options, pose_video=pose_video is not None)
        if audio is None and scene is None:
            raise UserInputError("A job of one face needs its audio file.")
        own = recordings(scene)
        moves = self._inputs(Path(image), None if audio is None else Path(audio), pose_video, own)
        stored, checked = stored_options(job, moves[-1][1] if pose_video is not None else None, scene, own)
        short = self.space_short()
        if short:
            raise StorageFullError(short)
        job_id = uuid.uuid4().hex
        folder = self.jobs_dir / job_id
        image_name, audio_name = moves[0][1], moves[1][1] if audio is not None else ""
        now = time.time()
        with self.database.transaction() as db:
            (waiting,) = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()
            if waiting >= self.max_queued:
                retry = self._retry_after(db, waiting)
                raise QueueFullError(
                    f"The queue is full ({waiting} jobs waiting); try again in {retry} s.", retry_after=retry
                )
            folder.mkdir()
            try:
                for path, name in moves:
                    shutil.move(path, folder / name)
                db.execute(
                    "INSERT INTO jobs (id, state, progress, created, updated, options, checked, image, audio) "
                    "VALUES (?, 'queued', 0, ?, ?, ?, ?, ?, ?)",
                    (job_id, now, now, stored, json.dumps(checked), image_name, audio_name),
                )
            except BaseException:
                # Put the caller's files back and leave no folder behind.
                for original, name in moves:
                    if (folder / name).exists() and not original.exists():
                        shutil.move(folder / name, original)
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return self.get(job_id)  # type: ignore[return-value]

    @staticmethod
    def _inputs(
        image: Path, audio: Path | None, pose_video: Path | None, recordings: dict[int, tuple[Path, str]]
    ) -> list[tuple[Path, str]]:
        """(file, its name in the job's folder) of every input, the image first, then the audio (if
        any), the speakers' own `recordings` (`inputs.recordings`), the pose video last; a missing file
        is a UserInputError."""
        moves = [(image, "image" + suffix(image), "image")]
        if audio is not None:
            moves.append((audio, "audio" + suffix(audio), "audio"))
        moves += [(path, name, f"recording of speaker {i + 1}") for i, (path, name) in recordings.items()]
        if pose_video is not None:
            moves.append((Path(pose_video), POSE_VIDEO + suffix(Path(pose_video)), "pose video"))
        for path, _, what in moves:
            if not path.is_file():
                raise UserInputError(f"The {what} file {path} does not exist.")
        return [(path, name) for path, name, _ in moves]

    def retry_after(self) -> int:
        """Seconds a client should wait before submitting again to a full queue."""
        return self._retry_after(self.database.connection(), self.max_queued)

    def _retry_after(self, db: sqlite3.Connection, waiting: int) -> int:
        """Seconds until a slot frees up, judged by how long recent jobs took (10 s without history)."""
        rows = db.execute(
            "SELECT finished - started FROM jobs WHERE state = 'done' AND started IS NOT NULL "
            "ORDER BY finished DESC LIMIT 20"
        ).fetchall()
        if not rows:
            return 10
        mean = sum(r[0] for r in rows) / len(rows)
        return max(1, math.ceil(mean))

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None for an unknown id."""
        row = self.database.connection().execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (str(job_id),)).fetchone()
        return record_from_row(row) if row else None

    def list(self, offset: int = 0, limit: int = 20) -> tuple[list[JobRecord], int]:
        """A page of jobs, newest first, and how many jobs there are in all."""
        db = self.database.connection()
        rows = db.execute(
            f"SELECT {COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ? OFFSET ?", (max(0, limit), max(0, offset))
        ).fetchall()
        (total,) = db.execute("SELECT COUNT(*) FROM jobs").fetchone()
        return [record_from_row(r) for r in rows], total

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        rows = self.database.connection().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({state: n for state, n in rows})
        return counts

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a job: a queued one ends at once (its inputs are deleted); a running one is asked
        to stop and ends within one window of motion. A finished job is left as it is."""
        with self.database.transaction() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (str(job_id),)).fetchone()
            if row is None:
                return None
            if row[0] == "queued":
                update(db, job_id, state="cancelled", finished=time.time(), cancel_requested=1)
                self._remove_inputs(job_id)
            elif row[0] == "running":
                update(db, job_id, cancel_requested=1)
        return self.get(job_id)

    def video(self, job_id: str) -> Path | None:
        """The finished mp4 of a job in state 'done', else None."""
        record = self.get(job_id)
        if record is None or record.state != "done":
            return None
        path = self.jobs_dir / record.id / "video.mp4"
        return path if path.is_file() else None

    def wait(self, job_id: str, since: float | None, timeout: float) -> JobRecord | None:
        """The job's record once it changed after `since` (its `updated` time; None: now), or
        when `timeout` seconds passed. Wakes at once for changes made in this process and within
        0.25 s for changes made by another process. None for an unknown id."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            record = self.get(job_id)
            if record is None or since is None or record.updated > since:
                return record
            left = deadline - time.monotonic()
            if left <= 0:
                return record
            with self.database.changed:
                self.database.changed.wait(min(left, 0.25))

    # -- used by Workers -------------------------------------------------------------------
    def job_options(self, job_id: str) -> JobOptions:
        """A job's checked options as the store keeps them, read back without checking them again
        (a pose video is named inside the job's folder). A job stored by an earlier version, with
        only the options its client gave, has them read as a batch line would be."""
        row = self.database.connection().execute("SELECT options, checked FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UserInputError(f"Job {job_id} is no longer in the queue.")
        folder = self.jobs_dir / job_id
        if row[1] is None:
            return parse_options(json.loads(row[0]), base_dir=folder, allow_paths=True)
        return JobOptions.from_json(json.loads(row[1]), base_dir=folder)

    def job_scene(self, job_id: str) -> SceneJob | None:
        """A scene job's checked scene as the store keeps it, its speakers' recordings in the job's
        folder; None for a job of one face (and every job of a data folder from before scenes)."""
        row = self.database.connection().execute("SELECT checked FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UserInputError(f"Job {job_id} is no longer in the queue.")
        scene = json.loads(row[0]).get("scene") if row[0] is not None else None
        return None if scene is None else SceneJob.from_json(scene, self.jobs_dir / job_id)

    def paths(self, job_id: str) -> tuple[Path, Path | None, Path]:
        """(image, audio, video) paths of a job; the audio is None for a scene without a mixed recording."""
        row = self.database.connection().execute("SELECT image, audio FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        folder = self.jobs_dir / job_id
        return folder / row[0], folder / row[1] if row[1] else None, folder / "video.mp4"

    def claim(self) -> JobRecord | None:
        """Take the oldest queued job and mark it running, in one transaction; None if none waits."""
        with self.database.transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE jobs SET attempts = attempts + 1 WHERE id = ?", (row[0],))
            update(db, row[0], state="running", stage="start", progress=0.0, started=now, error=None)
        return self.get(row[0])

    def report(self, job_id: str, stage: str, progress: float) -> None:
        """Record a running job's stage and progress."""
        with self.database.transaction() as db:
            update(db, job_id, stage=stage, progress=float(progress))

    def cancel_requested(self, job_id: str) -> bool:
        """Whether someone asked to cancel this job."""
        row = self.database.connection().execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def finish(self, job_id: str, state: str, error: str | None = None) -> JobRecord | None:
        """End a running job as done, failed or cancelled (a cancel asked for while it ran wins over done)."""
        if state not in FINAL_STATES:
            raise ValueError(f"not a final state: {state}")
        with self.database.transaction() as db:
            row = db.execute("SELECT state, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] != "running":
                return self.get(job_id)
            if state == "done" and row[1]:
                state = "cancelled"
            values: dict[str, Any] = {"state": state, "finished": time.time(), "error": error}
            if state == "done":
                values["progress"] = 1.0
            update(db, job_id, **values)
            if state != "done":
                (self.jobs_dir / job_id / "video.mp4").unlink(missing_ok=True)
            if state == "cancelled":
                self._remove_inputs(job_id)
        return self.get(job_id)

    def retry_later(self, job_id: str, reason: str) -> str:
        """A running job that hit a full disk goes back to the queue, to run again once space
        returns; one started MAX_ATTEMPTS times fails with `reason` instead, and one whose cancel
        was asked for ends cancelled. Returns its new state."""
        with self.database.transaction() as db:
            row = db.execute("SELECT state, attempts, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] != "running":
                return row[0] if row else "missing"
            if row[2]:
                update(db, job_id, state="cancelled", finished=time.time())
                self._remove_inputs(job_id)
                return "cancelled"
            if row[1] >= MAX_ATTEMPTS:
                update(db, job_id, state="failed", finished=time.time(), error=reason)
                return "failed"
            update(db, job_id, state="queued", stage=None, progress=0.0, started=None)
            return "queued"

    def requeue(self, job_id: str) -> None:
        """Put a running job back in the queue (its worker is stopping); the start does not count."""
        with self.database.transaction() as db:
            db.execute("UPDATE jobs SET attempts = MAX(0, attempts - 1) WHERE id = ? AND state = 'running'", (job_id,))
            update(db, job_id, state="queued", stage=None, progress=0.0, started=None)

    def recover(self) -> list[str]:
        """After a crash: a job left running whose video was complete (its worker could not record
        the end, a full disk say) ends as done, or cancelled if that was asked; the others are
        queued again (failed once started MAX_ATTEMPTS times); half-written videos are deleted,
        and job folders without a row (a submit cut short) are removed. Returns the ids put back
        in the queue. Only the process that runs this folder's jobs may call it."""
        requeued: list[str] = []
        with self.database.transaction() as db:
            rows = db.execute("SELECT id, attempts, cancel_requested FROM jobs WHERE state = 'running'").fetchall()
            for job_id, attempts, cancel in rows:
                video = self.jobs_dir / job_id / "video.mp4"  # written whole, then renamed
                if video.is_file() and not cancel:
                    update(db, job_id, state="done", finished=time.time(), progress=1.0, error=None)
                elif video.is_file():
                    update(db, job_id, state="cancelled", finished=time.time())
                    video.unlink()
                    self._remove_inputs(job_id)
                elif attempts >= MAX_ATTEMPTS:
                    reason = f"The job was interrupted {attempts} times (the server stopped while it ran)."
                    update(db, job_id, state="failed", finished=time.time(), error=reason)
                else:
                    update(db, job_id, state="queued", stage=None, progress=0.0, started=None)
                    requeued.append(job_id)
            known = {r[0] for r in db.execute("SELECT id FROM jobs").fetchall()}
        for folder in self.jobs_dir.iterdir():
            if folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for partial in folder.glob(".*"):  # a video being written when the process died
                partial.unlink(missing_ok=True)
        return requeued

    def _remove_inputs(self, job_id: str) -> None:
        folder = self.jobs_dir / job_id
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name != "video.mp4":
                    path.unlink(missing_ok=True)

    def wait_for_work(self, timeout: float) -> None:
        """Block until something in this process changed the queue, or `timeout` seconds passed."""
        with self.database.changed:
            self.database.changed.wait(timeout)

    def wake(self) -> None:
        """Wake everyone waiting on this queue."""
        with self.database.changed:
            self.database.changed.notify_all()


def data_dir_default() -> Path:
    """Where `floatalk serve` keeps its queue unless told: $FLOATALK_DATA or ./floatalk-data."""
    return Path(os.environ.get("FLOATALK_DATA", "floatalk-data"))

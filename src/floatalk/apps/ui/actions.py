"""What the page does with the shared job queue: queue a job for its files (checked as the API
checks uploads), or a scene for its group photo and voices (checked as the API checks a scene),
follow a job to its video or its error, cancel a job.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from floatalk.apps.jobs import JobOptions, as_job
from floatalk.apps.queue import FINAL_STATES, JobQueue, JobRecord
from floatalk.apps.scene_uploads import check_scene_uploads, read_scene
from floatalk.apps.ui.convert import describe, page_words
from floatalk.apps.ui.staging import stage_inputs, stage_scene, staging_folder
from floatalk.apps.uploads import Limits, UploadError, check_uploads
from floatalk.errors import UserInputError

__all__ = ["cancel_job", "follow_job", "submit_files", "submit_scene"]


def submit_files(
    queue: JobQueue,
    image: str | os.PathLike | None,
    audio: str | os.PathLike | None,
    options: JobOptions | Mapping[str, Any] | None,
    limits: Limits | None = None,
    pose_video: str | os.PathLike | None = None,
) -> JobRecord:
    """Queue a job for the page's files and its options (checked ones from `options_from_controls`,
    or a mapping read here): copies are submitted (queue.submit moves what it is
    given; the originals stay in Gradio's cache). pose_video: a video whose head motion the face
    follows (generate's --pose-video), or None. A missing file, or with `limits` a file the API
    would refuse (not an image, a recording or a video, too many pixels, too long), is a
    UserInputError; a full queue raises the queue's QueueFullError."""
    if not image:
        raise UserInputError("Add a portrait photo first (upload one, take one with the webcam, or use the example).")
    if not audio:
        raise UserInputError("Add a speech recording first (upload one, record one, or use the example).")
    job = as_job(options, pose_video=bool(pose_video))
    with staging_folder() as folder:
        staged_image, staged_audio, staged_video = stage_inputs(image, audio, folder, pose_video or None)
        if limits is not None:
            try:
                check_uploads(staged_image, staged_audio, limits, job, staged_video)
            except UploadError as exc:
                raise UserInputError(page_words(str(exc))) from None
        return queue.submit(staged_image, staged_audio, job, pose_video=staged_video)


def submit_scene(
    queue: JobQueue,
    image: str | os.PathLike | None,
    audio: str | os.PathLike | None,
    voices: Mapping[str, str | os.PathLike],
    options: Mapping[str, Any],
    limits: Limits | None = None,
) -> JobRecord:
    """Queue a scene for the page's group photo, its mixed recording `audio` (or None) and its
    `voices` (part name -> file; `floatalk.apps.ui.scene_convert.scene_from_controls` gives both
    with the `options` mapping), read and checked as the API reads and checks a scene's request
    (`floatalk.apps.scene_uploads`, within `limits`, default the API's). Copies are submitted; a
    mistake is one UserInputError in the page's words."""
    if not image:
        raise UserInputError("Add a group photo first.")
    with staging_folder() as folder:
        staged_image, staged_audio, staged_voices = stage_scene(image, audio or None, voices, folder)
        try:
            job, scene = read_scene(options, staged_audio, staged_voices)
            check_scene_uploads(staged_image, staged_audio, staged_voices, limits or Limits(), job, scene)
        except (UploadError, UserInputError) as exc:
            raise UserInputError(page_words(str(exc))) from None
        return queue.submit(staged_image, staged_audio, job, scene=scene)


def follow_job(
    queue: JobQueue, job_id: str, report: Callable[[JobRecord], None] | None = None, poll: float = 1.0
) -> tuple[JobRecord, Path | None]:
    """Wait until the job ends, calling report(record) at each change; returns its last record and
    its video (None when it was cancelled). A failed job raises UserInputError with its error."""
    record = queue.get(job_id)
    while record is not None and record.state not in FINAL_STATES:
        if report is not None:
            report(record)
        record = queue.wait(job_id, record.updated, poll)
    if record is None:
        raise UserInputError(f"Job {job_id} is no longer in the queue.")
    if record.state == "failed":
        raise UserInputError(record.error or f"Job {job_id} failed.")
    if record.state != "done":
        return record, None
    video = queue.video(job_id)
    if video is None:
        raise UserInputError(f"Job {job_id} finished but its video is missing.")
    return record, video


def cancel_job(queue: JobQueue, job_id: str | None) -> str:
    """Cancel the page's job; returns the line the page shows about it."""
    job_id = (job_id or "").strip()
    if not job_id:
        return "There is no job to cancel yet."
    record = queue.cancel(job_id)
    if record is None:
        return f"Job {job_id} is not in the queue."
    return describe(record)

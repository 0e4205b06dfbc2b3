"""The routes over jobs already queued: list them, read one, follow one by server-sent events,
download its video, cancel it."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from floatalk.apps.queue import JobQueue, JobRecord
from floatalk.apps.server.answers import job_json
from floatalk.apps.server.schemas import Job, JobList, error_responses
from floatalk.apps.server.state import API_PREFIX, State

__all__ = ["EventStream", "Mp4", "router"]

router = APIRouter(prefix=API_PREFIX)


class EventStream(StreamingResponse):
    """Server-sent events."""

    media_type = "text/event-stream"


class Mp4(FileResponse):
    """An mp4 file."""

    media_type = "video/mp4"


_JOB_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as JobQueue.submit makes them
MAX_OFFSET = 2**63 - 1  # SQLite's largest integer
_EVENT_POLL_S = 0.2
_KEEPALIVE_S = 15.0


def _known(queue: JobQueue, job_id: str) -> JobRecord:
    """The job's record; 404 for an unknown id (one that is not 32 hex digits is not looked up)."""
    record = queue.get(job_id) if _JOB_ID.fullmatch(job_id) else None
    if record is None:
        raise StarletteHTTPException(404, f"There is no job {job_id!r}.")
    return record


def _event(body: dict[str, Any]) -> str:
    """One server-sent event carrying a job's record; its id is the record's `updated` time."""
    return f"id: {body['updated']}\ndata: {json.dumps(body)}\n\n"


async def _changes(queue: JobQueue, record: JobRecord, request: Request) -> AsyncIterator[str]:
    """The events of a job: its record now and at every change until a final state, a comment
    line every _KEEPALIVE_S of quiet, nothing more once the client went away."""
    yield _event(job_json(record))
    quiet = 0.0
    while not record.final:
        await asyncio.sleep(_EVENT_POLL_S)
        if await request.is_disconnected():
            return
        latest = queue.get(record.id)
        if latest is None:
            return
        if latest.updated > record.updated:
            record, quiet = latest, 0.0
            yield _event(job_json(record))
        else:
            quiet += _EVENT_POLL_S
            if quiet >= _KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"


@router.get("/jobs", summary="List jobs, newest first", response_model=JobList, responses=error_responses(400))
async def list_jobs(
    state: State, offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(20, ge=1, le=100)
) -> dict:
    """A page of jobs, newest first, and how many there are in all."""
    records, total = state.queue.list(offset, limit)
    return {"jobs": [job_json(r) for r in records], "total": total, "offset": offset, "limit": limit}


@router.get(
    "/jobs/{job_id}",
    summary="A job's state, stage, progress and error",
    response_model=Job,
    responses=error_responses(404),
)
async def get_job(job_id: str, state: State) -> dict:
    """The job's record and, once it is done, where its video is."""
    return job_json(_known(state.queue, job_id))


@router.get(
    "/jobs/{job_id}/events",
    summary="Server-sent events: the job's record at every change, ending at a final state",
    response_class=EventStream,
    responses={
        200: {
            "description": "`data:` lines each holding a Job",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(404),
    },
)
async def events(job_id: str, request: Request, state: State) -> EventStream:
    """An event stream (text/event-stream) of the job's record."""
    record = _known(state.queue, job_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventStream(_changes(state.queue, record, request), headers=headers)


@router.get(
    "/jobs/{job_id}/video",
    summary="The finished video (mp4)",
    response_class=Mp4,
    responses={
        200: {"description": "the mp4", "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(404, 409),
    },
)
async def video(job_id: str, state: State) -> Mp4:
    """The job's mp4; 409 unless the job is done."""
    record = _known(state.queue, job_id)
    path = state.queue.video(job_id)
    if path is None:
        raise StarletteHTTPException(409, f"Job {job_id} is {record.state}; only a done job has a video.")
    return Mp4(path, filename=f"floatalk-{job_id}.mp4")


@router.delete(
    "/jobs/{job_id}",
    summary="Cancel a job",
    description="A queued job is cancelled at once (200); a running one stops within one window of motion "
    "(202, follow its events); a done or failed job cannot be cancelled (409).",
    response_model=Job,
    responses={
        202: {"model": Job, "description": "the job will stop within one window"},
        **error_responses(404, 409, 507),
    },
)
async def cancel(job_id: str, state: State) -> JSONResponse:
    """Cancel the job (see the route's description)."""
    record = _known(state.queue, job_id)
    if record.state in ("done", "failed"):
        raise StarletteHTTPException(409, f"Job {job_id} is already {record.state}.")
    record = await run_in_threadpool(state.queue.cancel, job_id)
    return JSONResponse(job_json(record), status_code=200 if record.state == "cancelled" else 202)

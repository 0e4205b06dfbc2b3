"""The API's answers as pydantic models, for its OpenAPI description: a job, a page of jobs, the
server's health and an error. The handlers build the same shapes (`answers.job_json`, the
health route); tests hold the live server's answers to these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "Health", "Job", "JobList", "error_responses"]


class ErrorBody(BaseModel):
    """Every error answer: one sentence."""

    error: str = Field(description="what went wrong, in one sentence", examples=["There is no job 'abc'."])


class Job(BaseModel):
    """A job's record, as `GET /v1/jobs/{id}` and every event of its stream show it."""

    id: str = Field(description="32 hex digits")
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    stage: str | None = Field(description="the stage running now (start, emotion, audio, motion, frames)")
    progress: float = Field(ge=0.0, le=1.0, description="over the whole job")
    error: str | None = Field(description="why the job failed, in one sentence")
    created: float = Field(description="Unix seconds")
    started: float | None = Field(description="Unix seconds")
    finished: float | None = Field(description="Unix seconds")
    updated: float = Field(description="Unix seconds of the last change; grows with every change")
    options: dict[str, Any] = Field(description="the options as the client gave them")
    cancel_requested: bool
    video: str | None = Field(description="the address of the video once the job is done")


class JobList(BaseModel):
    """A page of jobs, newest first."""

    jobs: list[Job]
    total: int = Field(ge=0, description="how many jobs there are in all")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1, le=100)


class Health(BaseModel):
    """Whether the server is up, and how busy (`error` only with status low_disk or error)."""

    status: Literal["ok", "loading", "low_disk", "error"]
    version: str
    queued: int = Field(ge=0)
    running: int = Field(ge=0)
    max_queued: int = Field(ge=1)
    disk_free_bytes: int = Field(ge=0, description="free on the data folder's disk")
    min_free_bytes: int = Field(ge=0, description="the reserve under which jobs are refused (507)")
    auth: bool = Field(description="whether the other endpoints want the token")
    workers: int | None = Field(None, description="model workers (absent when jobs run elsewhere)")
    error: str | None = Field(None, description="why the status is low_disk or error")


_WHY = {
    400: "a malformed request: a parameter, a part, a file or an option the server refuses",
    403: "a request that changes state, sent by a page of another site (see --allow-origin)",
    404: "no such job",
    408: "the request's body did not arrive within the server's body timeout",
    409: "the job is not in a state that allows this",
    413: "the body is over the size limit",
    415: "the body is not multipart/form-data",
    503: "the queue is full, or too many uploads arrive at once; Retry-After says when to try again",
    507: "the data folder's disk is short of space; Retry-After says when to try again",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string"}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for these error statuses: each an ErrorBody in JSON (named
    outright, so that a route answering another type, an event stream say, still says JSON
    here), with why."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {
        status: {
            "description": _WHY[status],
            "content": body,
            **({"headers": _RETRY_AFTER} if status in (503, 507) else {}),
        }
        for status in statuses
    }

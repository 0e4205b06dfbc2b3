"""The API's answers: every error is {"error": "<one sentence>"} (the app's exception handlers
turn FastAPI's and Starlette's own errors into that form too), and a job is its record with the
address of its video once it is done.
"""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from floatalk.apps.queue import JobRecord, QueueFullError, StorageFullError
from floatalk.apps.server.state import API_PREFIX

__all__ = ["DISK_RETRY_S", "add_error_handlers", "error", "job_json", "queue_full", "storage_full"]

DISK_RETRY_S = 60
"""Retry-After of a 507: how long a client waits before trying again on a disk short of space."""

log = logging.getLogger("floatalk.serve")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The answer {"error": message} with `status`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def queue_full(exc: QueueFullError, headers: dict[str, str] | None = None) -> JSONResponse:
    """503 with Retry-After: the queue holds its maximum of waiting jobs."""
    return error(503, str(exc), {"Retry-After": str(exc.retry_after), **(headers or {})})


def storage_full(message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """507 (Insufficient Storage) with Retry-After: the data folder's disk is short of space."""
    return error(507, message, {"Retry-After": str(DISK_RETRY_S), **(headers or {})})


def api_words(message: str) -> str:
    """A sentence in the API's words: a flag of `floatalk generate` it names (`pass --no-crop`,
    `pass --detector haar`) named as the options JSON sets it (`send "crop": false`)."""
    message = re.sub(r"pass --no-([a-z][a-z-]*)", lambda m: f'send "{m[1].replace("-", "_")}": false', message)
    return re.sub(
        r"pass --([a-z][a-z-]*) (\w+(?:\.\w+)*)", lambda m: f'send "{m[1].replace("-", "_")}": "{m[2]}"', message
    )


def job_json(record: JobRecord) -> dict[str, Any]:
    """A job as the API shows it: its record (its error in the API's words) and, once done,
    where its video is."""
    body = record.to_json()
    if record.error:
        body["error"] = api_words(record.error)
    body["video"] = f"{API_PREFIX}/jobs/{record.id}/video" if record.state == "done" else None
    return body


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """An HTTP error (404, 405, 409, ...) in one sentence naming what was asked for."""
    message = exc.detail if isinstance(exc.detail, str) else "The request could not be served."
    if exc.status_code == 404 and message == "Not Found":
        message = f"There is no endpoint {request.url.path}."
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    return error(exc.status_code, message, getattr(exc, "headers", None))


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 naming the first parameter FastAPI found wrong."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
    return error(400, f"Parameter '{where}': {first.get('msg', 'invalid value')}.")


async def disk_full(request: Request, exc: StorageFullError) -> JSONResponse:
    """507 for a request the disk had no room for (a cancel's record, say)."""
    return storage_full(str(exc))


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 naming the exception's type; the traceback goes to the log."""
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error(500, f"Internal error ({type(exc).__name__}); the server keeps running.")


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of `app` as {"error": "<one sentence>"}."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StorageFullError, disk_full)
    app.add_exception_handler(Exception, internal_error)

"""The server's own routes, beside the jobs': its health (open without the token) and, when the
web page is mounted, / leading to it."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse

from floatalk import __version__
from floatalk.apps.server.schemas import Health
from floatalk.apps.server.state import API_PREFIX, State

__all__ = ["front_router", "health_router"]

health_router = APIRouter(prefix=API_PREFIX)
front_router = APIRouter()


@front_router.get("/", include_in_schema=False)
async def front(state: State) -> RedirectResponse:
    """/ leads to the web page."""
    return RedirectResponse(str(state.page_prefix).rstrip("/") + "/")


@health_router.get(
    "/health",
    summary="Whether the server is up, and how busy",
    response_model=Health,
    responses={503: {"model": Health, "description": "status low_disk or error: jobs are not accepted"}},
)
async def health(state: State) -> JSONResponse:
    """ok; loading (the workers load the model); low_disk (503: the data folder's disk is under its
    reserve, so submissions are refused until space returns); error (503: a worker could not load
    the model). With the counts of jobs and the disk's free bytes."""
    queue = state.queue
    counts = queue.counts()
    status, code = "ok", 200
    body: dict[str, Any] = {}
    workers = state.workers
    short = queue.space_short()
    if workers is not None and workers.load_error:
        status, code, body["error"] = "error", 503, workers.load_error
    elif short:
        status, code, body["error"] = "low_disk", 503, short
    elif workers is not None and not workers.ready.is_set():
        status = "loading"
    if workers is not None:
        body["workers"] = workers.count
    body.update(
        status=status,
        version=__version__,
        queued=counts["queued"],
        running=counts["running"],
        max_queued=queue.max_queued,
        disk_free_bytes=queue.free_bytes(),
        min_free_bytes=queue.min_free_bytes,
        auth=bool(state.token),
    )
    return JSONResponse(body, status_code=code)

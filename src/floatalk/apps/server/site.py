"""The server's own routes, beside the jobs': its health (open without the token) and, when the
web page is mounted, / leading to it."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse

from floatalk import __version__
from floatalk.apps.server.state import API_PREFIX, State

__all__ = ["front_router", "health_router"]

health_router = APIRouter(prefix=API_PREFIX)
front_router = APIRouter()


@front_router.get("/", include_in_schema=False)
async def front(state: State) -> RedirectResponse:
    """/ leads to the web page."""
    return RedirectResponse(str(state.page_prefix).rstrip("/") + "/")


@health_router.get("/health", summary="Whether the server is up, and how busy")
async def health(state: State) -> JSONResponse:
    """ok, loading (the workers load the model) or error (503: a worker could not load it), and the counts."""
    counts = state.queue.counts()
    status, code = "ok", 200
    body: dict[str, Any] = {}
    workers = state.workers
    if workers is not None:
        if workers.load_error:
            status, code, body["error"] = "error", 503, workers.load_error
        elif not workers.ready.is_set():
            status = "loading"
        body["workers"] = workers.count
    body.update(
        status=status,
        version=__version__,
        queued=counts["queued"],
        running=counts["running"],
        max_queued=state.queue.max_queued,
        auth=bool(state.token),
    )
    return JSONResponse(body, status_code=code)

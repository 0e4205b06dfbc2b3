"""The API's app: `create_app` puts the server's state on a FastAPI app, answers every error in
one sentence, guards it (`guards.protect`: Host and Origin, the token, methods, bodies in
flight) and includes the routers."""

from pathlib import Path

from fastapi import FastAPI

from floatalk import __version__
from floatalk.apps.hosts import HostRules
from floatalk.apps.live.page import LIVE_PATH, live_page_router
from floatalk.apps.live.sessions import LivePool
from floatalk.apps.queue import JobQueue, Workers
from floatalk.apps.server import job_routes, live_routes, site, submit
from floatalk.apps.server.answers import add_error_handlers
from floatalk.apps.server.guards import protect
from floatalk.apps.server.openapi import describe
from floatalk.apps.server.state import API_PREFIX, DOCS_PATH, ServerState
from floatalk.apps.uploads import Limits

__all__ = ["create_app"]


def _incoming(data_dir: Path) -> Path:
    """The data folder's `incoming/`, emptied of uploads a crash cut short."""
    incoming = data_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    for stale in incoming.iterdir():
        if stale.is_file():
            stale.unlink(missing_ok=True)
    return incoming


def create_app(
    queue: JobQueue,
    workers: Workers | None = None,
    *,
    limits: Limits | None = None,
    token: str | None = None,
    page_prefix: str | None = None,
    rules: HostRules | None = None,
    live: LivePool | None = None,
) -> FastAPI:
    """The API over `queue` (whose jobs `workers` run); with `token`, every endpoint except
    /v1/health wants `Authorization: Bearer <token>`. page_prefix: where the web page will be
    mounted (`floatalk.apps.ui.mount_ui`): the live page is served at LIVE_PATH beside it
    (`floatalk.apps.live.page`), with a token a browser on either is asked for it (HTTP Basic,
    the token as password; the live page also takes `?token=`), and / leads to the page. rules:
    the Host names and other origins the server accepts (default: this machine's loopback names,
    no other origin). live: the slots of the live sessions at /v1/live (None: that endpoint
    refuses every session)."""
    app = FastAPI(
        docs_url=DOCS_PATH,
        title="floatalk",
        version=__version__,
        description="Talking-portrait videos from one photo and a speech recording, as queued jobs.",
    )
    limits = limits or Limits()
    app.state.floatalk = ServerState(queue, workers, limits, token, _incoming(queue.data_dir), page_prefix, live)
    add_error_handlers(app)
    open_paths = (f"{API_PREFIX}/health",)
    pages = () if page_prefix is None else (page_prefix, LIVE_PATH)
    by_query = () if page_prefix is None else (LIVE_PATH, f"{LIVE_PATH}/")  # the live page, not its files
    protect(
        app,
        limits,
        rules or HostRules(),
        token=token,
        open_paths=open_paths,
        page_prefixes=pages,
        query_paths=by_query,
    )
    if page_prefix is not None:
        app.include_router(site.front_router)
        app.include_router(live_page_router(queue.data_dir / "example", token=token, ui=page_prefix))
    for router in (site.health_router, submit.router, job_routes.router, live_routes.router):
        app.include_router(router)
    describe(app, token=bool(token), open_paths=open_paths)
    return app

"""What the API's handlers share: the queue, its workers, the upload limits, the token and the live
sessions' slots, kept on the app (`app.state.floatalk`) by `create_app` and handed to each handler
by FastAPI's dependency injection (`State`), so the handlers are plain module-level functions.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from floatalk.apps.live.sessions import LivePool
from floatalk.apps.queue import JobQueue, Workers
from floatalk.apps.uploads import Limits

__all__ = ["API_PREFIX", "DOCS_PATH", "ServerState", "State", "server_state"]

API_PREFIX = "/v1"
DOCS_PATH = "/docs"  # the interactive API docs (FastAPI's Swagger page)


@dataclass(frozen=True)
class ServerState:
    """The server's parts, as `create_app` was given them."""

    queue: JobQueue
    workers: Workers | None  # None: the jobs are run elsewhere (tests, another process)
    limits: Limits
    token: str | None  # None: no authentication
    incoming: Path  # where uploads stream to before their job exists
    page_prefix: str | None  # where the web page is mounted, if it is
    live: LivePool | None = None  # the live sessions' slots (None: no live sessions)


def server_state(request: Request) -> ServerState:
    """The state of the app that serves `request`."""
    return request.app.state.floatalk


State = Annotated[ServerState, Depends(server_state)]
"""A handler's parameter annotated `State` receives the server's state."""

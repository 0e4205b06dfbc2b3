"""The HTTP API of `floatalk serve` (FastAPI): jobs are submitted as multipart uploads, queued
durably (floatalk.apps.queue), followed by polling or server-sent events, and their videos
downloaded once done. Every error answer is {"error": "<one sentence>"}.

The parts: `app` (`create_app`), `state` (what the handlers share, through FastAPI's dependency
injection), `site`, `submit` and `job_routes` (the routes, on APIRouters), `multipart` (the
streaming upload), `answers` (the JSON answers and error handlers) and the guards every request
passes (`guards`: `origin`, `auth`, `methods`, `slow_uploads`; `slow_headers` bounds the time to
send headers, in uvicorn's protocol).
FastAPI and python-multipart are imported with this package, so only `floatalk serve` and the
web page's tests import it.
"""

from floatalk.apps.hosts import HostRules
from floatalk.apps.server.app import create_app
from floatalk.apps.server.guards import protect
from floatalk.apps.server.slow_headers import header_timeout_protocol
from floatalk.apps.server.state import API_PREFIX

__all__ = ["API_PREFIX", "HostRules", "create_app", "header_timeout_protocol", "protect"]

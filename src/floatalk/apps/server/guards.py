"""The layers every request passes before a handler, put on an app in one place so that
`floatalk serve` (the API and its page) and `floatalk ui` (the page alone) are guarded alike.
From the outside in: the Host and Origin rules (`origin`), CORS headers for the allowed origins
only (Starlette's CORSMiddleware; with it on the app, Gradio adds none of its own), the token
(`auth`), OPTIONS/HEAD/405 (`methods`) and the bounds on bodies in flight (`slow_uploads`).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from floatalk.apps.hosts import HostRules
from floatalk.apps.server.auth import TokenGate
from floatalk.apps.server.methods import MethodGate
from floatalk.apps.server.origin import OriginGate
from floatalk.apps.server.slow_uploads import UploadGate
from floatalk.apps.uploads import Limits

__all__ = ["protect"]


def protect(
    app: FastAPI,
    limits: Limits,
    rules: HostRules,
    *,
    token: str | None = None,
    open_paths: tuple[str, ...] = (),
    page_prefixes: tuple[str, ...] = (),
    query_paths: tuple[str, ...] = (),
) -> FastAPI:
    """Put the guards on `app` (before it serves a request); returns it. With `token`, every path
    but `open_paths` wants it, a browser on the pages under `page_prefixes` is asked for it, and
    the pages at `query_paths` may carry it as `?token=` (see `TokenGate`)."""
    # Starlette wraps the last middleware added around the others: add from the inside out.
    app.add_middleware(UploadGate, max_uploads=limits.max_uploads, body_timeout_s=limits.body_timeout_s)
    app.add_middleware(MethodGate, app=app)
    if token:
        app.add_middleware(
            TokenGate, token=token, open_paths=open_paths, page_prefixes=page_prefixes, query_paths=query_paths
        )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(rules.allow_origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Location", "Retry-After"],
        allow_credentials=False,
    )
    app.add_middleware(OriginGate, rules=rules)
    return app

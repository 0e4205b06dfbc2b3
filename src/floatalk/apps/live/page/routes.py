"""The live page's routes: the page itself (one HTML file, its script and style inline, with the
page's settings filled in from the options' fields) and the one-click example's photo and speech.

The page is guarded as the web page is (`floatalk.apps.server.auth.TokenGate`: a browser is asked
for the token as the password of HTTP Basic; `?token=` in the page's address works too). A
WebSocket cannot carry that password, so the page passes the token on in the live endpoint's
address (`?token=`): it takes it from its own address, else from the request that loaded it (the
server writes the token that request carried into the page, never a token it did not carry),
else from its Token field.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import html
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from floatalk.apps.examples import EXAMPLE_OPTIONS, example_files
from floatalk.config import EMOTIONS
from floatalk.options import MAX_CFG_SCALE, GenerateOptions

__all__ = ["LIVE_PATH", "live_page_router", "page_config", "relative_link"]

LIVE_PATH = "/live"
"""Where `floatalk serve` serves the live page (the page itself at LIVE_PATH + "/")."""

SLIDER_MAX = 3.0
"""The top of the page's intensity sliders, as on the web page (the API takes more)."""

EXAMPLE_WAIT_S = 120.0
"""How long a request for the example waits for its files to be written (first use only)."""

_PAGE_FILE = "live.html"
_CONFIG_MARK = "__FLOATALK_CONFIG__"
_TOKEN_MARK = "__FLOATALK_TOKEN__"
_HEADERS = {
    "Cache-Control": "no-store",  # the page may hold the token the request carried
    "Referrer-Policy": "no-referrer",  # its address may hold it too
    "X-Content-Type-Options": "nosniff",
    # everything the page needs is in it or on this server: nothing from elsewhere, no frames
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; "
        "img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self' ws: wss:; "
        "worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def page_config(*, auth: bool, endpoint: str, ui: str | None) -> dict[str, Any]:
    """The settings the page's script reads: the live endpoint's address (relative to the page),
    whether the server wants a token, the web page's address (None: not served), the emotions,
    the live controls' defaults and ranges (from GenerateOptions) and the example's options."""
    defaults = GenerateOptions()
    return {
        "endpoint": endpoint,
        "auth": auth,
        "ui": ui,
        "emotions": ["auto", *EMOTIONS],
        "defaults": {
            "emotion": defaults.emotion or "auto",
            "e_cfg_scale": defaults.e_cfg_scale,
            "head_motion": defaults.head_motion,
            "mouth_scale": defaults.mouth_scale,
            "expression_scale": defaults.expression_scale,
            "blink": defaults.blink,
            "crop": defaults.crop,
            "seed": defaults.seed,
        },
        "ranges": {
            "head_motion": [0.0, SLIDER_MAX],
            "mouth_scale": [0.0, SLIDER_MAX],
            "expression_scale": [0.0, SLIDER_MAX],
            "e_cfg_scale": [0.0, min(5.0, MAX_CFG_SCALE)],
        },
        "example": {"image": "example.png", "audio": "example.wav", "options": dict(EXAMPLE_OPTIONS)},
    }


def relative_link(page_path: str, target: str) -> str:
    """`target` (an absolute path) as seen from the page at `page_path` + "/", so that links
    between the pages also work behind a reverse proxy that serves the server under a prefix."""
    depth = page_path.strip("/").count("/") + 1
    return "../" * depth + target.lstrip("/")


def _carried_token(request: Request, token: str | None) -> str:
    """The server's token when `request` carried it (as `?token=`, a Bearer token or the Basic
    password), else ""."""
    if not token:
        return ""
    given = [request.query_params.get("token", "")]
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given.append(value.strip())
    elif scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, ValueError):
            given.append(base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2])
    wanted = token.encode()
    return token if any(hmac.compare_digest(candidate.encode(), wanted) for candidate in given) else ""


def _page_template() -> str:
    return resources.files("floatalk.apps.live.page").joinpath("static", _PAGE_FILE).read_text(encoding="utf-8")


def live_page_router(
    example_dir: str | os.PathLike,
    *,
    token: str | None = None,
    path: str = LIVE_PATH,
    endpoint: str = "/v1/live",
    ui: str | None = None,
    example_seconds: float = 4.0,
) -> APIRouter:
    """The live page's routes at `path` (a redirect to `path` + "/", the page, `example.png` and
    `example.wav` under it). example_dir: where the example's files are (written on first use,
    shared with the web page's); token: the server's (None: none); endpoint: the live
    WebSocket's path; ui: the web page's path, linked from the live page (None: not served)."""
    template = _page_template()
    ui_link = None if ui is None else relative_link(path, ui) + "/"
    config = page_config(auth=bool(token), endpoint=relative_link(path, endpoint), ui=ui_link)
    script_safe = json.dumps(config).replace("<", "\\u003c")
    page = template.replace(_CONFIG_MARK, script_safe)
    folder = Path(example_dir)
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def to_page(request: Request) -> RedirectResponse:
        """`path` leads to the page (its relative links need the slash), keeping the query."""
        query = request.url.query
        return RedirectResponse(f"{path}/" + (f"?{query}" if query else ""), headers={"Referrer-Policy": "no-referrer"})

    @router.get(f"{path}/", include_in_schema=False)
    async def live_page(request: Request) -> HTMLResponse:
        """The page, with the token its request carried (if any) for the live endpoint's address."""
        filled = page.replace(_TOKEN_MARK, html.escape(_carried_token(request, token), quote=True))
        return HTMLResponse(filled, headers=_HEADERS)

    async def example(index: int, media_type: str) -> Response:
        try:
            files = await asyncio.wait_for(asyncio.wrap_future(example_files(folder, example_seconds)), EXAMPLE_WAIT_S)
        except asyncio.TimeoutError:
            return JSONResponse({"error": "The example is still being written; try again in a minute."}, 503)
        except OSError as exc:
            return JSONResponse({"error": f"The example could not be written ({exc.strerror or exc})."}, 503)
        return FileResponse(files[index], media_type=media_type, headers={"Cache-Control": "no-cache"})

    @router.get(f"{path}/example.png", include_in_schema=False)
    async def example_photo() -> Response:
        """The example's portrait (a synthetic face the bundled model knows; animate it uncropped)."""
        return await example(0, "image/png")

    @router.get(f"{path}/example.wav", include_in_schema=False)
    async def example_speech() -> Response:
        """The example's speech (16 kHz, 16-bit WAV)."""
        return await example(1, "audio/wav")

    return router

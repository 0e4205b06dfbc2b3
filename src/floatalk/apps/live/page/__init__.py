"""The live page: a plain HTML and JavaScript page (no build step, nothing from the internet) at
/live that streams the microphone or an audio file to the live endpoint (`GET /v1/live`, a
WebSocket) and draws the frames it sends back on a canvas, in time with the audio, with the
emotion and motion controls changing the running stream.

`live_page_router` serves the page, and the one-click example's photo and speech; `floatalk
serve` includes it beside the web page (floatalk.apps.server.create_app).
"""

from floatalk.apps.live.page.routes import LIVE_PATH, live_page_router, page_config, relative_link

__all__ = ["LIVE_PATH", "live_page_router", "page_config", "relative_link"]

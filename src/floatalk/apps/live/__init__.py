"""Live sessions over the API: their bounds, start message and pool (`sessions`), a session's
compute in its own thread (`runner`), the WebSocket protocol without the web stack (`stream`), a
Python client (`client`) and the browser page (`page`). The endpoint itself is
`floatalk.apps.server.live_routes`."""

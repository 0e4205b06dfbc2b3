"""Live mode: a talking portrait that follows audio as it arrives (floatalk.live.session).

`FloatPipeline.live(image, options, chunk_ms=..., lookahead_ms=...)` opens a `LiveSession`;
`push(pcm)` returns the frames ready, `update(**controls)` changes emotion and motion between
chunks, `close()` flushes the rest. `replay` streams a recording through a session (paced at
real time or as fast as it goes) and measures its latency. This package sits at the pipeline
layer: it composes the engine's steps and floatalk.editing's controls.
"""

from floatalk.live.audio import check_pcm, pcm_from_s16le
from floatalk.live.controls import LIVE_CONTROLS
from floatalk.live.session import DEFAULT_CHUNK_MS, DEFAULT_LOOKAHEAD_MS, LiveOutput, LiveSession

__all__ = [
    "DEFAULT_CHUNK_MS",
    "DEFAULT_LOOKAHEAD_MS",
    "LIVE_CONTROLS",
    "LiveOutput",
    "LiveSession",
    "check_pcm",
    "pcm_from_s16le",
]

"""floatalk: audio-driven talking portraits (FLOAT) on plain PyTorch.

Importing the package is cheap; the pipeline loads lazily::

    from floatalk import FloatPipeline, render_video
    pipe = FloatPipeline.from_pretrained("bundled")  # or a release / floatalk folder
    result = pipe(image="photo.png", audio="speech.wav")
    render_video(pipe, "photo.png", "speech.wav", "talk.mp4")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["FloatPipeline", "GenerateOptions", "RenderReport", "__version__", "render_video"]

from floatalk.options import GenerateOptions

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline
    from floatalk.render import RenderReport, render_video


def __getattr__(name: str) -> Any:
    if name == "FloatPipeline":
        from floatalk.pipeline import FloatPipeline

        return FloatPipeline
    if name in ("render_video", "RenderReport"):
        from floatalk import render

        return getattr(render, name)
    raise AttributeError(f"module 'floatalk' has no attribute {name!r}")

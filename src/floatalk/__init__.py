"""floatalk: audio-driven talking portraits (FLOAT) on plain PyTorch.

Importing the package is cheap; the pipeline loads lazily::

    from floatalk import FloatPipeline, render_video
    pipe = FloatPipeline.from_pretrained("bundled")  # or a release / floatalk folder
    result = pipe(image="photo.png", audio="speech.wav")
    render_video(pipe, "photo.png", "speech.wav", "talk.mp4")
    render_scene(pipe, "group.jpg", "scene.mp4", [Speaker(1, "ann.wav"), Speaker(2, "bob.wav")])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "FloatPipeline",
    "GenerateOptions",
    "RenderReport",
    "SceneReport",
    "Speaker",
    "__version__",
    "render_scene",
    "render_video",
]

from floatalk.options import GenerateOptions
from floatalk.scene import Speaker

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline
    from floatalk.render import RenderReport, SceneReport, render_scene, render_video


def __getattr__(name: str) -> Any:
    if name == "FloatPipeline":
        from floatalk.pipeline import FloatPipeline

        return FloatPipeline
    if name in ("render_video", "RenderReport", "render_scene", "SceneReport"):
        from floatalk import render

        return getattr(render, name)
    raise AttributeError(f"module 'floatalk' has no attribute {name!r}")

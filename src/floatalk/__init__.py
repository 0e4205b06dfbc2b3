"""floatalk: audio-driven talking portraits (FLOAT) on plain PyTorch.

Importing the package is cheap; the pipeline loads lazily::

    from floatalk import FloatPipeline
    pipe = FloatPipeline.from_pretrained("path/to/release_or_floatalk_folder")
    result = pipe(image="photo.png", audio="speech.wav")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["FloatPipeline", "__version__"]

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline


def __getattr__(name: str) -> Any:
    if name == "FloatPipeline":
        from floatalk.pipeline import FloatPipeline

        return FloatPipeline
    raise AttributeError(f"module 'floatalk' has no attribute {name!r}")

"""The one place for the media rates floatalk works at.

The model's own rates travel in its config (`AudioEncoderConfig.sample_rate`, `.fps`); these
are their defaults and the rates of everything around the model (the synthetic world, the
training data, the soundtrack muxed into written videos), and the size cap of a scene's video.
"""

from __future__ import annotations

SAMPLE_RATE = 16000
"""Hz: audio the model hears (mono), the synthetic world's speech, preprocessed clips."""

FPS = 25
"""Frames per second the model animates at, and of preprocessed clips."""

MUX_SAMPLE_RATE = 48000
"""Hz: the soundtrack written into output videos, resampled from the user's original file."""

MAX_SCENE_SIDE = 1920
"""Pixels: the longest side of a scene's video (`floatalk scene`); a bigger photo is scaled down."""

__all__ = ["FPS", "MAX_SCENE_SIDE", "MUX_SAMPLE_RATE", "SAMPLE_RATE"]
